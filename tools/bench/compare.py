#!/usr/bin/python3
"""Side-by-side training-step speed and memory: muonlab against the plain PyTorch reference.

For each case (shape x precision x optimizer) it runs `muonlab bench --json` and
tools/bench/ref_llama.py --json on the same model, batch, precision, optimizer and thread
count, in pairs whose order alternates (muonlab first, then python first, ...), and prints
per pair and per case the ratios muonlab / python of tokens per second and of peak resident
memory. Around every child it samples /proc/stat to estimate how many cores other processes
kept busy, and flags the runs where that exceeds --max-other (a 2-thread OpenMP barrier
waiting on a descheduled thread makes a figure meaningless).

BLAS kernel: muonlab re-executes itself with OPENBLAS_CORETYPE set when OpenBLAS picked a
generic fallback kernel (src/blas_autotune.h). So that both sides run the same kernel, the
python child gets OPENBLAS_CORETYPE = the kernel muonlab reported, unless the variable is
already set in the environment (then it is left alone) or --as-found is given (then python
runs with the environment exactly as found: the "out of the box" comparison). Where muonlab runs
its fp32 products on oneDNN rather than the BLAS (its vectors wider than the BLAS kernel's), the
kernel column says "+oneDNN".

It measures and reports; it writes nothing but the --json file. Run it through
tools/bench/compare.sh, which makes sure /usr/bin/python3 has torch.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REF = REPO / "tools" / "bench" / "ref_llama.py"

# name: (vocab, d_model, n_layers, n_heads, ffn_hidden, seq_len, batch); kv heads = heads.
SHAPES = {
    "T": (256, 64, 2, 2, 192, 32, 4),  # tiny, for --quick only
    "S": (2048, 256, 4, 4, 704, 128, 16),
    "M": (4096, 512, 8, 8, 1408, 256, 16),
    "L": (8192, 768, 12, 12, 2048, 256, 8),
    "G": (50304, 768, 12, 12, 2048, 64, 4),
}

# The optimizer hyperparameters ref_llama.py uses, passed to muonlab too so that both sides
# do the same work whatever the base config says (the aux AdamW group, optim.adamw, keeps the
# base config's values: lr 3e-3, betas (0.9, 0.95), eps 1e-8, wd 0.1 in configs/bench).
MAIN_OPTIM = {"adamw": {"optim.lr": "1.0e-3", "optim.weight_decay": "0.1"},
              "muon": {"optim.lr": "0.02", "optim.weight_decay": "0"}}

CLK_TCK = os.sysconf("SC_CLK_TCK")


class CompareError(Exception):
    """A failure that ends the comparison with one clear line."""


# ----------------------------------------------------------------------------------------
# Running one child with contention sampling
# ----------------------------------------------------------------------------------------

def busy_jiffies():
    """Aggregate busy time of all CPUs from /proc/stat: user+nice+system+irq+softirq+steal."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    assert fields[0] == "cpu"
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return user + nice + system + irq + softirq + steal


