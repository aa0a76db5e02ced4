#!/usr/bin/python3
"""Figures for `muonlab compare --plots`.

Usage: /usr/bin/python3 tools/plot.py SUMMARY_JSON OUT_DIR

Reads the summary written by `muonlab compare` and each run's metrics.jsonl
(run_dir as written in the summary, absolute or relative to the current
directory) and writes into OUT_DIR:

  val_loss.png                   validation loss vs step and vs tokens, per group at its best lr
  lr_sweep.png                   final validation loss vs learning rate, plateau shaded
  stable_rank_heatmap_<g>.png    stable rank per layer x step for each matrix kind (one per group)
  stable_rank.png                mean block stable rank vs step
  eff_rank_entropy.png           mean block effective rank, normalised entropy of the updates
  spectra.png                    last stored singular value spectra, per matrix kind
  buckets.png                    frequency-bucket runs: each bucket's excess loss (or, on a facts
                                 corpus, first-object accuracy) vs step
  loss_curves.png                frequency-bucket models: total loss vs step, semilog and log-log
  excess_vs_horizon.png          frequency-bucket models whose groups differ in train.steps:
                                 final excess loss vs horizon T per optimizer, fitted slopes
  plots.json                     {"plots": [{"file", "title"}], "skipped": [{"plot", "reason"}]}

A figure without data is skipped with a reason, never written empty. Curves over
seeds are the mean over the steps every seed has, with a +-1 sample-std band from
2 seeds. Only the metrics of runs with at_best_lr are read.

It does not compute any statistic the summary already holds (best lr, plateau,
loss_by_lr are drawn as given), does not pick runs itself (at_best_lr decides),
and does not read checkpoints or configs. A cut-short last line of metrics.jsonl
is ignored (other bad lines too, with a warning); a missing metrics.jsonl means
that run has no data.
Needs matplotlib (Agg) and numpy only.
"""
import json
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter, NullFormatter  # noqa: E402

KINDS = ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]
KIND_LABEL = {"wq": "attn wq", "wk": "attn wk", "wv": "attn wv", "wo": "attn wo",
              "w1": "mlp w1 (gate)", "w2": "mlp w2 (down)", "w3": "mlp w3 (up)"}
DPI = 110
plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "legend.fontsize": 10,
                     "figure.titlesize": 13})


class InputError(Exception):
    pass


# ---------------------------------------------------------------- input

def num(x):
    """A finite float, or None (null, NaN, inf, non-numbers)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def read_jsonl(path):
    """Records of a metrics.jsonl; [] if the file is missing. An unparsable last
    line (a crash mid-write) is dropped; other bad lines are dropped with a warning."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}")
    while lines and not lines[-1].strip():
        lines.pop()
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if i != len(lines) - 1:
                print(f"plot.py: warning: {path}:{i + 1}: not JSON, ignored", file=sys.stderr)
            continue
        if isinstance(rec, dict) and num(rec.get("step")) is not None:
            records.append(rec)
    return records


