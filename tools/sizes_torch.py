#!/usr/bin/python3
"""PyTorch side of `npm run bench:step -- --sizes ...` (bench/sizes.ts) and of tools/sizes-parity.test.ts.

    /usr/bin/python3 tools/sizes_torch.py --model DIR --spec SPEC.json [--onnx OUT.onnx]
                                          [--time] [--rounds 5] [--warmup 1]

DIR is a model folder as `npm run make-model` (or training) writes it
(model.safetensors in timm's layout); SPEC.json is the architecture as
wildtta's loader resolved it from that folder (bench/sizes.ts writes it), so
that this side builds the same network rather than guessing it again from
timm's names. The networks are the plain-PyTorch definitions the fixtures
already use, with no code shared with the TypeScript models: the ViT of
tools/time_torch.py, the GroupNorm ResNet forward of
tools/make_resnet_fixtures.py and the ConvNeXt forward of
tools/make_convnext_fixtures.py, all in float32 with the file's weights.

--onnx    exports the network with torch.onnx.export (TorchScript exporter,
          opset 17: LayerNormalization is one node there), input `pixels`
          NCHW in [0, 1] (the normalisation is inside), output `logits`.
--time    times, with 1 thread and with all threads, an inference (no_grad
          forward, softmax entropy, .item()) and the paper's SAR step on a
          reliable sample (tools/time_torch.py's SAR, the norms wildtta adapts:
          a ViT's blocks but the last quarter, a ResNet's stem and layer1-3,
          a ConvNeXt's stem and every stage but the last),
          --rounds rounds of one each after --warmup, the order turning.

Prints one JSON object: torch's version, `check` (the logits of the
deterministic image below, to compare engines), and `threads` when timed.
"""

import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from time_torch import SAR, ViT, read_safetensors, softmax_entropy, timed  # noqa: E402
from make_resnet_fixtures import logits_of, norm_names  # noqa: E402
import make_convnext_fixtures as convnext  # noqa: E402


def check_image(size, channels):
    """The parity image, NCHW: pixel i of the NHWC layout is ((37 i + 11) mod 101) / 100 (bench/sizes-page.ts builds the same)."""
    i = torch.arange(size * size * channels, dtype=torch.int64)
    nhwc = (((i * 37 + 11) % 101).float() / 100).reshape(1, size, size, channels)
    return nhwc.permute(0, 3, 1, 2).contiguous()


class Functional(torch.nn.Module):
    """A fixtures' forward (make_resnet_fixtures', make_convnext_fixtures') over parameters, NCHW in (it wants NHWC, so a transpose each way, both cheap)."""

    def __init__(self, cfg, weights, forward=logits_of):
        super().__init__()
        self.cfg = cfg
        self.logits_of = forward
        self.names = list(weights)
        self.p = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v, requires_grad=False) for k, v in weights.items()})

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def forward(self, x):
        return self.logits_of(self.cfg, {n: self.w(n) for n in self.names}, x.permute(0, 2, 3, 1))


def build(spec, weights):
    """The module and the names of the norm tensors wildtta's SAR adapts."""
    if spec["family"] == "vit":
        cfg = {
            "in_chans": spec["inChannels"],
            "image_size": spec["imageSize"],
            "patch_size": spec["patchSize"],
            "embed_dim": spec["width"],
            "depth": spec["depth"],
            "num_heads": spec["heads"],
            "num_classes": spec["numClasses"],
            "norm_eps": spec["normEps"],
            "global_pool": spec["pool"],
            "mean": spec["mean"],
            "std": spec["std"],
        }
        model = ViT(cfg, weights)
        depth = cfg["depth"]
        adapted = [f"blocks.{i}.norm{j}.{t}" for i in range(depth - depth // 4) for j in (1, 2) for t in ("weight", "bias")]
        return model, adapted
    if spec["family"] == "resnet-gn":
        if abs(spec["normEps"] - 1e-5) > 1e-12:
            raise SystemExit(f"make_resnet_fixtures' forward has GroupNorm eps 1e-5, the model says {spec['normEps']}")
        cfg = {
            "groups": spec["groups"],
            "mean": spec["mean"],
            "std": spec["std"],
            "block": spec["block"],
            "layers": spec["layers"],
            "stem": spec["stemWidth"],
            "widths": spec["widths"],
        }
        model = Functional(cfg, weights)
        # SAR's reference leaves the last stage alone; wildtta's ResNet adapter does the same.
        adapted = [n for n in norm_names(weights) if not n.startswith("layer4.")]
        return model, adapted
    if spec["family"] == "convnext":
        if abs(spec["normEps"] - convnext.EPS) > 1e-12:
            raise SystemExit(f"make_convnext_fixtures' forward has LayerNorm eps {convnext.EPS}, the model says {spec['normEps']}")
        # A conv_mlp file's [out, in, 1, 1] MLP weights are the Linear layers' [out, in].
        weights = {k: v.reshape(v.shape[0], v.shape[1]) if ".mlp.fc" in k and v.dim() == 4 else v for k, v in weights.items()}
        cfg = {"patch": spec["patch"], "kernel": spec["kernels"], "depths": spec["depths"], "dims": spec["dims"], "mean": spec["mean"], "std": spec["std"]}
        model = Functional(cfg, weights, convnext.logits_of)
        # wildtta's ConvNeXt rule: the stem's and every stage's LayerNorms but the last stage's; head.norm only for Tent/EATA.
        last = len(spec["depths"]) - 1
        adapted = [n for n in weights if convnext.is_norm(n) and not n.startswith((f"stages.{last}.", "head.norm."))]
        return model, adapted
    raise SystemExit(f"unknown family {spec['family']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--onnx")
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()

    with open(args.spec) as f:
        spec = json.load(f)
    model, adapted = build(spec, read_safetensors(os.path.join(args.model, "model.safetensors")))
    model.eval()
    S, C = spec["imageSize"], spec["inChannels"]
    image = check_image(S, C)
    with torch.no_grad():
        check = model(image)[0].tolist()
    out = {"torch": torch.__version__, "cpus": os.cpu_count() or 1, "adapted": len(adapted), "check": check}

    if args.onnx:
        with torch.no_grad():
            torch.onnx.export(model, (image,), args.onnx, input_names=["pixels"], output_names=["logits"], opset_version=17, do_constant_folding=True)
        out["onnx"] = args.onnx

    if args.time:
        params = [model.w(n) for n in adapted]
        for p in params:
            p.requires_grad_(True)
        gen = torch.Generator().manual_seed(0)
        frames = [torch.rand(1, C, S, S, generator=gen) for _ in range(4)]
        source = [p.detach().clone() for p in params]
        threads = {}
        for n in sorted({1, out["cpus"]}):
            torch.set_num_threads(n)
            k = [0]

            def frame():
                k[0] += 1
                return frames[k[0] % len(frames)]

            def inference():
                with torch.no_grad():
                    softmax_entropy(model(frame())).item()

            # A margin above any entropy: every sample passes both of SAR's filters (the full step).
            sar = SAR(model, params, lr=1e-5, margin=100 * math.log(spec["numClasses"]))
            inf, step = timed([inference, lambda: sar.step(frame())], args.warmup, args.rounds)
            threads[str(n)] = {"inferenceMs": inf, "sarMs": step}
            with torch.no_grad():
                for p, s in zip(params, source):
                    p.copy_(s)
        out["threads"] = threads
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