def own_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(cmd, env, label):
    """Runs cmd to completion. Returns (parsed JSON, sample) where sample holds the wall
    time, the child's CPU seconds and the cores other processes kept busy meanwhile."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        driver0, busy0, t0 = own_cpu_seconds(), busy_jiffies(), time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        # wait4 (not Popen.wait) to get the child's own resource usage.
        _, status, usage = os.wait4(proc.pid, 0)
        t1, busy1, driver1 = time.perf_counter(), busy_jiffies(), own_cpu_seconds()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")

    wall = t1 - t0
    child_cpu = usage.ru_utime + usage.ru_stime
    all_busy = (busy1 - busy0) / CLK_TCK
    other_raw = (all_busy - child_cpu - (driver1 - driver0)) / wall
    sample = {"wall_s": wall, "child_cpu_s": child_cpu, "all_busy_s": all_busy,
              "other_cores_raw": other_raw,
              "other_cores": max(0.0, other_raw)}  # jiffy rounding can make it slightly < 0

    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        print(f"--- stderr tail of {label} ---\n{tail}\n---", file=sys.stderr)
        raise CompareError(f"{label} failed (exit {proc.returncode}): {' '.join(cmd)}")
    result = parse_json(stdout)
    if result is None:
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        print(f"--- stdout of {label} ---\n{stdout[-2000:]}\n--- stderr tail ---\n{tail}\n---",
              file=sys.stderr)
        raise CompareError(f"{label} printed no JSON object on stdout: {' '.join(cmd)}")
    missing = [k for k in ("tokens_per_s", "step_s", "peak_rss_bytes") if k not in result]
    if missing:
        raise CompareError(f"{label}'s JSON lacks {', '.join(missing)}: {' '.join(cmd)}")
    return result, sample


def parse_json(text):
    """The one JSON object in text (possibly pretty-printed), or None."""
    text = text.strip()
    for candidate in (text, text[text.find("{"): text.rfind("}") + 1]):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


# ----------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------

def muonlab_cmd(args, shape, precision, optimizer):
    V, C, L, H, F, T, B = SHAPES[shape]
    sets = {"model.vocab_size": V, "model.d_model": C, "model.n_layers": L, "model.n_heads": H,
            "model.n_kv_heads": H, "model.ffn_hidden": F, "model.seq_len": T,
            "train.batch_size": B, "train.precision": precision, "optim.kind": optimizer,
            "threads": args.threads, "seed": 0, "train.grad_clip": args.grad_clip}
    sets.update(MAIN_OPTIM[optimizer])
    cmd = [str(args.muonlab), "bench", str(args.config), "--json", "--step-only",
           "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def python_cmd(args, shape, precision, optimizer):
    V, C, L, H, F, T, B = SHAPES[shape]
    flags = {"--vocab": V, "--d": C, "--layers": L, "--heads": H, "--kv": H, "--ffn": F,
             "--seq": T, "--batch": B, "--precision": precision, "--optimizer": optimizer,
             "--repeats": args.repeats, "--warmup": args.warmup, "--threads": args.threads,
             "--grad-clip": args.grad_clip, "--seed": 0}
    cmd = [sys.executable, "-B", str(REF), "--json"]
    for flag, value in flags.items():
        cmd += [flag, str(value)]
    return cmd


class KernelChoice:
    """The environment for each side. muonlab always gets the environment as found; python
    gets OPENBLAS_CORETYPE = muonlab's reported kernel unless it is set or --as-found."""

    def __init__(self, as_found):
        self.found = dict(os.environ)
        self.as_found = as_found
        self.muonlab_kernel = None  # from the latest muonlab JSON

    def muonlab_env(self):
        return self.found

    def python_env(self):
        if self.as_found or "OPENBLAS_CORETYPE" in self.found or not self.muonlab_kernel:
            return self.found
        return dict(self.found, OPENBLAS_CORETYPE=self.muonlab_kernel)

    def describe(self):
        if self.as_found:
            return "as found (--as-found): python runs with the environment unchanged"
        if "OPENBLAS_CORETYPE" in self.found:
            return f"OPENBLAS_CORETYPE={self.found['OPENBLAS_CORETYPE']} from the environment, both sides"
        return "python gets OPENBLAS_CORETYPE = the kernel muonlab reports"


# ----------------------------------------------------------------------------------------
# Pairs, table, summary
# ----------------------------------------------------------------------------------------

def mib(nbytes):
    return nbytes / 2**20


def kernel_name(result):
    """The BLAS kernel, with "+oneDNN" where muonlab runs its fp32 products on oneDNN instead
    (models/kernels/sgemm.h; MUONLAB_FP32_GEMM=blas in the environment makes it like for like)."""
    name = result.get("blas_kernel") or "-"
    if result.get("precision") == "fp32" and str(result.get("fp32_gemm", "")).startswith("oneDNN"):
        name += "+oneDNN"
    return name


def run_side(side, args, case, kernels):
    shape, precision, optimizer = case
    if side == "muonlab":
        cmd, env = muonlab_cmd(args, *case), kernels.muonlab_env()
    else:
        cmd, env = python_cmd(args, *case), kernels.python_env()
    result, sample = run_child(cmd, env, f"{side} ({shape} {precision} {optimizer})")
    if side == "muonlab" and result.get("blas_kernel"):
        kernels.muonlab_kernel = result["blas_kernel"]
    return {"result": result, "sample": sample, "cmd": cmd,
            "openblas_coretype": env.get("OPENBLAS_CORETYPE"),
            "contended": sample["other_cores"] > args.max_other}


HEADER = (f"{'case':<16} {'pair':>4} {'first':<7} {'muonlab tok/s':>13} {'python tok/s':>12} "
          f"{'ratio':>6} {'RSS MiB m':>9} {'RSS MiB p':>9} {'ratio':>6} {'other m':>7} "
          f"{'other p':>7}  {'kernel m/p':<22} flag")


def pair_line(name, index, pair):
    m, p = pair["muonlab"], pair["python"]
    flags = []
    if m["contended"] or p["contended"]:
        flags.append("CONTENDED")
    if not pair["kernel_match"]:
        flags.append("KERNEL-MISMATCH")
    if pair["same_work"]:
        flags.append("DIFFERENT-WORK")
    kernels = f"{kernel_name(m['result'])}/{kernel_name(p['result'])}"
    return (f"{name:<16} {index + 1:>4} {pair['first']:<7} "
            f"{m['result']['tokens_per_s']:>13.0f} {p['result']['tokens_per_s']:>12.0f} "
            f"{pair['ratio_tokens_per_s']:>6.2f} {mib(m['result']['peak_rss_bytes']):>9.1f} "
            f"{mib(p['result']['peak_rss_bytes']):>9.1f} {pair['ratio_peak_rss']:>6.2f} "
            f"{m['sample']['other_cores']:>7.2f} {p['sample']['other_cores']:>7.2f}  "
            f"{kernels:<22} {' '.join(flags) or 'ok'}")