class Run:
    """One run of the summary with its metrics split by kind."""

    def __init__(self, entry):
        self.entry = entry
        self.name = str(entry.get("name") or entry.get("run_dir"))
        self.seed = entry.get("seed")
        recs = read_jsonl(os.path.join(str(entry.get("run_dir", "")), "metrics.jsonl"))
        self.train = [r for r in recs if r.get("kind") == "train"]
        self.val = [r for r in recs if r.get("kind") == "val"]
        self.spectral = [r for r in recs if r.get("kind") == "spectral"
                         and isinstance(r.get("matrices"), list)]
        self.buckets = [r for r in recs if r.get("kind") == "buckets"
                        and isinstance(r.get("buckets"), list) and r["buckets"]]

    def late_excess(self):
        """Mean total excess loss over the last max(2, T/10) steps (None without buckets)."""
        values = [num(r.get("excess")) for r in self.buckets if int(r["step"]) >= 1]
        values = [v for v in values if v is not None]
        window = max(2, len(values) // 10)
        return float(np.mean(values[-window:])) if len(values) >= window else None

    def val_by_step(self):
        return {int(r["step"]): num(r["loss"]) for r in self.val if num(r.get("loss")) is not None}

    def val_by_tokens(self):
        """{tokens: loss}; tokens at a val step come from the train record of that step
        (0 at step 0), linearly interpolated between logged train steps."""
        pts = {0: 0.0}
        for r in self.train:
            if num(r.get("tokens")) is not None:
                pts[int(r["step"])] = num(r["tokens"])
        xs = sorted(pts)
        ys = [pts[x] for x in xs]
        return {float(np.interp(s, xs, ys)): v for s, v in self.val_by_step().items()
                if xs[0] <= s <= xs[-1]}

    def spectral_series(self, value_of):
        """{step: mean over block matrices of value_of(matrix)} (None values skipped)."""
        out = {}
        for rec in self.spectral:
            vals = [v for v in map(value_of, block_matrices(rec)) if v is not None]
            if vals:
                out[int(rec["step"])] = float(np.mean(vals))
        return out


def block_matrices(rec):
    return [m for m in rec.get("matrices", [])
            if isinstance(m, dict) and str(m.get("name", "")).startswith("blocks.")]


def kind_and_layer(name):
    parts = name.split(".")
    try:
        return parts[-1], int(parts[1])
    except (IndexError, ValueError):
        return parts[-1], None


def update_entropy(m):
    """ln(eff_rank) / ln(min(shape)) of the matrix's update, or None."""
    up, shape = m.get("update"), m.get("shape")
    if not isinstance(up, dict) or not isinstance(shape, list) or not shape:
        return None
    eff, dims = num(up.get("eff_rank")), [num(d) for d in shape]
    if eff is None or eff <= 0 or None in dims or min(dims) < 2:
        return None
    return math.log(eff) / math.log(min(dims))


class Group:
    def __init__(self, entry, color, runs):
        self.entry = entry
        self.name = str(entry.get("name"))
        self.color = color
        self.best_lr = num(entry.get("best_lr"))
        key = lambda r: (num(r.seed) is None, num(r.seed) or 0)  # noqa: E731
        self.best = sorted([r for r in runs if r.entry.get("group") == entry.get("name")
                            and r.entry.get("at_best_lr") is True], key=key)
        if self.best_lr is None and self.best:  # fall back to the runs' own lr
            self.best_lr = num(self.best[0].entry.get("lr"))

    def label(self, n_seeds):
        lr = f"lr {self.best_lr:g}" if self.best_lr is not None else "lr ?"
        return f"{self.name} ({lr}, {n_seeds} seed{'s' if n_seeds != 1 else ''})"


def load(summary_path):
    try:
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
    except OSError as e:
        raise InputError(f"cannot read {summary_path}: {e.strerror}")
    except ValueError as e:
        raise InputError(f"{summary_path} is not JSON: {e}")
    if not isinstance(summary, dict) or not isinstance(summary.get("runs"), list):
        raise InputError(f"{summary_path}: no \"runs\" list")
    entries = summary.get("groups")
    if not isinstance(entries, list):  # derive from the runs, in order of appearance
        names = list(dict.fromkeys(e.get("group") for e in summary["runs"] if isinstance(e, dict)))
        entries = [{"name": n} for n in names]
    # Only the runs at a best lr are drawn from their metrics; the sweep comes from the summary.
    runs = [Run(e) for e in summary["runs"] if isinstance(e, dict) and e.get("at_best_lr") is True]
    cmap = plt.get_cmap("tab10")
    groups = [Group(e, cmap(i % 10), runs)
              for i, e in enumerate(x for x in entries if isinstance(x, dict))]
    return groups


# ---------------------------------------------------------------- helpers

def mean_over_seeds(series):
    """series: list of {step: value}. Returns (steps, mean, std or None, n) over
    the steps every non-empty series has; None if there is nothing."""
    series = [s for s in series if s]
    if not series:
        return None
    steps = sorted(set.intersection(*(set(s) for s in series)))
    if not steps:
        return None
    vals = np.array([[s[k] for k in steps] for s in series])
    std = vals.std(axis=0, ddof=1) if len(series) >= 2 else None  # sample std
    return np.array(steps), vals.mean(axis=0), std, len(series)


def draw_band(ax, x, mean, std, color, label, marker=None):
    ax.plot(x, mean, color=color, label=label, lw=1.8, marker=marker or ("o" if len(x) == 1 else None))
    if std is not None:
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, lw=0)


