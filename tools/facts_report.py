#!/usr/bin/python3
"""Writes the facts-corpus section of docs/results.md (tools/reproduce.sh facts).

Reads the sweep directory of the facts study (variants adamw and muon, each on its own learning
rate grid, then more seeds at each one's best lr) and each run's `buckets` records (per-bucket
first-object accuracy on the corpus's fixed probe set) and `val` records, and computes, for each
seed run at both best lrs: the step t* at which AdamW's head bucket first reaches 0.95, both
optimizers' tail-bucket accuracy at t* and the gap (Muon − AdamW), the tail accuracy at the
budget's end, and each bucket's steps to 0.95. It writes the page section (the papers' claims,
the reference's check and ours), one figure of head and tail accuracy over training, and every
number as JSON. It trains nothing and tunes nothing.

usage: facts_report.py --sweep DIR --page FILE.md --figures DIR --figures-rel REL --json FILE
                       --command TEXT --wall-seconds S [--setup TEXT]
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_page  # noqa: E402
import sweep_runs  # noqa: E402

OPTIMIZERS = [("adamw", "AdamW"), ("muon", "Muon")]
HEAD_LEVEL = 0.95  # the reference's check: the step where AdamW's head first passes 0.95
GAP_NEEDED = 0.1


def read_runs(directory):
    """{variant: {lr: {seed: {"buckets": [...], "final_val": float}}}} of the finished points."""
    runs = {}
    for p in sweep_runs.finished_points(directory, ["buckets", "val"]):
        o = p["overrides"]
        lr, seed = float(o["optim.lr"]), int(o.get("seed", 0))
        if not p["records"]["buckets"]:
            print(f"facts_report.py: {p['point']} has no buckets records (trained without "
                  "data.facts?); left out", file=sys.stderr)
            continue
        val = [r["loss"] for r in p["records"]["val"] if isinstance(r.get("loss"), (int, float))]
        runs.setdefault(p["variant"], {}).setdefault(lr, {})[seed] = {
            "buckets": p["records"]["buckets"], "final_val": val[-1] if val else float("nan")}
    return runs


def best_lr(by_lr):
    """The lr with the lowest final val loss at seed 0: the sweep's own stage-1 choice."""
    scored = [(runs[0]["final_val"], lr) for lr, runs in by_lr.items()
              if 0 in runs and math.isfinite(runs[0]["final_val"])]
    return min(scored)[1] if scored else None


def accuracy(record, bucket):
    return record["buckets"][bucket]["accuracy"]


def first_step(records, bucket, level):
    for r in records:
        if accuracy(r, bucket) >= level:
            return r["step"]
    return None


def at_step(records, step):
    for r in records:
        if r["step"] == step:
            return r
    return None


def fmt_ms(values, spec=".3f"):
    m, s = results_page.mean_std(values)
    if not math.isfinite(m):
        return "–"
    return f"{m:{spec}} ± {s:{spec}}" if math.isfinite(s) else f"{m:{spec}}"


def fmt_steps(s):
    return "–" if s is None else str(s)


def per_seed(runs, best):
    """The comparison on every seed run at both best lrs."""
    adamw, muon = runs["adamw"][best["adamw"]], runs["muon"][best["muon"]]
    rows = []
    for seed in sorted(set(adamw) & set(muon)):
        a, m = adamw[seed]["buckets"], muon[seed]["buckets"]
        tail = len(a[0]["buckets"]) - 1
        t_star = first_step(a, 0, HEAD_LEVEL)
        ra, rm = (at_step(a, t_star), at_step(m, t_star)) if t_star is not None else (None, None)
        row = {"seed": seed, "t_star": t_star,
               "adamw_tail_at_t": accuracy(ra, tail) if ra else None,
               "muon_tail_at_t": accuracy(rm, tail) if rm else None,
               "muon_head_at_t": accuracy(rm, 0) if rm else None,
               "final_step": a[-1]["step"],
               "adamw_tail_final": accuracy(a[-1], tail), "muon_tail_final": accuracy(m[-1], tail),
               "adamw_head_final": accuracy(a[-1], 0), "muon_head_final": accuracy(m[-1], 0),
               "threshold": a[-1].get("threshold"),
               "adamw_steps": a[-1].get("steps_to_threshold"),
               "muon_steps": m[-1].get("steps_to_threshold"),
               "adamw_val": adamw[seed]["final_val"], "muon_val": muon[seed]["final_val"]}
        if row["adamw_tail_at_t"] is not None and row["muon_tail_at_t"] is not None:
            row["gap"] = row["muon_tail_at_t"] - row["adamw_tail_at_t"]
        else:
            row["gap"] = None
        rows.append(row)
    return rows