def summarize(pairs):
    ratios = [x["ratio_tokens_per_s"] for x in pairs]
    clean = [x["ratio_tokens_per_s"] for x in pairs if x["clean"]]
    memory = [x["ratio_peak_rss"] for x in pairs]
    return {"pairs": len(pairs), "clean_pairs": len(clean),
            "median_ratio_tokens_per_s": statistics.median(ratios),
            "min_ratio_tokens_per_s": min(ratios), "max_ratio_tokens_per_s": max(ratios),
            "median_ratio_tokens_per_s_clean": statistics.median(clean) if clean else None,
            "min_ratio_tokens_per_s_clean": min(clean) if clean else None,
            "max_ratio_tokens_per_s_clean": max(clean) if clean else None,
            "median_ratio_peak_rss": statistics.median(memory)}


def summary_line(name, s):
    line = (f"{name:<16} tok/s ratio median {s['median_ratio_tokens_per_s']:.2f} "
            f"[{s['min_ratio_tokens_per_s']:.2f}-{s['max_ratio_tokens_per_s']:.2f}] over "
            f"{s['pairs']} pair(s); clean {s['clean_pairs']}/{s['pairs']}: ")
    if s["clean_pairs"]:
        line += (f"{s['median_ratio_tokens_per_s_clean']:.2f} "
                 f"[{s['min_ratio_tokens_per_s_clean']:.2f}-{s['max_ratio_tokens_per_s_clean']:.2f}]")
    else:
        line += "none"
    return line + f"; peak RSS ratio median {s['median_ratio_peak_rss']:.2f}"


def same_work(m, p):
    """"" when both sides report the same parameter count and threads, else what differs."""
    differ = []
    m_params = m.get("model", {}).get("params", m.get("params"))
    if m_params is not None and m_params != p.get("params"):
        differ.append(f"params {m_params} vs {p.get('params')}")
    if m.get("threads") is not None and m.get("threads") != p.get("threads"):
        differ.append(f"threads {m.get('threads')} vs {p.get('threads')}")
    return "; ".join(differ)


def run_case(args, case, kernels):
    name = " ".join(case)
    pairs = []
    for index in range(args.pairs):
        order = ("muonlab", "python") if index % 2 == 0 else ("python", "muonlab")
        sides = {side: run_side(side, args, case, kernels) for side in order}
        m, p = sides["muonlab"], sides["python"]
        pair = {"first": order[0], "muonlab": m, "python": p,
                "ratio_tokens_per_s": m["result"]["tokens_per_s"] / p["result"]["tokens_per_s"],
                "ratio_peak_rss": m["result"]["peak_rss_bytes"] / p["result"]["peak_rss_bytes"],
                "kernel_match": (m["result"].get("blas_kernel") or "-").lower()
                == (p["result"].get("blas_kernel") or "-").lower(),
                "same_work": same_work(m["result"], p["result"]),
                "clean": not (m["contended"] or p["contended"])}
        pairs.append(pair)
        print(pair_line(name, index, pair), flush=True)
    return {"shape": case[0], "shape_dims": dict(zip(
                ("vocab_size", "d_model", "n_layers", "n_heads", "ffn_hidden", "seq_len",
                 "batch_size"), SHAPES[case[0]])),
            "precision": case[1], "optimizer": case[2], "pairs": pairs,
            "summary": summarize(pairs)}


# ----------------------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------------------