def draw_groups(ax, groups, series_of, marker=None):
    """One mean-over-seeds curve per group from series_of(run) -> {step: value}.
    Returns {group name: (steps, mean)} of the groups drawn."""
    drawn = {}
    for g in groups:
        agg = mean_over_seeds([series_of(r) for r in g.best])
        if agg is not None:
            steps, mean, std, n = agg
            draw_band(ax, steps, mean, std, g.color, g.label(n), marker)
            drawn[g.name] = (steps, mean)
    return drawn


def save(fig, out_dir, file, title, result):
    path = os.path.join(out_dir, file)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    result["plots"].append({"file": file, "title": title})
    print(f"plot: wrote {path}")


def skip(plot, reason, result):
    result["skipped"].append({"plot": plot, "reason": reason})
    print(f"plot: skipped {plot}: {reason}")


def sanitize(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "group"


# ---------------------------------------------------------------- plots

def plot_val_loss(groups, out_dir, result):
    title = "Validation loss at each group's best learning rate"
    fig, (ax_s, ax_t) = plt.subplots(1, 2, figsize=(11, 4.2))
    drawn = draw_groups(ax_s, groups, Run.val_by_step)
    draw_groups(ax_t, groups, Run.val_by_tokens)
    if not drawn:
        plt.close(fig)
        return skip("val_loss", "no run at a best lr has validation losses", result)
    ax_s.set(xlabel="step", ylabel="validation loss (nats)", title="vs step")
    ax_t.set(xlabel="tokens", ylabel="validation loss (nats)", title="vs tokens")
    ax_t.xaxis.set_major_formatter(EngFormatter())
    for ax in (ax_s, ax_t):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title + " (mean ± std over seeds)")
    fig.tight_layout()
    save(fig, out_dir, "val_loss.png", title, result)


def plot_lr_sweep(groups, out_dir, result):
    title = "Final validation loss vs learning rate"
    sweeps = []
    for g in groups:
        pts = [(num(p.get("lr")), num(p.get("mean")), num(p.get("std")), num(p.get("n")) or 0)
               for p in g.entry.get("loss_by_lr") or [] if isinstance(p, dict)]
        pts = sorted(p for p in pts if p[0] is not None and p[0] > 0 and p[1] is not None)
        sweeps.append(pts)
    if not any(len(p) >= 2 for p in sweeps):
        return skip("lr_sweep", "no group has 2 or more learning rates with a final loss", result)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for g, pts in zip(groups, sweeps):
        if not pts:
            continue
        lr, mean = [p[0] for p in pts], [p[1] for p in pts]
        err = [p[2] if p[2] is not None and p[3] >= 2 else 0.0 for p in pts]
        label = g.name + (" (edge of grid)" if g.entry.get("edge") else "")
        ax.errorbar(lr, mean, yerr=err, color=g.color, marker="o", ms=5, capsize=3,
                    lw=1.6, label=label)
        plateau = ((g.entry.get("plateau") or {}).get("nats") or {})
        lo, hi = num(plateau.get("lr_min")), num(plateau.get("lr_max"))
        if lo is not None and hi is not None and 0 < lo <= hi:
            ax.axvspan(lo, hi, color=g.color, alpha=0.12, lw=0)
        best = [p[1] for p in pts if g.best_lr is not None and math.isclose(p[0], g.best_lr)]
        if best:
            ax.plot([g.best_lr], best, marker="*", ms=16, color=g.color, mec="black", mew=0.8,
                    ls="none")
    handles, _ = ax.get_legend_handles_labels()
    handles += [ax.plot([], [], marker="*", ms=12, color="gray", mec="black", ls="none",
                        label="best lr")[0],
                ax.fill_between([], [], color="gray", alpha=0.2,
                                label="plateau: lrs within 0.02 nats of the best\n"
                                      "(none shaded when it is the best lr alone)")]
    ax.set_xscale("log")
    lrs = sorted({p[0] for pts in sweeps for p in pts})
    if len(lrs) <= 12:  # label the grid's own learning rates
        ax.set_xticks(lrs)
        # Grids of different groups interleave: slant the labels when two sit close together.
        close = any(b / a < 1.5 for a, b in zip(lrs, lrs[1:]))
        ax.set_xticklabels([f"{x:g}" for x in lrs], rotation=35 if close else 0,
                           ha="right" if close else "center")
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="learning rate (log scale)", ylabel="final validation loss (nats)",
           title=title + " (mean ± std over seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(handles=handles)
    fig.tight_layout()
    save(fig, out_dir, "lr_sweep.png", title, result)


