#!/usr/bin/python3
"""PyTorch reference fixtures for the tfjs ViT (src/model/vit.test.ts).

    /usr/bin/python3 tools/make_fixtures.py        (npm run fixtures)

The forward pass below is written from torch primitives only (F.conv2d,
F.layer_norm, F.linear, F.gelu, softmax), following timm's VisionTransformer,
and shares no code with the TypeScript model: if both agree, both read the
timm layout the same way. Everything is computed in float64 from the float32
(or F16/BF16) values actually stored, so the only error the test sees is the
tfjs float32 arithmetic.

Output, for each fixture, in e2e/fixtures/<name>/:
  model.safetensors     F32 weights, timm names
  config.json           our config keys (src/model/config.ts)
  expected.safetensors  F32: inputs [B,H,W,C] in [0,1]; logits [B,classes];
                        grad.<name> for every LayerNorm weight/bias = gradient of
                        mean over the batch of -sum(p log p), p = softmax(logits)
For the fixture with `low_precision`, also:
  model.f16.safetensors, model.bf16.safetensors    the same weights rounded
  expected.f16.safetensors, expected.bf16.safetensors   F32: inputs, logits

Deterministic: a fixed seed per fixture and no GPU.
"""

import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'e2e', 'fixtures')
BATCH = 4
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

FIXTURES = [
    dict(name='vit-gray28-p4-token', seed=1, image_size=28, patch_size=4, in_chans=1,
         embed_dim=32, depth=2, num_heads=4, mlp_hidden=64, num_classes=10,
         global_pool='token', fc_norm=False, norm_eps=1e-6, mean=[0.5], std=[0.5],
         class_names=[str(i) for i in range(10)], head_gain=2.0, low_precision=True),
    dict(name='vit-rgb32-p8-avg', seed=2, image_size=32, patch_size=8, in_chans=3,
         embed_dim=48, depth=2, num_heads=3, mlp_hidden=96, num_classes=7,
         global_pool='avg', fc_norm=True, norm_eps=1e-6, mean=IMAGENET_MEAN, std=IMAGENET_STD,
         class_names=None, head_gain=3.0, low_precision=False),
    # timm's global_pool='avg' with fc_norm=False: the final norm runs on every
    # token before pooling. A third code path in vit.ts, so it gets a fixture.
    # Its norm_eps is far from timm's 1e-6 on purpose: with 1e-5 the logits
    # move by less than the test tolerance, and a loader that ignored the
    # config's norm_eps would pass unnoticed.
    dict(name='vit-rgb16-p4-avgnorm', seed=3, image_size=16, patch_size=4, in_chans=3,
         embed_dim=24, depth=1, num_heads=2, mlp_hidden=48, num_classes=5,
         global_pool='avg', fc_norm=False, norm_eps=1e-2, mean=IMAGENET_MEAN, std=IMAGENET_STD,
         class_names=None, head_gain=3.0, low_precision=False),
]


def norm_names(cfg):
    names = []
    for i in range(cfg['depth']):
        for n in ('norm1', 'norm2'):
            names += [f'blocks.{i}.{n}.weight', f'blocks.{i}.{n}.bias']
    final = 'fc_norm' if cfg['fc_norm'] else 'norm'
    return names + [f'{final}.weight', f'{final}.bias']