def csv_choice(value, allowed, flag):
    items = [x.strip() for x in value.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if not items or bad:
        raise argparse.ArgumentTypeError(
            f"{flag}: unknown {', '.join(bad) or '(empty)'}; use a comma list of {', '.join(allowed)}")
    return items


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="muonlab vs the PyTorch reference (tools/bench/ref_llama.py), in "
                    "alternating pairs; ratios are muonlab / python.")
    p.add_argument("--shapes", default=None, help="comma list of S, M, L, G (default S,M)")
    p.add_argument("--precisions", default="fp32", help="comma list of fp32, bf16 (default fp32)")
    p.add_argument("--optimizers", default="adamw", help="comma list of adamw, muon (default adamw)")
    p.add_argument("--pairs", type=int, default=None, help="pairs per case (default 3, min 1)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed steps per run, passed to both (default 5)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps per run, passed to both (default 2)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--grad-clip", type=float, default=1.0, help="passed to both; 0 = off")
    p.add_argument("--muonlab", default=None, help="muonlab binary (default build/muonlab)")
    p.add_argument("--config", default=None,
                   help="base config for muonlab bench (default configs/bench/base.yaml, or "
                        "configs/bench/s.yaml when that does not exist); every shape, "
                        "precision and optimizer key is set with --set")
    p.add_argument("--max-other", type=float, default=0.15,
                   help="a run is contended when other processes kept more cores busy")
    p.add_argument("--as-found", action="store_true",
                   help="run python with the environment exactly as found (no OPENBLAS_CORETYPE)")
    p.add_argument("--json", default=None, metavar="FILE", help="write all results to FILE")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: tiny shape T, 1 pair, 3 repeats, 1 warm-up step")
    args = p.parse_args(argv)

    try:
        if args.quick:
            if args.shapes:
                p.error("--quick runs only the tiny shape T; drop --shapes")
            args.shapes = ["T"]
        else:
            args.shapes = csv_choice(args.shapes or "S,M", ["S", "M", "L", "G"], "--shapes")
        args.precisions = csv_choice(args.precisions, ["fp32", "bf16"], "--precisions")
        args.optimizers = csv_choice(args.optimizers, ["adamw", "muon"], "--optimizers")
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    defaults = {"pairs": (1, 3), "repeats": (3, 5), "warmup": (1, 2)}  # (quick, normal)
    for key, (quick, normal) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else normal)
    if args.pairs < 1 or args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--pairs, --repeats and --threads must be >= 1, --warmup >= 0")

    args.muonlab = Path(args.muonlab) if args.muonlab else REPO / "build" / "muonlab"
    args.muonlab = args.muonlab.resolve()
    if not (args.muonlab.is_file() and os.access(args.muonlab, os.X_OK)):
        p.error(f"--muonlab: {args.muonlab} is not an executable file; build muonlab first "
                f"(tools/build.sh) or pass --muonlab PATH")
    if args.config:
        args.config = Path(args.config).resolve()
    else:
        base = REPO / "configs" / "bench" / "base.yaml"
        args.config = base if base.exists() else REPO / "configs" / "bench" / "s.yaml"
    if not args.config.is_file():
        p.error(f"--config: {args.config} does not exist")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    kernels = KernelChoice(args.as_found)
    cases = [(s, pr, o) for s in args.shapes for pr in args.precisions for o in args.optimizers]
    print(f"compare: {len(cases)} case(s) x {args.pairs} pair(s), {args.repeats} timed + "
          f"{args.warmup} warm-up steps per run, {args.threads} threads")
    print(f"  muonlab {args.muonlab} bench {args.config}")
    print(f"  python  {sys.executable} {REF}")
    print(f"  BLAS kernel: {kernels.describe()}")
    print(f"  ratio = muonlab / python (tok/s: > 1 muonlab faster; RSS: < 1 muonlab leaner); "
          f"other = cores other processes kept busy during the run, contended above "
          f"{args.max_other}")
    print(HEADER, flush=True)

    started = time.perf_counter()
    results = []
    try:
        for case in cases:
            results.append(run_case(args, case, kernels))
    except CompareError as e:
        print(f"compare: error: {e}", file=sys.stderr)
        return 1

    print()
    for case in results:
        name = f"{case['shape']} {case['precision']} {case['optimizer']}"
        print(summary_line(name, case["summary"]))
    mismatches = sum(not p["kernel_match"] for c in results for p in c["pairs"])
    if mismatches:
        print(f"warning: {mismatches} pair(s) ran different BLAS kernels on the two sides "
              f"(column 'kernel m/p'){' - expected with --as-found' if args.as_found else ''}")
    for c in results:
        for p in c["pairs"]:
            if p["same_work"]:
                print(f"warning: {c['shape']} {c['precision']} {c['optimizer']}: the sides "
                      f"differ ({p['same_work']}): the ratio compares different work")
    elapsed = time.perf_counter() - started
    print(f"compare: done in {elapsed:.1f} s")

    if args.json:
        document = {"settings": {"shapes": args.shapes, "precisions": args.precisions,
                                 "optimizers": args.optimizers, "pairs": args.pairs,
                                 "repeats": args.repeats, "warmup": args.warmup,
                                 "threads": args.threads, "grad_clip": args.grad_clip,
                                 "max_other": args.max_other, "as_found": args.as_found,
                                 "muonlab": str(args.muonlab), "config": str(args.config),
                                 "python": sys.executable,
                                 "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
                                 "clk_tck": CLK_TCK},
                    "elapsed_s": elapsed, "cases": results}
        with open(args.json, "w") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        print(f"compare: wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
