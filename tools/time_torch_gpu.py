#!/usr/bin/python3
"""PyTorch's eager SAR step at bench:gpu's sizes, on CUDA: the physical anchor for its rows.

    python3 tools/time_torch_gpu.py --size ti|s|b|tiny|rn50 [--depth N] [--device cuda] [--iterations 10] [--warmup 3]

The same ViT (timm's layout, time_torch.py's plain torch forward) with random
weights of the size bench:gpu runs (ViT-Ti/S/B at 224 px, 1,000 classes, or
the tiny 32-px one), or the same ResNet-50-GN (make_resnet_fixtures.py's
torch forward, its random weights; SAR adapts the stem's and layer1-3's
GroupNorms), batch 1, the paper's SAR step (time_torch.SAR) with a
margin above any entropy so every sample passes both filters, as bench:gpu's
"SAR step" row. Timed with torch.cuda.synchronize() around each call, medians
of --iterations after --warmup. Prints one JSON line; when torch, CUDA or the
device is missing it prints {"skipped": why} and exits 0, so the bench goes on.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

SIZES = {  # image, patch, width, depth, heads, classes: bench/gpu/run.ts's SIZES
    "tiny": (32, 4, 96, 4, 3, 10),
    "ti": (224, 16, 192, 12, 3, 1000),
    "s": (224, 16, 384, 12, 6, 1000),
    "b": (224, 16, 768, 12, 12, 1000),
}
RESNETS = {  # bench/gpu/run.ts's rn50: timm's resnet50_gn
    "rn50": dict(block="bottleneck", layers=[3, 4, 6, 3], stem=64, widths=[64, 128, 256, 512], groups=32, in_chans=3, image=224,
                 classes=1000, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=sorted(SIZES) + sorted(RESNETS), default="ti")
    ap.add_argument("--depth", type=int)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    try:
        import torch
    except ImportError as e:
        print(json.dumps({"skipped": f"no torch in {sys.executable} ({e})"}))
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(json.dumps({"skipped": f"torch {torch.__version__} has no CUDA device (built with CUDA {torch.version.cuda})"}))
        return 0
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from time_torch import ViT

    dev = torch.device(args.device)
    gen = torch.Generator().manual_seed(16)
    if args.size in RESNETS:
        from make_resnet_fixtures import make_weights, norm_names
        from sizes_torch import Functional
        cfg = RESNETS[args.size]
        w = {k: torch.from_numpy(v) for k, v in make_weights(cfg, gen).items()}
        model = Functional(cfg, w).to(dev)
        params = [model.w(n) for n in norm_names(w) if not n.startswith("layer4.")]
        return run(args, torch, dev, gen, model, params, cfg["image"], cfg["classes"], depth=None)

    image, patch, width, depth, heads, classes = SIZES[args.size]
    if args.depth and image > 32:
        depth = min(depth, args.depth)
    cfg = {"image_size": image, "patch_size": patch, "in_chans": 3, "embed_dim": width, "depth": depth, "num_heads": heads,
           "num_classes": classes, "norm_eps": 1e-6, "global_pool": "token", "mean": [0.5] * 3, "std": [0.5] * 3}
    n = (image // patch) ** 2 + 1

    def rand(*shape, scale):
        return (torch.rand(*shape, generator=gen) * 2 - 1) * scale

    w = {"cls_token": rand(1, 1, width, scale=0.02), "pos_embed": rand(1, n, width, scale=0.02),
         "patch_embed.proj.weight": rand(width, 3, patch, patch, scale=1 / math.sqrt(3 * patch * patch)),
         "patch_embed.proj.bias": torch.zeros(width), "norm.weight": torch.ones(width), "norm.bias": torch.zeros(width),
         "head.weight": rand(classes, width, scale=4 / math.sqrt(width)), "head.bias": torch.zeros(classes)}
    for i in range(depth):
        b = f"blocks.{i}"
        for name, (o, k) in {"attn.qkv": (3 * width, width), "attn.proj": (width, width), "mlp.fc1": (4 * width, width),
                             "mlp.fc2": (width, 4 * width)}.items():
            w[f"{b}.{name}.weight"] = rand(o, k, scale=1 / math.sqrt(k))
            w[f"{b}.{name}.bias"] = torch.zeros(o)
        for j in (1, 2):
            w[f"{b}.norm{j}.weight"] = torch.ones(width)
            w[f"{b}.norm{j}.bias"] = torch.zeros(width)
    model = ViT(cfg, w).to(dev)
    model.mean, model.std = model.mean.to(dev), model.std.to(dev)
    skip = depth // 4
    params = [model.w(f"blocks.{i}.norm{j}.{t}") for i in range(depth - skip) for j in (1, 2) for t in ("weight", "bias")]
    return run(args, torch, dev, gen, model, params, image, classes, depth)


def run(args, torch, dev, gen, model, params, image, classes, depth):
    """Times the model's inference and SAR step on `dev` and prints the JSON line."""
    from time_torch import SAR, softmax_entropy

    for p in params:
        p.requires_grad_(True)
    frames = [torch.rand(1, 3, image, image, generator=gen).to(dev) for _ in range(2)]
    sar = SAR(model, params, lr=1e-4, margin=100 * math.log(classes))

    def inference(i):
        with torch.no_grad():
            softmax_entropy(model(frames[i % 2])).item()

    def step(i):
        sar.step(frames[i % 2])

    def timed(fn):
        for i in range(args.warmup):
            fn(i)
        ms = []
        for i in range(args.iterations):
            torch.cuda.synchronize() if dev.type == "cuda" else None
            t0 = time.perf_counter()
            fn(i)
            torch.cuda.synchronize() if dev.type == "cuda" else None
            ms.append((time.perf_counter() - t0) * 1000)
        return statistics.median(ms)

    inf = timed(inference)
    rel = timed(step)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(json.dumps({"device": name, "torch": torch.__version__, "size": args.size, "depth": depth,
                      "inferenceMs": inf, "sarReliableMs": rel, "ratio": rel / inf}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