def make_weights(cfg, gen):
    """Random weights in timm's names and shapes, as float32 numpy arrays.

    Linear weights get std 1/sqrt(fan_in) so activations keep unit scale
    through the blocks (timm's trunc_normal(0.02) would leave the residual
    stream almost untouched and every block nearly the identity). LayerNorm
    scales are drawn around 1 and shifts around 0, but not at 1/0: with
    identity norms some gradient terms vanish or coincide and the test
    would check less. `head_gain` spreads the logits so the batch holds both
    confident (low entropy) and uncertain samples.
    """
    D, C, P = cfg['embed_dim'], cfg['in_chans'], cfg['patch_size']
    H, K = cfg['mlp_hidden'], cfg['num_classes']
    tokens = (cfg['image_size'] // P) ** 2 + 1

    def randn(*shape, std=1.0, mean=0.0):
        return mean + std * torch.randn(*shape, generator=gen, dtype=torch.float64)

    w = {
        'patch_embed.proj.weight': randn(D, C, P, P, std=1 / math.sqrt(C * P * P)),
        'patch_embed.proj.bias': randn(D, std=0.1),
        'cls_token': randn(1, 1, D, std=0.5),
        'pos_embed': randn(1, tokens, D, std=0.5),
    }
    for i in range(cfg['depth']):
        b = f'blocks.{i}'
        w.update({
            f'{b}.norm1.weight': randn(D, mean=1.0, std=0.3),
            f'{b}.norm1.bias': randn(D, std=0.3),
            f'{b}.attn.qkv.weight': randn(3 * D, D, std=1 / math.sqrt(D)),
            f'{b}.attn.qkv.bias': randn(3 * D, std=0.1),
            f'{b}.attn.proj.weight': randn(D, D, std=1 / math.sqrt(D)),
            f'{b}.attn.proj.bias': randn(D, std=0.1),
            f'{b}.norm2.weight': randn(D, mean=1.0, std=0.3),
            f'{b}.norm2.bias': randn(D, std=0.3),
            f'{b}.mlp.fc1.weight': randn(H, D, std=1 / math.sqrt(D)),
            f'{b}.mlp.fc1.bias': randn(H, std=0.1),
            f'{b}.mlp.fc2.weight': randn(D, H, std=1 / math.sqrt(H)),
            f'{b}.mlp.fc2.bias': randn(D, std=0.1),
        })
    final = 'fc_norm' if cfg['fc_norm'] else 'norm'
    w[f'{final}.weight'] = randn(D, mean=1.0, std=0.3)
    w[f'{final}.bias'] = randn(D, std=0.3)
    w['head.weight'] = randn(K, D, std=cfg['head_gain'] / math.sqrt(D))
    w['head.bias'] = randn(K, std=0.5)
    return {k: v.numpy().astype(np.float32) for k, v in w.items()}


def make_inputs(cfg, gen):
    """Four NHWC images in [0, 1] that differ in kind, not just in noise, so the
    random model gives them different logits: uniform noise, a smooth ramp,
    a blocky pattern, and a dim low-contrast noise image."""
    S, C = cfg['image_size'], cfg['in_chans']
    noise = torch.rand(S, S, C, generator=gen, dtype=torch.float64)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, S, dtype=torch.float64),
                            torch.linspace(0, 1, S, dtype=torch.float64), indexing='ij')
    ramp = torch.stack([(xx * (c + 1) + yy) / (c + 2) for c in range(C)], dim=-1)
    blocks = torch.rand(4, 4, C, generator=gen, dtype=torch.float64)
    blocky = blocks.repeat_interleave(S // 4, 0).repeat_interleave(S // 4, 1)
    dim = 0.3 + 0.1 * torch.rand(S, S, C, generator=gen, dtype=torch.float64)
    return torch.stack([noise, ramp, blocky, dim]).numpy().astype(np.float32)


def layer_norm(x, w, name, eps):
    return F.layer_norm(x, x.shape[-1:], w[f'{name}.weight'], w[f'{name}.bias'], eps)


def vit_logits(cfg, w, images):
    """timm VisionTransformer.forward on float64 tensors; images NHWC in [0, 1]."""
    heads, eps = cfg['num_heads'], cfg['norm_eps']
    mean = torch.tensor(cfg['mean'], dtype=torch.float64)
    std = torch.tensor(cfg['std'], dtype=torch.float64)
    x = ((images - mean) / std).permute(0, 3, 1, 2)  # the model normalizes; conv wants NCHW
    x = F.conv2d(x, w['patch_embed.proj.weight'], w['patch_embed.proj.bias'], stride=cfg['patch_size'])
    x = x.flatten(2).transpose(1, 2)  # [B, N, D], patches in row-major order
    B, N, D = x.shape
    x = torch.cat([w['cls_token'].expand(B, -1, -1), x], dim=1) + w['pos_embed']
    hd = D // heads
    for i in range(cfg['depth']):
        b = f'blocks.{i}'
        h = layer_norm(x, w, f'{b}.norm1', eps)
        qkv = F.linear(h, w[f'{b}.attn.qkv.weight'], w[f'{b}.attn.qkv.bias'])
        # timm: reshape(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(B, N + 1, 3, heads, hd).permute(2, 0, 3, 1, 4)
        attn = torch.softmax((q * hd ** -0.5) @ k.transpose(-2, -1), dim=-1)
        h = (attn @ v).transpose(1, 2).reshape(B, N + 1, D)
        x = x + F.linear(h, w[f'{b}.attn.proj.weight'], w[f'{b}.attn.proj.bias'])
        h = layer_norm(x, w, f'{b}.norm2', eps)
        h = F.gelu(F.linear(h, w[f'{b}.mlp.fc1.weight'], w[f'{b}.mlp.fc1.bias']))  # exact erf GELU
        x = x + F.linear(h, w[f'{b}.mlp.fc2.weight'], w[f'{b}.mlp.fc2.bias'])
    if cfg['global_pool'] == 'token':
        pooled = layer_norm(x, w, 'norm', eps)[:, 0]
    elif cfg['fc_norm']:
        pooled = layer_norm(x[:, 1:].mean(dim=1), w, 'fc_norm', eps)
    else:
        pooled = layer_norm(x, w, 'norm', eps)[:, 1:].mean(dim=1)
    return F.linear(pooled, w['head.weight'], w['head.bias'])


def entropy(logits):
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def reference(cfg, weights, inputs, with_grads):
    """Logits (and LayerNorm gradients of the mean entropy) in float64."""
    w = {k: torch.from_numpy(v.astype(np.float64)) for k, v in weights.items()}
    names = norm_names(cfg)
    for n in names:
        w[n].requires_grad_(True)
    logits = vit_logits(cfg, w, torch.from_numpy(inputs.astype(np.float64)))
    ent = entropy(logits)
    out = {'logits': logits.detach().numpy()}
    if with_grads:
        grads = torch.autograd.grad(ent.mean(), [w[n] for n in names])
        out.update({f'grad.{n}': g.numpy() for n, g in zip(names, grads)})
    return out, ent.detach().numpy()


# --- safetensors, written by hand -------------------------------------------

def to_bf16_bits(a):
    """float32 -> bfloat16 bit patterns, round to nearest even (finite values only)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def from_bf16_bits(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors, dtype='F32', metadata=None):
    """tensors: name -> float32 array. Layout: u64 LE header length, JSON header
    (padded with spaces so data starts 8-byte aligned), then the raw LE data."""
    header = {}
    if metadata:
        header['__metadata__'] = metadata
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if dtype == 'F32':
            raw = arr.astype('<f4').tobytes()
        elif dtype == 'F16':
            raw = arr.astype('<f2').tobytes()
        elif dtype == 'BF16':
            raw = to_bf16_bits(arr).astype('<u2').tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {'dtype': dtype, 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def config_json(cfg):
    out = {k: cfg[k] for k in ('image_size', 'patch_size', 'in_chans', 'embed_dim', 'depth',
                               'num_heads', 'mlp_hidden', 'num_classes', 'norm_eps',
                               'global_pool', 'mean', 'std')}
    if cfg['class_names'] is not None:
        out['class_names'] = cfg['class_names']
    return out


def f32(d):
    return {k: np.asarray(v, dtype=np.float32) for k, v in d.items()}


def build(cfg):
    gen = torch.Generator().manual_seed(cfg['seed'])
    weights = make_weights(cfg, gen)
    inputs = make_inputs(cfg, gen)
    folder = os.path.join(ROOT, cfg['name'])
    os.makedirs(folder, exist_ok=True)
    meta = {'generator': 'tools/make_fixtures.py', 'seed': str(cfg['seed'])}

    write_safetensors(os.path.join(folder, 'model.safetensors'), weights, metadata=meta)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(config_json(cfg), f, indent=2)
        f.write('\n')
    ref, ent = reference(cfg, weights, inputs, with_grads=True)
    write_safetensors(os.path.join(folder, 'expected.safetensors'), f32({'inputs': inputs, **ref}), metadata=meta)

    e0 = 0.4 * math.log(cfg['num_classes'])
    gmax = max(np.abs(v).max() for k, v in ref.items() if k.startswith('grad.'))
    print(f"{cfg['name']}: entropy {np.round(ent, 3).tolist()} (E0 {e0:.3f}, ln C {math.log(cfg['num_classes']):.3f}),"
          f" |logits| max {np.abs(ref['logits']).max():.2f}, |grad| max {gmax:.3g}")

    if cfg['low_precision']:
        rounders = {
            'f16': ('F16', lambda a: a.astype(np.float16).astype(np.float32)),
            'bf16': ('BF16', lambda a: from_bf16_bits(to_bf16_bits(a))),
        }
        for tag, (dtype, rounder) in rounders.items():
            rounded = {k: rounder(v) for k, v in weights.items()}
            write_safetensors(os.path.join(folder, f'model.{tag}.safetensors'), weights, dtype=dtype, metadata=meta)
            lp, _ = reference(cfg, rounded, inputs, with_grads=False)
            write_safetensors(os.path.join(folder, f'expected.{tag}.safetensors'),
                              f32({'inputs': inputs, 'logits': lp['logits']}), metadata=meta)
            # The test can only tell that the rounded weights were read if the
            # rounding moves the logits by more than its tolerance.
            shift = np.abs(lp['logits'] - ref['logits']).max()
            print(f'  {tag}: logits move {shift:.2e} from F32')
            assert shift > 1e-3, f'{tag} rounding too small to detect'


def main():
    torch.set_grad_enabled(True)
    for cfg in FIXTURES:
        build(cfg)


if __name__ == '__main__':
    main()
