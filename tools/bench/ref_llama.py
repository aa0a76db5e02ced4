#!/usr/bin/python3
"""Independent PyTorch reference of muonlab's LLaMA model and training step, for timing.

What it is: a plain, eager PyTorch re-implementation, written from the equations in
muonlab's C++ sources (models/llama.cpp, models/attention.cpp, models/rope.cpp,
src/train/precision.cpp, optim/muon.cpp, optim/newton_schulz.cpp, optim/registry.cpp),
of the same model (same parameter names, shapes, init order and init scheme), the same
loss under the same precision, and the same optimizers. It times one training step
(random-token batch, forward, backward, gradient clipping, optimizer step) the way an
ordinary PyTorch user would write it, so that tools/bench/compare.py can put muonlab's
`bench --json` figures next to "what plain PyTorch on the same LibTorch does".

What it is not: not a trainer (no data set, no evaluation, no checkpoints, no
schedules), not a correctness oracle for muonlab (it is not tested against muonlab's
numbers bit for bit, although with the same seed the initial weights are drawn in the
same order from the same generator), and it imports nothing from muonlab.

Differences from muonlab that are on purpose (what a PyTorch user would write):
  * gradients are cleared with zero_grad(set_to_none=True) before each step (muonlab
    zeroes them in place after the step; --zero-grad zero does the same here);
  * gradient clipping is torch.nn.utils.clip_grad_norm_ (fp32 norms, always rescales);
    muonlab takes per-parameter norms in fp64 and rescales only when above the limit;
  * AdamW is torch.optim.AdamW (per-parameter loop); muonlab has a fused kernel.

Usage (all shape flags have small defaults):
  /usr/bin/python3 tools/bench/ref_llama.py --vocab 2048 --d 256 --layers 4 --heads 4 \
      --kv 4 --ffn 704 --seq 128 --batch 16 --precision fp32 --optimizer adamw --json
"""

import argparse
import ctypes
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


# ----------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------

def rms_norm(x, gain, eps):
    """x * rsqrt(mean(x^2) + eps) * gain over the last dim (models/llama.cpp rms_norm)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


class Rope:
    """Rotary embedding, half-rotation layout: dim j of the first half pairs with j + D/2.

    Tables are built in fp64 (freq_j = theta^(-2j/D), angle = pos * freq) and kept in fp32,
    then cast to the input's dtype when applied (bf16 under autocast), as models/rope.cpp does.
    """

    def __init__(self, head_dim, max_seq_len, theta):
        j = torch.arange(head_dim // 2, dtype=torch.float64)
        freqs = torch.pow(theta, -2.0 * j / head_dim)               # (D/2)
        pos = torch.arange(max_seq_len, dtype=torch.float64)        # (T)
        angles = torch.outer(pos, freqs)                            # (T, D/2)
        self.cos = torch.cos(angles).to(torch.float32)
        self.sin = torch.sin(angles).to(torch.float32)

    def apply(self, x):
        """x (B, H, T, D) -> rotated x, same shape and dtype."""
        T, D = x.size(-2), x.size(-1)
        cos = self.cos[:T].to(x.dtype)                              # (T, D/2)
        sin = self.sin[:T].to(x.dtype)
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


_mask_cache = {}


def causal_mask(T):
    """Bool (T, T), True above the diagonal (future positions); cached per T."""
    if T not in _mask_cache:
        _mask_cache[T] = torch.ones(T, T, dtype=torch.bool).triu(1)
    return _mask_cache[T]


def causal_attention(q, k, v):
    """q (B, H, T, D), k and v (B, Hkv, T, D) -> (B, H, T, D).

    As models/attention.cpp: the G = H/Hkv query heads sharing a kv head are folded into
    the row dimension (no K/V copies); explicit scores, masked_fill with -inf, softmax,
    weighted sum. (LibTorch 1.13 has no fused scaled-dot-product attention.)
    """
    B, H, T, D = q.shape
    Hkv = k.size(1)
    G = H // Hkv
    scale = 1.0 / math.sqrt(D)
    qg = (q * scale).reshape(B, Hkv, G * T, D)                      # (B, Hkv, G*T, D)
    scores = torch.matmul(qg, k.transpose(-2, -1))                  # (B, Hkv, G*T, T)
    scores = scores.view(B, Hkv, G, T, T)
    scores.masked_fill_(causal_mask(T), float("-inf"))
    probs = torch.softmax(scores, -1).view(B, Hkv, G * T, T)
    out = torch.matmul(probs, v)                                    # (B, Hkv, G*T, D)
    return out.view(B, H, T, D)


class Holder(nn.Module):
    """A module that only holds parameters, so names read like muonlab's ("blocks.0.attn.wq")."""