def panel_grid(n):
    """Figure with n panels: one row up to 4, else two rows of ceil(n/2)."""
    cols = n if n <= 4 else math.ceil(n / 2)
    rows = 1 if n <= 4 else 2
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols + 1.2, 3.3 * rows + 0.5),
                             squeeze=False, constrained_layout=True)
    axes = axes.ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def plot_heatmaps(groups, out_dir, result):
    used = set()
    for g in groups:
        file = "stable_rank_heatmap_" + sanitize(g.name)
        while file in used:
            file += "_"
        used.add(file)
        run = next((r for r in g.best if r.spectral), None)
        if run is None:
            skip(file, f"no spectral records for {g.name} at its best lr", result)
            continue
        steps = sorted({int(rec["step"]) for rec in run.spectral})
        grids = {}  # kind -> {layer: {step: stable rank}}
        for rec in run.spectral:
            for m in block_matrices(rec):
                kind, layer = kind_and_layer(m["name"])
                sr = num(m.get("stable_rank"))
                if kind in KINDS and layer is not None and sr is not None:
                    grids.setdefault(kind, {}).setdefault(layer, {})[int(rec["step"])] = sr
        kinds = [k for k in KINDS if k in grids]
        if not kinds:
            skip(file, f"no block stable ranks for {g.name}", result)
            continue
        mats = {}
        for k in kinds:
            layers = sorted(grids[k])
            mats[k] = (layers, np.array([[grids[k][la].get(s, np.nan) for s in steps]
                                         for la in layers]))
        vmin = min(np.nanmin(a) for _, a in mats.values())
        vmax = max(np.nanmax(a) for _, a in mats.values())
        fig, axes = panel_grid(len(kinds))
        for ax, k in zip(axes, kinds):
            layers, a = mats[k]
            im = ax.imshow(np.ma.masked_invalid(a), aspect="auto", origin="lower",
                           cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
            every = max(1, math.ceil(len(steps) / 6))
            ax.set_xticks(range(0, len(steps), every))
            ax.set_xticklabels([str(s) for s in steps[::every]])
            ax.set_yticks(range(len(layers)))
            ax.set_yticklabels([str(la) for la in layers])
            ax.set(title=KIND_LABEL[k], xlabel="step", ylabel="layer")
        fig.colorbar(im, ax=list(axes), label="stable rank ‖W‖_F²/σ_max²", shrink=0.9)
        lr = f"{g.best_lr:g}" if g.best_lr is not None else "?"
        seed = run.seed if run.seed is not None else "?"
        title = f"Stable rank per layer: {g.name}, lr {lr}, seed {seed} ({run.name})"
        fig.suptitle(title)
        save(fig, out_dir, file + ".png", title, result)


def plot_stable_rank(groups, out_dir, result):
    title = "Mean stable rank of the block weight matrices"
    fig, ax = plt.subplots(figsize=(10, 4.5))
    drawn = draw_groups(ax, groups, lambda r: r.spectral_series(
        lambda m: num(m.get("stable_rank"))), marker=".")
    for g in groups:
        if g.name in drawn and drawn[g.name][0][0] == 0:
            ax.axhline(drawn[g.name][1][0], color=g.color, ls="--", lw=1, alpha=0.8)
    if not drawn:
        plt.close(fig)
        return skip("stable_rank", "no run at a best lr has spectral records", result)
    ax.plot([], [], color="gray", ls="--", lw=1, label="init (step 0)")
    ax.set(xlabel="step", ylabel="stable rank ‖W‖_F²/σ_max²",
           title=title + " (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save(fig, out_dir, "stable_rank.png", title, result)


def plot_eff_rank_entropy(groups, out_dir, result):
    title = "Effective rank of the weights and spectral entropy of the updates"
    fig, (ax_e, ax_h) = plt.subplots(1, 2, figsize=(11, 4.2))
    drawn = {ax_e: draw_groups(ax_e, groups, lambda r: r.spectral_series(
                 lambda m: num(m.get("eff_rank"))), marker="."),
             ax_h: draw_groups(ax_h, groups, lambda r: r.spectral_series(update_entropy),
                               marker=".")}
    if not any(drawn.values()):
        plt.close(fig)
        return skip("eff_rank_entropy",
                    "no effective ranks at a best lr (no spectral records, or power method only)",
                    result)
    ax_e.set(xlabel="step", ylabel="effective rank exp(H(σ/Σσ))",
             title="(a) block weights: mean effective rank")
    ax_h.set(xlabel="step", ylabel="ln(eff. rank) / ln(min(m, n))",
             title="(b) block updates: mean normalised entropy")
    for ax in (ax_e, ax_h):
        ax.grid(alpha=0.3)
        if drawn[ax]:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "no data\n(power method or no updates measured)",
                    ha="center", va="center", transform=ax.transAxes, color="gray")
    fig.suptitle(title + " (mean ± std over seeds)")
    fig.tight_layout()
    save(fig, out_dir, "eff_rank_entropy.png", title, result)


def last_spectra(run):
    """(step, {kind: normalised spectrum averaged over layers}) from the last spectral
    record with singular values, or None."""
    for rec in reversed(run.spectral):
        per_kind = {}
        for m in block_matrices(rec):
            sv = m.get("singular_values")
            kind, _ = kind_and_layer(m["name"])
            if kind not in KINDS or not isinstance(sv, list):
                continue
            sv = sorted((v for v in map(num, sv) if v is not None), reverse=True)
            if sv and sv[0] > 0:
                per_kind.setdefault(kind, []).append(np.array(sv) / sv[0])
        if per_kind:
            out = {}
            for kind, arrs in per_kind.items():
                n = min(len(a) for a in arrs)
                out[kind] = np.mean([a[:n] for a in arrs], axis=0)
            return int(rec["step"]), out
    return None


def plot_spectra(groups, out_dir, result):
    title = "Singular value spectra of the block matrices (last stored step)"
    found = []  # (group, run, step, {kind: spectrum})
    for g in groups:
        for r in g.best:
            got = last_spectra(r)
            if got:
                found.append((g, r, got[0], got[1]))
                break
    if not found:
        return skip("spectra", "no run stored singular values (set train.spectrum_every)", result)
    kinds = [k for k in KINDS if any(k in f[3] for f in found)]
    fig, axes = panel_grid(len(kinds))
    for ax, k in zip(axes, kinds):
        for g, r, step, spectra in found:
            if k in spectra:
                s = spectra[k]
                ax.plot(np.arange(1, len(s) + 1), np.where(s > 0, s, np.nan), color=g.color, lw=1.6,
                        label=f"{g.name} (step {step}, seed {r.seed})")
        ax.set_yscale("log")
        ax.set(title=KIND_LABEL[k], xlabel="singular value index",
               ylabel="σ_i / σ_max (log scale)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend()
    fig.suptitle(title + ", mean over layers")
    save(fig, out_dir, "spectra.png", title, result)


def bucket_runs(groups):
    """(group, its first run at the best lr) for the groups whose runs report buckets."""
    return [(g, g.best[0]) for g in groups if g.best and g.best[0].buckets]


def by_accuracy(run):
    """True for runs whose buckets are scored by accuracy (a facts corpus), not excess loss."""
    return "excess" not in run.buckets[0]["buckets"][0]


def plot_buckets(groups, out_dir, result):
    drawn = bucket_runs(groups)
    if not drawn:
        return skip("buckets", "no run reports frequency buckets", result)
    kinds = {by_accuracy(run) for _, run in drawn}
    title = ("First-object accuracy of each frequency bucket" if kinds == {True} else
             "Excess loss of each frequency bucket" if kinds == {False} else
             "Each frequency bucket's excess loss or accuracy") + " (head = most frequent)"
    fig, axes = panel_grid(len(drawn))
    cmap = plt.get_cmap("viridis")
    for ax, (g, run) in zip(axes.flat, drawn):
        n = len(run.buckets[0]["buckets"])
        steps = [int(r["step"]) for r in run.buckets]
        accuracy = by_accuracy(run)
        for b in range(n):
            if accuracy:
                ys = [num(r["buckets"][b].get("accuracy")) if b < len(r["buckets"]) else np.nan
                      for r in run.buckets]
                draw = ax.plot
            else:
                ys = [max(num(r["buckets"][b].get("excess")) or 0.0, 1e-16)
                      if b < len(r["buckets"]) else np.nan for r in run.buckets]
                draw = ax.semilogy
            draw(steps, [np.nan if y is None else y for y in ys], color=cmap(b / max(1, n - 1)),
                 lw=1, label="head" if b == 0 else ("tail" if b == n - 1 else None))
        threshold = num(run.buckets[-1].get("threshold"))
        if threshold is not None:
            ax.axhline(threshold, color="k", ls=":", lw=0.8)
        ax.set(title=f"{g.name} (lr {num(run.entry.get('lr')) or 0:g})", xlabel="step",
               ylabel="bucket first-object accuracy" if accuracy else "bucket mean excess loss")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, out_dir, "buckets.png", title, result)


def plot_loss_curves(groups, out_dir, result):
    title = "Total loss: semilog (exponential decay is a line) and log-log (power laws are lines)"
    drawn = bucket_runs(groups)
    if not drawn:
        return skip("loss_curves", "no run reports frequency buckets", result)
    fig, (ax_s, ax_l) = plt.subplots(1, 2, figsize=(11, 4.2))
    for g, run in drawn:
        pts = [(int(r["step"]), num(r.get("loss"))) for r in run.buckets]
        pts = [(t, v) for t, v in pts if v is not None and v > 0]
        ax_s.semilogy([t for t, _ in pts], [v for _, v in pts], color=g.color, label=g.name)
        ax_l.loglog([t for t, _ in pts if t > 0], [v for t, v in pts if t > 0], color=g.color,
                    label=g.name)
    for ax in (ax_s, ax_l):
        ax.set(xlabel="step", ylabel="total loss L")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, out_dir, "loss_curves.png", title, result)


