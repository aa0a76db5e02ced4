#!/usr/bin/python3
"""Writes the associative-memory section of docs/results.md (tools/reproduce.sh assoc).

Reads the sweep directories of the reference's protocols AM-1 (frequency imbalance; AM-2 reads
the same runs), AM-3 (the noisy scaling law) and AM-4 (the embedding basis), computes what each
protocol measures from the runs' `buckets` records (steps to bucket excess < threshold, total
loss over time, mean excess over the last max(2, T/10) steps, fitted slopes), checks the
reference's assertions, and writes: the page section (Markdown, the papers' claims and the
reference's calibration numbers beside ours), its figures (PNG) and every number as JSON. It
trains nothing and tunes nothing.

usage: assoc_report.py --am1 DIR --am3 DIR --am4 DIR --page FILE.md --figures DIR
                       --figures-rel REL --json FILE --command TEXT --wall-seconds S [--quick]
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_page  # noqa: E402
import sweep_runs  # noqa: E402


# ---------------------------------------------------------------- reading runs

def read_sweep(directory):
    """The sweep's finished points: [{name, variant, kind, lr, steps, records}]."""
    runs = []
    for p in sweep_runs.finished_points(directory, ["buckets"]):
        buckets, o = p["records"]["buckets"], p["overrides"]
        runs.append({"name": p["point"], "variant": p["variant"],
                     "kind": o.get("optim.kind"), "lr": float(o.get("optim.lr", "nan")),
                     "records": buckets, "final": buckets[-1] if buckets else {}})
    return runs


def steps_of(run):
    """Steps to threshold per bucket (None = not reached), head first."""
    return run["final"].get("steps_to_threshold", [])


def ratio_of(run):
    r = run["final"].get("tail_head_ratio")
    return r if isinstance(r, (int, float)) else None


def fit_slope(xs, ys):
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else float("nan")


def fmt_steps(s):
    return "–" if s is None else str(s)


def fmt_num(v, spec=".3g"):
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


# ---------------------------------------------------------------- AM-1 and AM-2