class Llama(nn.Module):
    """Token embedding, n pre-norm blocks, final RMSNorm, untied LM head. No biases."""

    def __init__(self, vocab, d, layers, heads, kv_heads, ffn, seq_len,
                 rope_theta=10000.0, norm_eps=1e-5, init_std=0.02):
        super().__init__()
        assert d % heads == 0 and heads % kv_heads == 0 and (d // heads) % 2 == 0
        self.vocab, self.d, self.layers = vocab, d, layers
        self.heads, self.kv_heads, self.ffn, self.seq_len = heads, kv_heads, ffn, seq_len
        self.head_dim = d // heads
        self.norm_eps, self.init_std = norm_eps, init_std
        HD, KD = heads * self.head_dim, kv_heads * self.head_dim
        self.rope = Rope(self.head_dim, seq_len, rope_theta)

        empty = lambda *shape: nn.Parameter(torch.empty(*shape))
        self.tok_emb = empty(vocab, d)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            block = Holder()
            block.attn_norm = empty(d)
            block.attn = Holder()
            block.attn.wq = empty(HD, d)
            block.attn.wk = empty(KD, d)
            block.attn.wv = empty(KD, d)
            block.attn.wo = empty(d, HD)
            block.mlp_norm = empty(d)
            block.mlp = Holder()
            block.mlp.w1 = empty(ffn, d)
            block.mlp.w3 = empty(ffn, d)
            block.mlp.w2 = empty(d, ffn)
            self.blocks.append(block)
        self.final_norm = empty(d)
        self.lm_head = empty(vocab, d)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """N(0, std); wo and w2 N(0, std/sqrt(2L)); gains 1. Same draw order as muonlab."""
        std = self.init_std
        residual_std = std / math.sqrt(2.0 * self.layers)
        self.tok_emb.normal_(0.0, std)
        for b in self.blocks:
            b.attn_norm.fill_(1.0)
            b.attn.wq.normal_(0.0, std)
            b.attn.wk.normal_(0.0, std)
            b.attn.wv.normal_(0.0, std)
            b.attn.wo.normal_(0.0, residual_std)
            b.mlp_norm.fill_(1.0)
            b.mlp.w1.normal_(0.0, std)
            b.mlp.w3.normal_(0.0, std)
            b.mlp.w2.normal_(0.0, residual_std)
        self.final_norm.fill_(1.0)
        self.lm_head.normal_(0.0, std)

    def named_params(self):
        """(name, param) in muonlab's fixed order (llama.cpp named_params: w1, w3, w2)."""
        out = [("tok_emb", self.tok_emb)]
        for i, b in enumerate(self.blocks):
            p = f"blocks.{i}."
            out += [(p + "attn_norm", b.attn_norm), (p + "attn.wq", b.attn.wq),
                    (p + "attn.wk", b.attn.wk), (p + "attn.wv", b.attn.wv),
                    (p + "attn.wo", b.attn.wo), (p + "mlp_norm", b.mlp_norm),
                    (p + "mlp.w1", b.mlp.w1), (p + "mlp.w3", b.mlp.w3), (p + "mlp.w2", b.mlp.w2)]
        out += [("final_norm", self.final_norm), ("lm_head", self.lm_head)]
        return out

    def block_forward(self, b, x):
        """x (B, T, C) -> x + attn(norm(x)), then + mlp(norm(.))."""
        B, T, C = x.shape
        H, Hkv, D = self.heads, self.kv_heads, self.head_dim
        h = rms_norm(x, b.attn_norm, self.norm_eps)
        q = F.linear(h, b.attn.wq).view(B, T, H, D).transpose(1, 2)      # (B, H, T, D)
        k = F.linear(h, b.attn.wk).view(B, T, Hkv, D).transpose(1, 2)    # (B, Hkv, T, D)
        v = F.linear(h, b.attn.wv).view(B, T, Hkv, D).transpose(1, 2)
        y = causal_attention(self.rope.apply(q), self.rope.apply(k), v)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)
        r = x + F.linear(y, b.attn.wo)

        h = rms_norm(r, b.mlp_norm, self.norm_eps)
        gate = F.silu(F.linear(h, b.mlp.w1))                              # (B, T, F)
        up = F.linear(h, b.mlp.w3)
        return r + F.linear(gate * up, b.mlp.w2)

    def forward(self, idx):
        """idx (B, T) int64 -> logits (B, T, V)."""
        x = F.embedding(idx, self.tok_emb)
        for b in self.blocks:
            x = self.block_forward(b, x)
        x = rms_norm(x, self.final_norm, self.norm_eps)
        return F.linear(x, self.lm_head)


