#!/usr/bin/python3
"""Writes the matrix-sensing section of docs/results.md (tools/reproduce.sh sensing).

Reads the sweep directory of the spectral-flattening control (variants <init>-<optimizer>, one
run per seed) and each run's `sensing` records, and writes: the page section (final normalised
spectral entropy, stable rank and loss per init and optimizer, mean ± std over seeds, beside the
reference's calibration; the per-seed check that Muon's spectrum ends flatter than gradient
descent's and norm-matched gradient descent's), one figure of the entropy over time, and every
number as JSON. It trains nothing and tunes nothing.

usage: sensing_report.py --sweep DIR --page FILE.md --figures DIR --figures-rel REL --json FILE
                         --command TEXT --wall-seconds S [--setup TEXT]
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_page  # noqa: E402
import sweep_runs  # noqa: E402

OPTIMIZERS = [("muon", "Muon"), ("gd", "GD"), ("nmgd", "NM-GD")]
INITS = [("small", "small init (1e-3)"), ("large", "large init (0.1)")]


def read_runs(directory):
    """{(init, optimizer): {seed: [sensing records]}} of the finished points."""
    runs = {}
    for p in sweep_runs.finished_points(directory, ["sensing"]):
        init, optimizer = p["variant"].split("-", 1)
        seed = int(p["overrides"].get("seed", 0))
        runs.setdefault((init, optimizer), {})[seed] = p["records"]["sensing"]
    return runs


def final(runs, init, optimizer, key):
    return {seed: recs[-1][key] for seed, recs in runs.get((init, optimizer), {}).items() if recs}


def wins(runs, init, key):
    """Seeds on which Muon's final `key` exceeds both GD's and NM-GD's, and seeds compared."""
    muon, gd, nm = (final(runs, init, o, key) for o in ("muon", "gd", "nmgd"))
    seeds = sorted(set(muon) & set(gd) & set(nm))
    return sum(muon[s] > gd[s] and muon[s] > nm[s] for s in seeds), len(seeds)


def figure(runs, fig_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(fig_dir, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    colors = {"muon": "tab:blue", "gd": "tab:orange", "nmgd": "tab:green"}
    for ax, (init, title) in zip(axes, INITS):
        for optimizer, label in OPTIMIZERS:
            for k, (seed, recs) in enumerate(sorted(runs.get((init, optimizer), {}).items())):
                ax.plot([r["step"] for r in recs], [r["entropy"] for r in recs],
                        color=colors[optimizer], lw=1, alpha=0.8, label=label if k == 0 else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("H(σ) / ln min(m, n)")
    fig.suptitle("Matrix sensing: normalised spectral entropy of W over training (each seed)")
    fig.tight_layout()
    fig.savefig(os.path.join(fig_dir, "sensing_entropy.png"), dpi=110)
    plt.close(fig)
    return "sensing_entropy.png"


def main():
    p = results_page.study_arguments(__doc__.splitlines()[0])
    p.add_argument("--sweep", required=True)
    args = p.parse_args()
    runs = read_runs(args.sweep)

    out = ["# Matrix sensing: does Muon flatten the spectrum?\n",
           f"Reproduce with `{args.command}`. It took {args.wall_seconds / 60:.1f} minutes of wall "
           "time on 2 cores. Every number below is measured by that command; nothing was tuned.\n",
           args.setup + "\n",
           "Beneventano et al. 2026: Muon's updates flatten the singular spectrum of the weights, "
           "which norm-matched gradient descent does not reproduce. Final values, mean ± std over "
           "seeds (H/Hmax = normalised spectral entropy; the target has rank 2, so an exact "
           "low-rank recovery has H/Hmax = ln 2 / ln 20 = 0.23):\n",
           "| init | optimizer | H/Hmax | stable rank | final loss |", "|---|---|---|---|---|"]
    summary = {}
    for init, init_label in INITS:
        for optimizer, label in OPTIMIZERS:
            cells = []
            for key, spec in (("entropy", ".3f"), ("stable_rank", ".2f"), ("loss", ".1e")):
                m, s = results_page.mean_std(list(final(runs, init, optimizer, key).values()))
                summary[f"{init}-{optimizer}-{key}"] = m
                cells.append(f"{m:{spec}} ± {s:{spec}}" if math.isfinite(s) else f"{m:{spec}}")
            out.append(f"| {init_label} | {label} | " + " | ".join(cells) + " |")
    out.append("\nReference calibration (numpy, 5 seeds, 3000 steps): small init Muon 0.947 ± "
               "0.008, SR 7.6, loss 6e-6; GD 0.905, SR 3.5, 2e-3; NM-GD 0.885, SR 2.9, 1e-5. "
               "Large init 0.922 / 0.924 / 0.918: no separation.\n")
    checks = []
    for init, init_label in INITS:
        for key, name in (("entropy", "H/Hmax"), ("stable_rank", "stable rank")):
            won, seeds = wins(runs, init, key)
            claim = f"{init_label}: Muon's final {name} exceeds GD's and NM-GD's" + (
                " on ≥ 4 of 5 seeds" if init == "small" else
                " (the reference saw no separation here: reported, not asserted)")
            passed = (won >= 4) if init == "small" else None
            checks.append({"claim": claim, "measured": f"{won} of {seeds} seeds",
                           "pass": passed, "init": init, "key": key, "wins": won,
                           "seeds": seeds})
    out.append("| check | measured | verdict |\n|---|---|---|")
    verdict = {True: "holds", False: "**does not hold**", None: "reported"}
    for c in checks:
        out.append(f"| {c['claim']} | {c['measured']} | {verdict[c['pass']]} |")
    fig = figure(runs, args.figures)
    out.append(f"\n![Normalised spectral entropy over training]({args.figures_rel}/{fig})\n")
    results_page.replace_section(args.page, "sensing", "\n".join(out))
    with open(args.json, "w") as f:
        json.dump({"summary": summary, "checks": checks}, f, indent=1)
    failed = sum(c["pass"] is False for c in checks)
    print(f"wrote {args.page} (section sensing), {args.json}; {failed} check(s) do not hold")


if __name__ == "__main__":
    main()