def plot_excess_vs_horizon(groups, out_dir, result):
    title = "Final excess loss against the horizon T, at each group's best lr"
    by_optimizer = {}
    for g, run in bucket_runs(groups):
        T, excess = num(run.entry.get("planned_steps")), run.late_excess()
        if T and excess and excess > 0:
            by_optimizer.setdefault(str(run.entry.get("optimizer")), []).append((T, excess))
    series = {k: sorted(v) for k, v in by_optimizer.items() if len({T for T, _ in v}) >= 2}
    if not series:
        return skip("excess_vs_horizon", "no optimizer has bucket runs at two or more horizons",
                    result)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    cmap = plt.get_cmap("tab10")
    for i, (opt, pts) in enumerate(sorted(series.items())):
        x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
        slope = np.polyfit(x, y, 1)[0]
        ax.loglog([p[0] for p in pts], [p[1] for p in pts], "o-", color=cmap(i),
                  label=f"{opt}: slope {slope:.2f}")
    ax.set(xlabel="horizon T (train.steps)", ylabel="mean excess loss, last max(2, T/10) steps",
           title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    save(fig, out_dir, "excess_vs_horizon.png", title, result)


def main(argv):
    if len(argv) != 3:
        print("usage: plot.py SUMMARY_JSON OUT_DIR", file=sys.stderr)
        return 2
    out_dir = argv[2]
    result = {"plots": [], "skipped": []}
    try:
        groups = load(argv[1])
        if not os.path.isdir(out_dir):
            raise InputError(f"{out_dir} is not a directory")
        bucket_plots = (plot_buckets, plot_loss_curves, plot_excess_vs_horizon)
        for fn in (plot_val_loss, plot_lr_sweep, plot_heatmaps, plot_stable_rank,
                   plot_eff_rank_entropy, plot_spectra) + bucket_plots:
            fn(groups, out_dir, result)
        with open(os.path.join(out_dir, "plots.json"), "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, ensure_ascii=False)
            f.write("\n")
    except (InputError, OSError) as e:
        print(f"plot.py: error: {e}", file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv))