def closed_form_param_count(vocab, d, layers, heads, kv_heads, ffn):
    """muonlab's llama_param_count (untied head), to check the model against."""
    head_dim = d // heads
    HD, KD = heads * head_dim, kv_heads * head_dim
    per_block = 2 * d + d * HD + 2 * d * KD + HD * d + 3 * d * ffn
    return vocab * d + layers * per_block + d + vocab * d


def model_loss(model, inputs, targets, precision):
    """Mean next-token cross-entropy. bf16: forward under CPU autocast, logits to fp32 for
    the cross-entropy (src/train/precision.cpp); master weights stay fp32."""
    if precision != "bf16":
        logits = model(inputs)
        return F.cross_entropy(logits.reshape(-1, model.vocab), targets.reshape(-1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(inputs)
    return F.cross_entropy(logits.to(torch.float32).flatten(0, 1), targets.flatten())


# ----------------------------------------------------------------------------------------
# Optimizers
# ----------------------------------------------------------------------------------------

KELLER = (3.4445, -4.7750, 2.0315)


@torch.no_grad()
def newton_schulz(g, steps=5, coefficients=KELLER, bf16=True, eps=1e-7):
    """g (..., m, n) -> approximately U V^T, same dtype and shape (optim/newton_schulz.cpp).

    Transposed when tall, Frobenius-normalised in fp32 (eps 1e-7), then `steps` quintic
    iterations X <- a X + (b A + c A A) X with A = X X^T, in bf16 unless bf16=False.
    """
    a, b, c = coefficients
    tall = g.size(-2) > g.size(-1)
    x = g.to(torch.float32)
    if tall:
        x = x.transpose(-2, -1)
    norm = torch.linalg.vector_norm(x, 2, dim=(-2, -1), keepdim=True)
    x = x / (norm + eps)
    if bf16:
        x = x.to(torch.bfloat16)
    for _ in range(steps):
        gram = torch.matmul(x, x.transpose(-2, -1))
        poly = torch.matmul(gram, gram).mul_(c).add_(gram, alpha=b)
        x = torch.matmul(poly, x).add_(x, alpha=a)
    if tall:
        x = x.transpose(-2, -1)
    return x.to(g.dtype)


class Muon:
    """Muon for 2-D hidden matrices, as optim/muon.cpp with its defaults:
    m <- beta m + (1-beta) g (fp32); u = (1-beta) g + beta m (Nesterov); O = NS(u), with
    same-shape matrices stacked into one batched Newton-Schulz; W <- W (1 - lr wd) (only if
    wd != 0); W <- W - lr sqrt(max(1, rows/cols)) O."""

    def __init__(self, params, lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.0,
                 ns_steps=5, ns_bf16=True):
        self.params = list(params)
        for p in self.params:
            assert p.dim() == 2, "Muon takes only 2-D matrices"
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.weight_decay, self.ns_steps, self.ns_bf16 = weight_decay, ns_steps, ns_bf16
        self.buffers = [torch.zeros_like(p, dtype=torch.float32) for p in self.params]

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.zero_()

    @torch.no_grad()
    def step(self):
        beta = self.momentum
        inputs = {}
        by_shape = {}  # (rows, cols) -> indices, for batched orthogonalisation
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad32 = p.grad.to(torch.float32)
            self.buffers[i].lerp_(grad32, 1.0 - beta)
            inputs[i] = grad32.lerp(self.buffers[i], beta) if self.nesterov else self.buffers[i]
            by_shape.setdefault((p.size(0), p.size(1)), []).append(i)

        lr, wd = self.lr, self.weight_decay
        for (rows, cols) in sorted(by_shape):  # muonlab iterates a std::map: sorted by shape
            indices = by_shape[(rows, cols)]
            batch = [inputs[i] for i in indices]
            stacked = batch[0] if len(batch) == 1 else torch.stack(batch)
            ortho = newton_schulz(stacked, self.ns_steps, KELLER, self.ns_bf16)
            updates = [ortho] if len(batch) == 1 else ortho.unbind(0)
            step_size = lr * math.sqrt(max(1.0, rows / cols))
            for i, update in zip(indices, updates):
                p = self.params[i]
                update = update.to(p.dtype)
                if wd != 0:
                    p.mul_(1.0 - lr * wd)
                p.add_(update, alpha=-step_size)


def adamw_groups(named, lr, weight_decay):
    """torch.optim.AdamW param groups: decoupled decay on >= 2-D params only."""
    matrices = [p for _, p in named if p.dim() >= 2]
    vectors = [p for _, p in named if p.dim() < 2]
    groups = []
    if matrices:
        groups.append({"params": matrices, "lr": lr, "weight_decay": weight_decay})
    if vectors:
        groups.append({"params": vectors, "lr": lr, "weight_decay": 0.0})
    return groups


class OptimizerSet:
    """Several optimizers over disjoint parameters, stepped together (main, then aux)."""

    def __init__(self, parts):
        self.parts = parts

    def zero_grad(self, set_to_none=True):
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def step(self):
        for part in self.parts:
            part.step()


def build_optimizer(model, kind):
    """Routing as optim/registry.cpp's defaults: hidden 2-D "blocks.*" matrices to the main
    optimizer; token embedding, LM head and the 1-D gains to an auxiliary AdamW
    (lr 3e-3, betas (0.9, 0.95), eps 1e-8, wd 0.1 on >= 2-D).

    adamw: main = AdamW lr 1e-3, wd 0.1 (as configs/bench's optim.lr / optim.weight_decay).
    muon:  main = Muon lr 0.02, momentum 0.95, Nesterov, wd 0.
    """
    named = model.named_params()
    hidden = [(n, p) for n, p in named if n.startswith("blocks.") and p.dim() == 2]
    rest = [(n, p) for n, p in named if not (n.startswith("blocks.") and p.dim() == 2)]
    betas, eps = (0.9, 0.95), 1e-8
    if kind == "adamw":
        main = torch.optim.AdamW(adamw_groups(hidden, 1e-3, 0.1), lr=1e-3, betas=betas, eps=eps)
    elif kind == "muon":
        main = Muon([p for _, p in hidden], lr=0.02, momentum=0.95, nesterov=True,
                    weight_decay=0.0, ns_steps=5, ns_bf16=True)
    else:
        raise ValueError(f"unknown optimizer {kind!r}")
    aux = torch.optim.AdamW(adamw_groups(rest, 3e-3, 0.1), lr=3e-3, betas=betas, eps=eps)
    return OptimizerSet([main, aux])


# ----------------------------------------------------------------------------------------
# Runtime facts
# ----------------------------------------------------------------------------------------

def openblas_kernel():
    """The OpenBLAS core name of the libopenblas this process loaded, or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return None
    candidates = sorted(p for p in paths if "openblas" in os.path.basename(p))
    candidates += sorted(p for p in paths if "openblas" in p and p not in candidates)
    for path in candidates:
        try:
            fn = ctypes.CDLL(path).openblas_get_corename
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        name = fn()
        return name.decode() if name else None
    return None


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


# ----------------------------------------------------------------------------------------
# Training step and timing
# ----------------------------------------------------------------------------------------

def random_batch(vocab, batch, seq):
    """Uniform random tokens (B, T+1) -> inputs (B, T), next-token targets (B, T)."""
    tokens = torch.randint(0, vocab, (batch, seq + 1))
    return tokens[:, :-1], tokens[:, 1:]


def clip(params, max_norm):
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)


def time_steps(model, optimizer, args):
    """`warmup` untimed then `repeats` timed steps; per-phase seconds of the timed ones."""
    params = [p for _, p in model.named_params()]
    set_to_none = args.zero_grad == "none"
    phases = {"data": [], "forward": [], "backward": [], "optimizer": [], "step": []}
    loss_value = float("nan")
    for i in range(args.warmup + args.repeats):
        t0 = time.perf_counter()
        inputs, targets = random_batch(args.vocab, args.batch, args.seq)
        t1 = time.perf_counter()
        if set_to_none:
            optimizer.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        loss = model_loss(model, inputs, targets, args.precision)
        t3 = time.perf_counter()
        loss.backward()
        t4 = time.perf_counter()
        clip(params, args.grad_clip)
        optimizer.step()
        if not set_to_none:
            optimizer.zero_grad(set_to_none=False)  # muonlab's order: zeroed after the step
        t5 = time.perf_counter()
        loss_value = loss.item()
        if i < args.warmup:
            continue
        # zero_grad counts as optimizer time, as muonlab's bench counts it.
        split = {"data": t1 - t0, "forward": t3 - t2, "backward": t4 - t3,
                 "optimizer": (t2 - t1) + (t5 - t4)}
        for key, value in split.items():
            phases[key].append(value)
        phases["step"].append(sum(split.values()))
    return {key: statistics.median(values) for key, values in phases.items()}, loss_value


def check_loss_decreases(model, optimizer, args, steps=20):
    """Self-check: `steps` steps on one fixed batch must lower the loss. Returns exit code."""
    params = [p for _, p in model.named_params()]
    inputs, targets = random_batch(args.vocab, args.batch, args.seq)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = model_loss(model, inputs, targets, args.precision)
        loss.backward()
        clip(params, args.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    ok = all(math.isfinite(x) for x in losses) and losses[-1] < losses[0] - 0.1
    print(f"check-loss-decreases {args.precision} {args.optimizer}: "
          f"{losses[0]:.4f} -> {losses[-1]:.4f} over {steps} steps: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch reference of muonlab's LLaMA training step")
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--kv", type=int, default=None, help="kv heads (default: --heads)")
    p.add_argument("--ffn", type=int, default=0, help="0 = round_up(8/3 d, 64) as muonlab")
    p.add_argument("--seq", type=int, default=32)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--optimizer", choices=["adamw", "muon"], default="adamw")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--grad-clip", type=float, default=1.0, help="0 = off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--zero-grad", choices=["none", "zero"], default="none",
                   help="none: zero_grad(set_to_none=True) before the step (default); "
                        "zero: zero the gradients in place after the step, as muonlab does")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--check-loss-decreases", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.kv is None:
        args.kv = args.heads
    if args.ffn == 0:
        args.ffn = (8 * args.d // 3 + 63) // 64 * 64
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1, --warmup >= 0")
    if args.d % args.heads or args.heads % args.kv or (args.d // args.heads) % 2:
        p.error("--heads must divide --d with an even head dim, and --kv must divide --heads")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Llama(args.vocab, args.d, args.layers, args.heads, args.kv, args.ffn, args.seq)
    params = sum(p.numel() for _, p in model.named_params())
    expected = closed_form_param_count(args.vocab, args.d, args.layers, args.heads, args.kv,
                                       args.ffn)
    assert params == expected, f"parameter count {params} != closed form {expected}"
    optimizer = build_optimizer(model, args.optimizer)
    if args.check_loss_decreases:
        return check_loss_decreases(model, optimizer, args)

    medians, last_loss = time_steps(model, optimizer, args)
    tokens = args.batch * args.seq
    result = {
        "impl": "python",
        "threads": torch.get_num_threads(),
        "blas_kernel": openblas_kernel(),
        "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
        "libtorch": torch.__version__,
        "precision": args.precision,
        "optimizer": args.optimizer,
        "zero_grad": args.zero_grad,
        "grad_clip": args.grad_clip,
        "model": {"vocab_size": args.vocab, "d_model": args.d, "n_layers": args.layers,
                  "n_heads": args.heads, "n_kv_heads": args.kv, "ffn_dim": args.ffn,
                  "seq_len": args.seq, "batch_size": args.batch, "params": params},
        "params": params,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "tokens_per_step": tokens,
        "step_s": medians["step"],
        "tokens_per_s": tokens / medians["step"],
        "split_s": {k: medians[k] for k in ("data", "forward", "backward", "optimizer")},
        "peak_rss_bytes": peak_rss_bytes(),
        "last_loss": last_loss,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    s = result["split_s"]
    print(f"python reference | threads {result['threads']} | OpenBLAS kernel "
          f"{result['blas_kernel']} | torch {torch.__version__}")
    print(f"model: {params} parameters, batch {args.batch} x {args.seq} tokens, "
          f"{args.precision}, {args.optimizer}")
    print(f"training step: {1e3 * result['step_s']:.1f} ms, {result['tokens_per_s']:.0f} tok/s "
          f"(median of {args.repeats} after {args.warmup} warm-up steps)")
    print(f"  data {1e3 * s['data']:.2f} ms | forward {1e3 * s['forward']:.1f} ms | backward "
          f"{1e3 * s['backward']:.1f} ms | optimizer {1e3 * s['optimizer']:.1f} ms")
    print(f"  peak resident memory {result['peak_rss_bytes'] / 2**20:.1f} MiB; "
          f"last loss {last_loss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
