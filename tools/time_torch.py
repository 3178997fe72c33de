#!/usr/bin/python3
"""Times inference and a SAR step in PyTorch on the shipped model, for `npm run bench:step`.

    /usr/bin/python3 tools/time_torch.py [--model public/models/fmnist-vit] [--iterations 50] [--warmup 10]

What a server-side user of SAR would run: eager PyTorch, the paper's step
(github mr-eggplant/SAR: the prediction's forward keeps its graph for
Loss1's backward; SAM first step; second forward and backward; SAM second
step = restore θ and SGD with momentum; EMA; reset check), with gradients
enabled only for the LayerNorm scale/shift that SAR adapts (blocks but the
last quarter, no final norm), and our reliable-only update (an unreliable
sample costs its forward and nothing else). Batch size 1, the model's exact
weights (a small safetensors reader below; Debian's python3-torch has no
safetensors package), a plain torch ViT written here in timm's layout.

Timed, each as the median of --iterations after --warmup (in rounds of one
call each, with the medians of the per-round ratios), with 1 thread and with
all threads (torch.set_num_threads):
  inference      forward under no_grad, softmax, entropy, .item() (the read)
  sarReliable    a full SAR step on a sample that passes both filters
  sarUnreliable  forward with autograd on (the step cannot know beforehand),
                 entropy, the filter says no: nothing else
Prints one JSON object. `check` holds the logits of a constant input (all
pixels 0.5) so the caller can confirm both engines ran the same model.
"""

import argparse
import json
import math
import os
import platform
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[base + start : base + end], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[base + start : base + end], dtype=DTYPES[info["dtype"]]).astype(np.float32)
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