def figure(runs, best, rows, fig_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(fig_dir, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    colors = {"adamw": "tab:orange", "muon": "tab:blue"}
    # Left: head and tail of each optimizer, every seed at its best lr.
    ax = axes[0]
    for variant, label in OPTIMIZERS:
        for k, (seed, run) in enumerate(sorted(runs[variant][best[variant]].items())):
            recs = run["buckets"]
            steps = [r["step"] for r in recs]
            tail = len(recs[0]["buckets"]) - 1
            ax.plot(steps, [accuracy(r, 0) for r in recs], color=colors[variant], lw=1, ls="--",
                    alpha=0.8, label=f"{label} head" if k == 0 else None)
            ax.plot(steps, [accuracy(r, tail) for r in recs], color=colors[variant], lw=1.4,
                    alpha=0.8, label=f"{label} tail" if k == 0 else None)
    for row in rows:
        if row["t_star"] is not None:
            ax.axvline(row["t_star"], color="k", ls=":", lw=0.8)
    ax.set(title="head (dashed) and tail bucket, each seed; dotted: AdamW head ≥ 0.95",
           xlabel="step", ylabel="first-object accuracy on the probe set")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    # Right: every bucket at seed 0.
    ax = axes[1]
    cmap = plt.get_cmap("viridis")
    for variant, label in OPTIMIZERS:
        recs = runs[variant][best[variant]].get(0, {}).get("buckets", [])
        if not recs:
            continue
        n = len(recs[0]["buckets"])
        for b in range(n):
            ax.plot([r["step"] for r in recs], [accuracy(r, b) for r in recs],
                    color=cmap(b / max(1, n - 1)), lw=1,
                    ls="-" if variant == "muon" else "--",
                    label=f"{label}, bucket {b + 1}" if b in (0, n - 1) else None)
    ax.set(title="every bucket, seed 0 (solid Muon, dashed AdamW; dark = head)", xlabel="step")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    fig.suptitle("Facts corpus: first-object accuracy per frequency bucket, each optimizer at its "
                 "best lr")
    fig.tight_layout()
    name = "facts_accuracy.png"
    fig.savefig(os.path.join(fig_dir, name), dpi=110)
    plt.close(fig)
    return name


def grid_table(runs, best, threshold):
    out = [f"| optimizer | lr | final val loss (seed 0) | steps to accuracy ≥ {threshold:g}: head / "
           "tail | final tail accuracy |", "|---|---|---|---|---|"]
    for variant, label in OPTIMIZERS:
        for lr in sorted(runs.get(variant, {})):
            run = runs[variant][lr].get(0)
            if not run or not run["buckets"]:
                continue
            last = run["buckets"][-1]
            steps = last.get("steps_to_threshold") or [None]
            mark = " (best)" if lr == best.get(variant) else ""
            out.append(f"| {label} | {lr:g}{mark} | {run['final_val']:.4f} | "
                       f"{fmt_steps(steps[0])} / {fmt_steps(steps[-1])} | "
                       f"{accuracy(last, len(last['buckets']) - 1):.3f} |")
    return out


def main():
    p = results_page.study_arguments(__doc__.splitlines()[0])
    p.add_argument("--sweep", required=True)
    args = p.parse_args()
    runs = read_runs(args.sweep)
    missing = [v for v, _ in OPTIMIZERS if v not in runs]
    if missing:
        sys.exit(f"facts_report.py: {args.sweep} has no finished {', '.join(missing)} runs")
    best = {v: best_lr(runs[v]) for v, _ in OPTIMIZERS}
    for v, _ in OPTIMIZERS:
        if best[v] is None:
            sys.exit(f"facts_report.py: {args.sweep} has no finished seed-0 {v} run with a "
                     "validation loss; run the sweep again")
    rows = per_seed(runs, best)
    threshold = rows[0]["threshold"] if rows and rows[0]["threshold"] is not None else HEAD_LEVEL

    out = ["# Power-law facts on a LLaMA model: AdamW vs Muon\n",
           f"Reproduce with `{args.command}`. It took {args.wall_seconds / 60:.1f} minutes of wall "
           "time on 2 cores. Every number below is measured by that command; nothing was tuned.\n",
           args.setup + "\n",
           "Each optimizer on its own learning-rate grid (seed 0); its best lr is the one with the "
           "lowest final validation loss, as `muonlab sweep` chooses it, and the further seeds "
           "run there. Accuracy is the first object token's, on the corpus's fixed probe set:\n"]
    out += grid_table(runs, best, threshold)
    gaps = [r["gap"] for r in rows]
    t_stars = [r["t_star"] for r in rows]
    out += ["", f"At the best lrs (AdamW {best['adamw']:g}, Muon {best['muon']:g}), over "
            f"{len(rows)} seed(s), mean ± std:\n",
            "| | AdamW | Muon |", "|---|---|---|",
            "| tail accuracy at t* (the step AdamW's head first reaches 0.95; "
            f"t* = {', '.join(fmt_steps(t) for t in t_stars)}) | "
            f"{fmt_ms([r['adamw_tail_at_t'] for r in rows])} | "
            f"{fmt_ms([r['muon_tail_at_t'] for r in rows])} |",
            f"| head accuracy at t* | ≥ 0.95 by definition | "
            f"{fmt_ms([r['muon_head_at_t'] for r in rows])} |",
            f"| tail accuracy at the last step ({rows[0]['final_step'] if rows else '–'}) | "
            f"{fmt_ms([r['adamw_tail_final'] for r in rows])} | "
            f"{fmt_ms([r['muon_tail_final'] for r in rows])} |",
            f"| head accuracy at the last step | {fmt_ms([r['adamw_head_final'] for r in rows])} | "
            f"{fmt_ms([r['muon_head_final'] for r in rows])} |",
            f"| steps to accuracy ≥ {threshold:g} (data.probe_threshold), per bucket (seed 0, "
            "head first) | "
            f"{' '.join(fmt_steps(s) for s in (rows[0]['adamw_steps'] or [])) if rows else '–'} | "
            f"{' '.join(fmt_steps(s) for s in (rows[0]['muon_steps'] or [])) if rows else '–'} |",
            f"| final val loss | {fmt_ms([r['adamw_val'] for r in rows], '.4f')} | "
            f"{fmt_ms([r['muon_val'] for r in rows], '.4f')} |", ""]
    gap_mean, _ = results_page.mean_std(gaps)
    passed = math.isfinite(gap_mean) and gap_mean >= GAP_NEEDED
    seeds_passing = sum(g is not None and g >= GAP_NEEDED for g in gaps)
    verdict = "holds" if passed else "**does not hold**"
    out += ["| source | claim | ours |", "|---|---|---|",
            "| Wang et al. 2025 (160M NanoGPT, heavy-tailed synthetic QA, 10k steps) | tail group "
            "first-token accuracy 0.976 ± 0.006 with Muon against 0.264 ± 0.048 with Adam; both "
            "heads ≈ 1.0 | tail at the last step: "
            f"Muon {fmt_ms([r['muon_tail_final'] for r in rows])}, AdamW "
            f"{fmt_ms([r['adamw_tail_final'] for r in rows])} |",
            "| Li et al. 2026 (LLaMA-style pretraining) | higher long-tail accuracy with Muon | "
            f"tail gap at t*: {fmt_ms(gaps)} (per seed: "
            f"{', '.join('–' if g is None else format(g, '.3f') for g in gaps)}) |",
            f"| reference check (experiments.md §5.5) | tail-bucket gap ≥ {GAP_NEEDED} at the step "
            f"AdamW's head first exceeds {HEAD_LEVEL} | {fmt_ms(gaps)} (≥ {GAP_NEEDED} on "
            f"{seeds_passing} of {len(gaps)} seeds): {verdict} |", ""]
    fig = figure(runs, best, rows, args.figures)
    out.append(f"![First-object accuracy per bucket]({args.figures_rel}/{fig})\n")
    results_page.replace_section(args.page, "facts", "\n".join(out))
    checks = [{"claim": f"tail gap >= {GAP_NEEDED} at AdamW's head {HEAD_LEVEL} step",
               "gap_mean": gap_mean, "seeds_passing": seeds_passing, "seeds": len(gaps),
               "pass": passed}]
    with open(args.json, "w") as f:
        json.dump({"best_lr": best, "seeds": rows, "checks": checks}, f, indent=1,
                  default=lambda x: None)
    print(f"wrote {args.page} (section facts), {args.json}; tail gap at t* {fmt_ms(gaps)}: "
          f"{'holds' if passed else 'does not hold'}")


if __name__ == "__main__":
    main()