def am1(runs):
    rows, best = [], {}
    for r in runs:
        s = steps_of(r)
        if not s:
            continue
        mid = s[len(s) // 2 - 1] if len(s) > 1 else s[0]
        rows.append({"variant": r["variant"], "lr": r["lr"], "head": s[0], "mid": mid,
                     "tail": s[-1], "ratio": ratio_of(r), "steps": len(r["records"]) - 1})
    for row in rows:  # best lr: the one that learns the tail in the fewest steps
        if row["tail"] is None:
            continue
        b = best.get(row["variant"])
        if b is None or row["tail"] < b["tail"]:
            best[row["variant"]] = row
    return rows, best


def am1_checks(rows, best, p_ratio):
    checks = []
    muon = [r for r in rows if r["variant"] == "muon"]
    checks.append({"claim": "exact Muon: tail/head ≤ 1.25 at every lr",
                   "pass": bool(muon) and all(r["ratio"] is not None and r["ratio"] <= 1.25
                                              for r in muon),
                   "measured": ", ".join(f"lr {r['lr']:g}: {fmt_num(r['ratio'], '.2f')}"
                                         for r in muon)})
    gd = [r for r in rows if r["variant"] == "gd" and r["head"] is not None and r["head"] >= 5]
    bound = 0.25 * p_ratio
    checks.append({"claim": f"GD: tail/head ≥ 0.25·p_head/p_tail = {bound:g} where the head "
                            "needs ≥ 5 steps",
                   "pass": all(r["ratio"] is None or r["ratio"] >= bound for r in gd) if gd
                   else None,
                   "measured": ", ".join(f"lr {r['lr']:g}: " + (fmt_num(r['ratio'], '.1f')
                                         if r["ratio"] is not None else "tail not reached")
                                         for r in gd) or "no lr with head ≥ 5 steps"})
    order = ["muon", "signgd", "ngd", "adam", "gd"]
    ratios = {v: best[v]["ratio"] for v in order if v in best}
    ok = (len(ratios) == 5 and ratios["muon"] < min(ratios["signgd"], ratios["ngd"])
          and max(ratios["signgd"], ratios["ngd"]) < ratios["adam"] < ratios["gd"])
    checks.append({"claim": "at each optimizer's best lr: Muon < SignGD ≈ NGD < Adam < GD "
                            "(tail/head)",
                   "pass": ok,
                   "measured": ", ".join(f"{v} {fmt_num(ratios.get(v), '.2f')}" for v in order)})
    return checks


def loss_curve(run):
    return [(r["step"], r["loss"]) for r in run["records"]]


def steps_to_loss(curve, target):
    for step, loss in curve:
        if loss < target:
            return step
    return None


def am2(runs):
    out = []
    for variant, lrs in (("muon", (0.3, 1.0)), ("gd", (100.0, 1000.0))):
        for lr in lrs:
            run = next((r for r in runs if r["variant"] == variant and abs(r["lr"] - lr) < 1e-12),
                       None)
            if run is None:
                continue
            curve = loss_curve(run)
            row = {"variant": variant, "lr": lr,
                   "steps": [steps_to_loss(curve, 10.0 ** -k) for k in range(1, 6)]}
            if variant == "muon":  # ln L against t over 1e-12 < L < 1
                pts = [(t, math.log(L)) for t, L in curve if 1e-12 < L < 1]
                row["slope"] = fit_slope([p[0] for p in pts], [p[1] for p in pts])
                row["slope_vs_lr"] = -row["slope"] / lr if pts else float("nan")
            else:  # log L against log t over the last decade of steps
                last = curve[-1][0]
                pts = [(math.log(t), math.log(L)) for t, L in curve if t >= last / 10 and L > 0]
                row["slope"] = fit_slope([p[0] for p in pts], [p[1] for p in pts])
            out.append(row)
    return out


def am2_checks(rows):
    checks = []
    for r in rows:
        if r["variant"] == "muon":
            ok = math.isfinite(r["slope"]) and abs(r["slope"] + r["lr"]) <= 0.2 * r["lr"]
            checks.append({"claim": f"Muon lr {r['lr']:g}: semilog slope d ln L/dt within ±20 % "
                                    f"of −lr", "pass": ok,
                           "measured": f"{r['slope']:.3f} (= {r['slope_vs_lr']:.2f}·(−lr))"})
        else:
            ok = math.isfinite(r["slope"]) and -1.15 <= r["slope"] <= -0.85
            checks.append({"claim": f"GD lr {r['lr']:g}: late log–log slope in [−1.15, −0.85]",
                           "pass": ok, "measured": f"{r['slope']:.3f}"})
    return checks


# ---------------------------------------------------------------- AM-3

def am3(runs):
    """Per optimizer and horizon: the best lr's mean excess over the last max(2, T/10) steps."""
    table = {}
    for r in runs:
        opt, horizon = r["variant"].split("-T")
        T = int(horizon)
        excess = [rec["excess"] for rec in r["records"] if rec["step"] >= 1]
        window = max(2, T // 10)
        if len(excess) < window:
            continue
        value = sum(excess[-window:]) / window
        key = (opt, T)
        if key not in table or value < table[key]["excess"]:
            table[key] = {"excess": value, "lr": r["lr"]}
    return table


def am3_fit(table, opt, t_min, K):
    pts = sorted((T, v["excess"]) for (o, T), v in table.items() if o == opt and T >= t_min)
    pts = [(T, e) for T, e in pts if e > 0]
    return fit_slope([math.log(T) for T, _ in pts], [math.log(e) for _, e in pts])


def am3_checks(table, K, beta, t_min):
    muon = am3_fit(table, "muon", t_min, K)
    gd = am3_fit(table, "gd", t_min, K)
    checks = [
        {"claim": f"Muon: excess ∝ T^slope with slope in [−2.4, −1.7] (theory −2), T ≥ {t_min}",
         "pass": -2.4 <= muon <= -1.7, "measured": f"{muon:.2f}"},
        {"claim": f"GD: slope in [−0.75, −0.35] (theory −(1 − 1/β) = {-(1 - 1 / beta):.2f}), "
                  f"T ≥ {t_min}",
         "pass": -0.75 <= gd <= -0.35, "measured": f"{gd:.2f}"}]
    horizons = sorted({T for (_, T) in table if T >= t_min})
    factors = [table[("gd", T)]["excess"] / table[("muon", T)]["excess"] for T in horizons
               if ("gd", T) in table and ("muon", T) in table and table[("muon", T)]["excess"] > 0]
    checks.append({"claim": f"Muon's excess ≥ 10× below GD's at every T ≥ {t_min}",
                   "pass": bool(factors) and min(factors) >= 10,
                   "measured": "×" + ", ×".join(f"{f:.0f}" for f in factors)})
    cs = [table[("muon", T)]["lr"] * T / math.log(K) for T in horizons if ("muon", T) in table]
    checks.append({"claim": "Muon's best c (lr = c·ln K/T) lies in [1, 4]",
                   "pass": bool(cs) and all(0.999 <= c <= 4.001 for c in cs),
                   "measured": ", ".join(f"{c:.2g}" for c in cs)})
    return checks, muon, gd


# ---------------------------------------------------------------- AM-4

def am4(runs):
    rows = {}
    for r in runs:
        s = steps_of(r)
        if s:
            rows[(r["variant"], r["kind"])] = {"head": s[0], "mid": s[len(s) // 2 - 1],
                                               "tail": s[-1], "ratio": ratio_of(r),
                                               "all": s, "lr": r["lr"]}
    return rows


def am4_checks(rows):
    checks = []
    for kind, label in (("signgd", "SignGD"), ("adamw", "Adam")):
        i, rot = rows.get(("identity", kind)), rows.get(("rotated", kind))
        ok = (i is not None and rot is not None and i["ratio"] is not None and i["ratio"] <= 1.25
              and (rot["ratio"] is None or rot["ratio"] >= 2))
        checks.append({"claim": f"{label}: tail/head ≤ 1.25 with identity embeddings, ≥ 2 rotated",
                       "pass": ok, "measured": f"identity {fmt_num(i and i['ratio'], '.2f')}, "
                                               f"rotated {fmt_num(rot and rot['ratio'], '.2f')}"})
    for kind, label in (("muon", "Muon"), ("sgd", "GD")):
        i, rot = rows.get(("identity", kind)), rows.get(("rotated", kind))
        ok = i is not None and rot is not None and i["all"] == rot["all"]
        checks.append({"claim": f"{label}: the same steps in every bucket for both bases",
                       "pass": ok, "measured": f"{fmt_steps(i and i['head'])}/"
                                               f"{fmt_steps(i and i['tail'])} and "
                                               f"{fmt_steps(rot and rot['head'])}/"
                                               f"{fmt_steps(rot and rot['tail'])}"})
    i, o = rows.get(("identity", "signgd")), rows.get(("oracle", "signgd"))
    checks.append({"claim": "task-aligned SignGD (rotated, task coordinates) = SignGD with "
                            "identity embeddings",
                   "pass": i is not None and o is not None and i["all"] == o["all"],
                   "measured": f"{fmt_steps(o and o['head'])}/{fmt_steps(o and o['tail'])} vs "
                               f"{fmt_steps(i and i['head'])}/{fmt_steps(i and i['tail'])}"})
    return checks


# ---------------------------------------------------------------- figures

def figures(am1_runs, am2_rows, am3_table, am4_rows, K, beta, fig_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(fig_dir, exist_ok=True)
    made = []

    def pick(variant, lr):
        return next((r for r in am1_runs if r["variant"] == variant and abs(r["lr"] - lr) < 1e-9),
                    None)

    panels = [(v, lr) for v, lr in (("muon", 1.0), ("gd", 100.0), ("signgd", 0.03), ("adam", 0.03))
              if pick(v, lr)]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
        for ax, (variant, lr) in zip(axes[0], panels):
            run = pick(variant, lr)
            n = len(run["records"][0]["buckets"])
            cmap = plt.get_cmap("viridis")
            last = max(s for s in steps_of(run) if s is not None) if any(
                s is not None for s in steps_of(run)) else run["records"][-1]["step"]
            horizon = min(run["records"][-1]["step"], max(10, int(last * 1.3)))
            for b in range(n):
                xs = [r["step"] for r in run["records"] if r["step"] <= horizon]
                ys = [max(r["buckets"][b]["excess"], 1e-16) for r in run["records"]
                      if r["step"] <= horizon]
                ax.semilogy(xs, ys, color=cmap(b / max(1, n - 1)), lw=1,
                            label="head" if b == 0 else "tail" if b == n - 1 else None)
            ax.axhline(run["final"].get("threshold", 0.1), color="k", ls=":", lw=0.8)
            ax.set_title(f"{variant}, lr {lr:g}")
            ax.set_xlabel("step")
            ax.legend(fontsize=8)
        axes[0][0].set_ylabel("bucket mean excess loss")
        fig.suptitle("AM-1: each frequency bucket's loss (head = most frequent; dotted: τ)")
        fig.tight_layout()
        fig.savefig(os.path.join(fig_dir, "am1_buckets.png"), dpi=110)
        plt.close(fig)
        made.append(("am1_buckets.png", "AM-1: per-bucket loss curves"))

    curves = [(v, lr) for v, lr in (("muon", 0.3), ("muon", 1.0), ("gd", 100.0), ("gd", 1000.0))
              if pick(v, lr)]
    if curves:
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
        for variant, lr in curves:
            c = [(t, L) for t, L in loss_curve(pick(variant, lr)) if L > 0]
            a.semilogy([t for t, _ in c], [L for _, L in c], label=f"{variant} lr {lr:g}")
            b.loglog([t for t, _ in c if t > 0], [L for t, L in c if t > 0],
                     label=f"{variant} lr {lr:g}")
        a.set_xlim(0, 300)
        a.set_title("log L against t (Muon: a straight line)")
        b.set_title("log L against log t (GD: slope −1)")
        for ax in (a, b):
            ax.set_xlabel("step")
            ax.set_ylabel("total loss L")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(fig_dir, "am2_convergence.png"), dpi=110)
        plt.close(fig)
        made.append(("am2_convergence.png", "AM-2: exponential against 1/t convergence"))

    if am3_table:
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
        for opt, slope_ref in (("muon", -2.0), ("gd", -(1 - 1 / beta))):
            pts = sorted((T, v["excess"], v["lr"]) for (o, T), v in am3_table.items() if o == opt)
            if not pts:
                continue
            line, = a.loglog([p[0] for p in pts], [p[1] for p in pts], "o-", label=opt)
            T0, e0 = pts[len(pts) // 2][0], pts[len(pts) // 2][1]
            a.loglog([pts[0][0], pts[-1][0]],
                     [e0 * (pts[0][0] / T0) ** slope_ref, e0 * (pts[-1][0] / T0) ** slope_ref],
                     ":", color=line.get_color(), label=f"slope {slope_ref:.2f}")
            b.loglog([p[0] for p in pts], [p[2] for p in pts], "o-", label=opt)
        a.set_xlabel("horizon T (steps)")
        a.set_ylabel("mean excess loss, last T/10 steps")
        a.set_title("AM-3: excess loss at the best lr per T")
        b.set_xlabel("horizon T (steps)")
        b.set_ylabel("best lr")
        b.set_title("best lr per horizon")
        for ax in (a, b):
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(fig_dir, "am3_scaling.png"), dpi=110)
        plt.close(fig)
        made.append(("am3_scaling.png", "AM-3: the noisy scaling law"))

    if am4_rows:
        kinds = [("signgd", "SignGD"), ("adamw", "Adam"), ("muon", "Muon"), ("sgd", "GD")]
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        width = 0.38
        for k, (variant, color) in enumerate((("identity", "tab:blue"), ("rotated", "tab:orange"))):
            vals = [(am4_rows.get((variant, kind)) or {}).get("ratio") or float("nan")
                    for kind, _ in kinds]
            ax.bar([i + (k - 0.5) * width for i in range(len(kinds))], vals, width,
                   label=f"{variant} embeddings", color=color)
        ax.set_xticks(range(len(kinds)))
        ax.set_xticklabels([label for _, label in kinds])
        ax.set_yscale("log")
        ax.set_ylabel("tail/head steps to threshold")
        ax.set_title("AM-4: balance depends on the basis only for coordinate-wise updates")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(fig_dir, "am4_basis.png"), dpi=110)
        plt.close(fig)
        made.append(("am4_basis.png", "AM-4: tail/head ratio by embedding basis"))
    return made


# ---------------------------------------------------------------- the page

def verdict(passed):
    return {True: "holds", False: "**does not hold**", None: "not tested by this grid"}[passed]


def check_table(checks):
    lines = ["| assertion (reference) | measured | verdict |", "|---|---|---|"]
    for c in checks:
        lines.append(f"| {c['claim']} | {c['measured']} | {verdict(c['pass'])} |")
    return "\n".join(lines)


def page(args, am1_rows, am1_best, am1_c, am2_rows, am2_c, am3_table, am3_c, slopes, am4_rows,
         am4_c, made, setup):
    out = []
    out.append("# Associative memory: the theory paper's model\n")
    out.append(f"Reproduce with `{args.command}`. It took {args.wall_seconds / 60:.1f} minutes of "
               "wall time on 2 cores. Every number below is measured by that command; nothing was "
               "tuned to agree with the paper or with the reference's calibration runs.\n")
    out.append(setup + "\n")
    out.append("## AM-1: the frequency imbalance (no label noise)\n")
    out.append("Li et al. 2026: gradient descent learns the frequent pairs first and the rare ones "
               "late; Muon learns every frequency group at the same pace. Steps until a bucket's "
               "mean excess loss is below 0.1 (head = the most frequent group):\n")
    lines = ["| optimizer | lr | head | middle | tail | tail/head |", "|---|---|---|---|---|---|"]
    for r in am1_rows:
        star = " *" if am1_best.get(r["variant"]) is r else ""
        lines.append(f"| {r['variant']}{star} | {r['lr']:g} | {fmt_steps(r['head'])} | "
                     f"{fmt_steps(r['mid'])} | {fmt_steps(r['tail'])} | "
                     f"{fmt_num(r['ratio'], '.2f')} |")
    out.append("\n".join(lines))
    out.append("\n`*` = the lr that learns the tail in the fewest steps. The reference's "
               "calibration (numpy, same set-up): exact Muon 26/26/27, 8/8/8, 3/3/3 at lr 0.3, 1, "
               "3; Muon-NS5 11/11/9; GD 58/1322/>3000, 5/132/373, 1/13/37, 1/3/12 at lr 10, 100, "
               "1000, 3000; NGD ratio 4.1–4.8; SignGD 4.0–5.0; Adam 14–17 (rotated "
               "embeddings).\n")
    out.append(check_table(am1_c) + "\n")
    gd_ratios = [r["ratio"] for r in am1_rows if r["variant"] == "gd" and r["ratio"] is not None]
    if len(gd_ratios) >= 2:
        out.append("Gradient descent's tail/head ratio falls as its lr grows ("
                   + ", ".join(f"{x:.1f}" for x in gd_ratios) + " along its grid): without "
                   "label noise its curvature vanishes as it converges, so it stays stable at any "
                   "lr here, and where its best-lr ratio lands against the others depends on how "
                   "far the grid goes. The noisy case (AM-3) caps GD's lr at about 1/p_1.\n")
    out.append("## AM-2: what the exponential speed-up looks like\n")
    out.append("Muon's total loss falls like e^(−lr·t), gradient descent's like K/(lr·t). Read "
               "from AM-1's runs (in task space Muon and GD move identically for any orthonormal "
               "basis, which the unit tests check). Steps until the total loss L is below "
               "1e-1 … 1e-5:\n")
    lines = ["| optimizer | lr | 1e-1 | 1e-2 | 1e-3 | 1e-4 | 1e-5 | slope |",
             "|---|---|---|---|---|---|---|---|"]
    for r in am2_rows:
        kind = "d ln L/dt" if r["variant"] == "muon" else "d ln L/d ln t (last decade)"
        lines.append(f"| {r['variant']} | {r['lr']:g} | " +
                     " | ".join(fmt_steps(s) for s in r["steps"]) +
                     f" | {r['slope']:.3f} ({kind}) |")
    out.append("\n".join(lines))
    out.append("\nReference calibration: Muon lr 1: 8, 11, 13, 15, 18 (slope −0.995); lr 0.3: 26, "
               "34, 42, 50, 57; GD lr 100: 87, 337, 2646; lr 1000: 9, 31, 246, 2399 (late "
               "log–log slope −1.00 to −1.03).\n")
    out.append(check_table(am2_c) + "\n")
    out.append("## AM-3: the noisy scaling law\n")
    out.append("With label noise, at a learning rate tuned for each horizon T, Muon's excess loss "
               "falls as T^−2 and gradient descent's as T^−(1−1/β). Mean excess loss over the "
               "last max(2, T/10) steps, at each optimizer's best lr for that T:\n")
    horizons = sorted({T for (_, T) in am3_table})
    lines = ["| T | Muon excess | Muon best lr | GD excess | GD best lr | GD ÷ Muon |",
             "|---|---|---|---|---|---|"]
    for T in horizons:
        m, g = am3_table.get(("muon", T)), am3_table.get(("gd", T))
        ratio = g["excess"] / m["excess"] if m and g and m["excess"] > 0 else None
        lines.append(f"| {T} | {fmt_num(m and m['excess'], '.3g')} | {fmt_num(m and m['lr'])} | "
                     f"{fmt_num(g and g['excess'], '.3g')} | {fmt_num(g and g['lr'])} | "
                     f"{fmt_num(ratio, '.0f')} |")
    out.append("\n".join(lines))
    out.append(f"\nFitted exponents (T ≥ {args.t_min}): Muon {slopes[0]:.2f}, GD {slopes[1]:.2f}. "
               "Reference calibration (K = 256, β = 2): Muon −2.06 (best c = 2 at every T), GD "
               "−0.55 (T ≥ 64); excess at T = 16/64/256/1024: Muon 2.1e-2, 1.08e-3, 4.4e-5, "
               "4.0e-6; GD 0.33, 0.21, 0.10, 0.046.\n")
    out.append(check_table(am3_c) + "\n")
    out.append("## AM-4: SignGD needs the task's basis\n")
    out.append("A coordinate-wise sign matches Muon only when the stored coordinates are the "
               "task's: with identity embeddings SignGD and Adam are balanced, with rotated ones "
               "they are not, while Muon and GD do not see the rotation. Steps to bucket excess "
               "< 0.1, head/middle/tail:\n")
    lines = ["| embeddings | SignGD (0.03) | Adam (0.03) | Muon (1) | GD (300) |",
             "|---|---|---|---|---|"]
    for variant in ("identity", "rotated", "oracle"):
        cells = []
        for kind in ("signgd", "adamw", "muon", "sgd"):
            r = am4_rows.get((variant, kind))
            cells.append("–" if r is None else f"{fmt_steps(r['head'])}/{fmt_steps(r['mid'])}/"
                         f"{fmt_steps(r['tail'])} ({fmt_num(r['ratio'], '.2f')})")
        label = {"oracle": "rotated, task coordinates (TRA-SignGD)"}.get(variant, variant)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("\n".join(lines))
    out.append("\nReference calibration: identity SignGD 130/130/130, Adam 209/209/209, Muon "
               "8/8/8, GD 1/43/124; rotated SignGD 7/26/30 (4.3), Adam 7/49/101 (14.4), Muon and "
               "GD unchanged.\n")
    out.append(check_table(am4_c) + "\n")
    if made:
        out.append("## Figures\n")
        for file, title in made:
            out.append(f"### {title}\n\n![{title}]({args.figures_rel}/{file})\n")
    return "\n".join(out)


def main():
    p = results_page.study_arguments(description=__doc__.splitlines()[0])
    p.add_argument("--am1", required=True)
    p.add_argument("--am3", required=True)
    p.add_argument("--am4", required=True)
    p.add_argument("--K", type=int, default=256, help="AM-3's K")
    p.add_argument("--beta", type=float, default=2.0, help="AM-3's zipf exponent")
    p.add_argument("--p-ratio", type=float, default=64.0, help="AM-1's p_head/p_tail")
    p.add_argument("--t-min", type=int, default=64, help="AM-3 fits over T >= this")
    args = p.parse_args()

    am1_runs = read_sweep(args.am1)
    am1_rows, am1_best = am1(am1_runs)
    am1_c = am1_checks(am1_rows, am1_best, args.p_ratio)
    am2_rows = am2(am1_runs)
    am2_c = am2_checks(am2_rows)
    am3_table = am3(read_sweep(args.am3))
    am3_c, muon_slope, gd_slope = am3_checks(am3_table, args.K, args.beta, args.t_min)
    am4_rows = am4(read_sweep(args.am4))
    am4_c = am4_checks(am4_rows)
    made = figures(am1_runs, am2_rows, am3_table, am4_rows, args.K, args.beta, args.figures)
    text = page(args, am1_rows, am1_best, am1_c, am2_rows, am2_c, am3_table, am3_c,
                (muon_slope, gd_slope), am4_rows, am4_c, made, args.setup)
    results_page.replace_section(args.page, "assoc", text)
    result = {"am1": {"rows": am1_rows, "checks": am1_c}, "am2": {"rows": am2_rows,
              "checks": am2_c},
              "am3": {"rows": [{"optimizer": o, "T": T, **v} for (o, T), v in
                               sorted(am3_table.items())],
                      "muon_slope": muon_slope, "gd_slope": gd_slope, "checks": am3_c},
              "am4": {"rows": [{"embeddings": v, "optimizer": k, **r} for (v, k), r in
                               sorted(am4_rows.items())], "checks": am4_c}}
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1, default=lambda x: None)
    failed = sum(c["pass"] is False for part in ("am1", "am2", "am3", "am4")
                 for c in result[part]["checks"])
    print(f"wrote {args.page} (section assoc), {args.json}; {len(made)} figures; "
          f"{failed} reference assertion(s) do not hold")


if __name__ == "__main__":
    main()