class ViT(torch.nn.Module):
    """timm's VisionTransformer forward (class token, pre-norm blocks, exact GELU)."""

    def __init__(self, cfg, weights):
        super().__init__()
        self.cfg = cfg
        self.p = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v, requires_grad=False) for k, v in weights.items()})
        c = cfg["in_chans"]
        self.mean = torch.tensor(cfg["mean"]).view(1, c, 1, 1)
        self.std = torch.tensor(cfg["std"]).view(1, c, 1, 1)

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def ln(self, x, name):
        return F.layer_norm(x, x.shape[-1:], self.w(name + ".weight"), self.w(name + ".bias"), self.cfg["norm_eps"])

    def lin(self, x, name):
        return F.linear(x, self.w(name + ".weight"), self.w(name + ".bias"))

    def forward(self, x):
        cfg = self.cfg
        B = x.shape[0]
        D, H = cfg["embed_dim"], cfg["num_heads"]
        x = (x - self.mean) / self.std
        x = F.conv2d(x, self.w("patch_embed.proj.weight"), self.w("patch_embed.proj.bias"), stride=cfg["patch_size"])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.w("cls_token").expand(B, -1, -1), x], 1) + self.w("pos_embed")
        N = x.shape[1]
        for i in range(cfg["depth"]):
            b = f"blocks.{i}"
            h = self.ln(x, b + ".norm1")
            qkv = self.lin(h, b + ".attn.qkv").reshape(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            attn = (q @ k.transpose(-2, -1)) * (D // H) ** -0.5
            o = (attn.softmax(-1) @ v).transpose(1, 2).reshape(B, N, D)
            x = x + self.lin(o, b + ".attn.proj")
            h = self.ln(x, b + ".norm2")
            x = x + self.lin(F.gelu(self.lin(h, b + ".mlp.fc1")), b + ".mlp.fc2")
        if cfg.get("global_pool", "token") == "token":
            pooled = self.ln(x, "norm")[:, 0]
        elif "fc_norm.weight" in self.p.keys() or "fc_norm__weight" in self.p.keys():
            pooled = self.ln(x[:, 1:].mean(1), "fc_norm")
        else:
            pooled = self.ln(x, "norm")[:, 1:].mean(1)
        return self.lin(pooled, "head")


def softmax_entropy(logits):
    return -(logits.softmax(1) * logits.log_softmax(1)).sum(1)


class SAR:
    """The paper's step with our semantics (reliable-only update, reset zeroes momentum and clears the EMA)."""

    def __init__(self, model, params, lr=1e-3, margin=0.4 * math.log(10), rho=0.05, reset_threshold=0.0):
        self.model, self.params = model, params
        self.source = [p.detach().clone() for p in params]
        self.opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
        self.margin, self.rho, self.reset_threshold = margin, rho, reset_threshold
        self.ema = None

    def step(self, x):
        logits = self.model(x)  # the prediction, its graph kept for Loss1
        ent = softmax_entropy(logits)
        keep = torch.where(ent < self.margin)[0]
        prediction = logits.detach().argmax(1)
        if len(keep) == 0:
            return prediction
        ent[keep].mean().backward()
        grads = [p.grad for p in self.params]
        norm = torch.norm(torch.stack([g.norm(2) for g in grads]), 2)
        eps = []
        with torch.no_grad():  # SAM first step: θ ← θ + ρ g / ‖g‖
            for p, g in zip(self.params, grads):
                e = g * (self.rho / (norm + 1e-12))
                p.add_(e)
                eps.append(e)
        self.opt.zero_grad()
        ent2 = softmax_entropy(self.model(x[keep]))
        keep2 = torch.where(ent2 < self.margin)[0]
        loss2 = ent2[keep2].mean()
        if len(keep2) > 0:
            loss2.backward()
        with torch.no_grad():  # SAM second step: back to θ, SGD with g(θ + ε)
            for p, e in zip(self.params, eps):
                p.sub_(e)
        if len(keep2) > 0:
            self.opt.step()
            v = loss2.item()
            self.ema = v if self.ema is None else 0.9 * self.ema + 0.1 * v
        self.opt.zero_grad()
        if self.ema is not None and self.ema < self.reset_threshold:
            with torch.no_grad():
                for p, s in zip(self.params, self.source):
                    p.copy_(s)
            self.opt.state.clear()
            self.ema = None
        return prediction


def timed(fns, warmup, iterations):
    """ms of each function, run in rounds of one call each, so load changes on the machine hit all alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for r in range(iterations):
        for j in range(len(fns)):
            k = (j + r) % len(fns)  # the order turns each round: no call always follows the same one
            fn = fns[k]
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1000)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="public/models/fmnist-vit")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()

    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("norm_eps", 1e-6)
    model = ViT(cfg, read_safetensors(os.path.join(args.model, "model.safetensors")))
    depth = cfg["depth"]
    skip = depth // 4
    names = [f"blocks.{i}.norm{j}.{t}" for i in range(depth - skip) for j in (1, 2) for t in ("weight", "bias")]
    params = [model.w(n) for n in names]
    for p in params:
        p.requires_grad_(True)

    C, S = cfg["in_chans"], cfg["image_size"]
    gen = torch.Generator().manual_seed(0)
    frames = [torch.rand(1, C, S, S, generator=gen) for _ in range(16)]
    with torch.no_grad():
        check = model(torch.full((1, C, S, S), 0.5))[0].tolist()

    results = {}
    all_threads = os.cpu_count() or 1
    for threads in sorted({1, all_threads}):
        torch.set_num_threads(threads)
        i = [0]

        def frame():
            i[0] += 1
            return frames[i[0] % len(frames)]

        def inference():
            with torch.no_grad():
                softmax_entropy(model(frame())).item()

        # A margin above any entropy: every sample passes both filters (the full step); 0: none does.
        reliable = SAR(model, params, lr=1e-4, margin=100 * math.log(cfg["num_classes"]))
        unreliable = SAR(model, params, lr=1e-4, margin=0.0)
        source = [p.detach().clone() for p in params]
        times = timed([inference, lambda: reliable.step(frame()), lambda: unreliable.step(frame())], args.warmup, args.iterations)
        inf, rel, unrel = (statistics.median(t) for t in times)
        results[str(threads)] = {
            "inferenceMs": inf,
            "sarReliableMs": rel,
            "sarUnreliableMs": unrel,
            # Medians of per-round ratios (one of each per round, milliseconds apart).
            "reliableRatio": statistics.median(r / i for r, i in zip(times[1], times[0])),
            "unreliableRatio": statistics.median(u / i for u, i in zip(times[2], times[0])),
        }
        with torch.no_grad():
            for p, s in zip(params, source):
                p.copy_(s)

    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "python": platform.python_version(),
                "cpus": all_threads,
                "model": args.model,
                "adapted": len(names),
                "check": check,
                "threads": results,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
