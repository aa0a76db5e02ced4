"""The finished points of a `muonlab sweep` directory with the records the study scripts read.

Shared by the study report scripts (assoc_report.py, sensing_report.py, facts_report.py): one
dict per point whose sweep.jsonl status is "done", in sweep order, with its name, variant,
overrides and, for each asked-for record kind, that kind's metrics.jsonl records in order.
It computes nothing from them.
"""
import json
import os


def finished_points(directory, kinds):
    """[{"point", "variant", "overrides", "records": {kind: [records]}}] of the done points."""
    with open(os.path.join(directory, "sweep.jsonl")) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    points = []
    for e in entries:
        if e.get("status") != "done":
            continue
        records = {kind: [] for kind in kinds}
        with open(os.path.join(directory, e["point"], "metrics.jsonl")) as f:
            for line in f:
                if not line.strip():
                    continue
                r = json.loads(line)
                if r.get("kind") in records:
                    records[r["kind"]].append(r)
        points.append({"point": e["point"], "variant": e.get("variant", ""),
                       "overrides": e.get("overrides", {}), "records": records})
    return points
