#!/usr/bin/python3
"""PyTorch reference fixtures for the tfjs ConvNeXt (src/model/convnext.test.ts).

    /usr/bin/python3 tools/make_convnext_fixtures.py        (npm run fixtures:convnext)

Small random-weight ConvNeXts in timm's layout (the names of timm's
convnext_atto and siblings: a patch stem conv + LayerNorm2d (stem.0, stem.1),
stages.N with a LayerNorm2d + 2x2/2 conv downsample (downsample.0, .1) from
the second stage on, blocks of a depthwise conv (conv_dw), a channels-last
LayerNorm (norm), an MLP with exact GELU (mlp.fc1, mlp.fc2) and a layer
scale (gamma) on the residual branch; then global average pooling, a
LayerNorm (head.norm) and head.fc). The forward is written here from torch
primitives only (F.conv2d, F.layer_norm, F.gelu, F.linear), as timm's
ConvNeXt runs it, and shares no code with the TypeScript model. Computed in
float64 from the stored float32 values.

Output, for each fixture, in e2e/fixtures/convnext/<name>/:
  model.safetensors     F32 weights, timm names
  config.json           timm's keys (architecture, num_classes, pretrained_cfg)
  expected.safetensors  F32: inputs [B,H,W,C] in [0,1]; logits [B,classes];
                        grad.<name> for every LayerNorm weight/bias = gradient of
                        the batch mean of -sum(p log p), p = softmax(logits)

And, where public/models/fmnist-convnext/ exists (npm run train:convnext),
e2e/fixtures/convnext/shipped-check.safetensors: the shipped model's logits
(float64, stored F32) on the first 16 Fashion-MNIST test images (inputs
[16,28,28,1] in [0,1], logits [16,10]), through this file's Linear forward,
not the training script's 1x1-convolution one.

Deterministic: a fixed seed per fixture and no GPU.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'e2e', 'fixtures', 'convnext')

FIXTURES = [
    # Gray 28x28 with a 2x2 stem, the shipped model's shape (odd maps: 7 -> 3 at the third downsample).
    dict(name='gray28-patch2', seed=21, patch=2, kernel=7, depths=[1, 2, 1, 1], dims=[8, 16, 16, 32],
         in_chans=1, image=28, classes=10, batch=3, mean=[0.5], std=[0.5]),
    # RGB 32x32 with timm's 4x4 stem, three stages and a 5x5 depthwise kernel (timm's kernel_sizes).
    dict(name='rgb32-patch4', seed=22, patch=4, kernel=5, depths=[2, 1, 1], dims=[8, 16, 24],
         in_chans=3, image=32, classes=5, batch=2, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
]

EPS = 1e-6  # timm's LayerNorm2d and the blocks' LayerNorm in ConvNeXt


def tensor_shapes(cfg):
    """Every tensor's (name, shape) in forward order, as timm names them."""
    out = []
    dims, k = cfg['dims'], cfg['kernel']

    def norm(name, c):
        out.extend([(f'{name}.weight', (c,)), (f'{name}.bias', (c,))])

    out.extend([('stem.0.weight', (dims[0], cfg['in_chans'], cfg['patch'], cfg['patch'])), ('stem.0.bias', (dims[0],))])
    norm('stem.1', dims[0])
    for s, (n, c) in enumerate(zip(cfg['depths'], dims)):
        if s > 0:
            norm(f'stages.{s}.downsample.0', dims[s - 1])
            out.extend([(f'stages.{s}.downsample.1.weight', (c, dims[s - 1], 2, 2)), (f'stages.{s}.downsample.1.bias', (c,))])
        for i in range(n):
            b = f'stages.{s}.blocks.{i}'
            out.extend([(f'{b}.conv_dw.weight', (c, 1, k, k)), (f'{b}.conv_dw.bias', (c,))])
            norm(f'{b}.norm', c)
            out.extend([(f'{b}.mlp.fc1.weight', (4 * c, c)), (f'{b}.mlp.fc1.bias', (4 * c,)),
                        (f'{b}.mlp.fc2.weight', (c, 4 * c)), (f'{b}.mlp.fc2.bias', (c,)), (f'{b}.gamma', (c,))])
    norm('head.norm', dims[-1])
    out.extend([('head.fc.weight', (cfg['classes'], dims[-1])), ('head.fc.bias', (cfg['classes'],))])
    return out


def is_norm(name):
    return name.startswith('stem.1.') or '.downsample.0.' in name or name.endswith(('.norm.weight', '.norm.bias'))


def make_weights(cfg, gen):
    def randn(shape, std=1.0, mean=0.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * std + mean).float().numpy()

    w = {}
    for name, shape in tensor_shapes(cfg):
        if is_norm(name):
            # Away from timm's init (1, 0) so that the test sees the affine parameters used.
            w[name] = randn(shape, std=0.2, mean=1.0) if name.endswith('weight') else randn(shape, std=0.1)
        elif name.endswith('.gamma'):
            # Far from timm's 1e-6: each block's branch must count in the logits and the gradients.
            w[name] = randn(shape, std=0.2, mean=0.7)
        elif name.endswith('.bias'):
            w[name] = randn(shape, std=0.1)
        else:
            fan_in = int(np.prod(shape[1:]))
            w[name] = randn(shape, std=1.0 / math.sqrt(fan_in))
    return w


def ln2d(x, w, name):
    """timm's LayerNorm2d: each position's channels of an NCHW map."""
    return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), w[f'{name}.weight'], w[f'{name}.bias'], EPS).permute(0, 3, 1, 2)


def logits_of(cfg, w, images, mlp_as_conv=False):
    """images [B,H,W,C] in [0,1] -> logits, timm's ConvNeXt forward.

    mlp_as_conv: each block's LayerNorm and MLP over the NCHW map (1x1
    convolutions with the Linear weights), the same sums as timm's
    channels-last Linear layers; for training, where this machine's PyTorch
    (Debian's, generic BLAS) multiplies matrices about 10x slower than its
    mkldnn convolutions.
    """
    mean = torch.tensor(cfg['mean'], dtype=images.dtype).view(1, -1, 1, 1)
    std = torch.tensor(cfg['std'], dtype=images.dtype).view(1, -1, 1, 1)
    x = (images.permute(0, 3, 1, 2) - mean) / std
    x = F.conv2d(x, w['stem.0.weight'], w['stem.0.bias'], stride=cfg['patch'])
    x = ln2d(x, w, 'stem.1')
    # One depthwise kernel for every stage, or one per stage (timm's kernel_sizes takes either).
    kernels = cfg['kernel'] if isinstance(cfg['kernel'], (list, tuple)) else [cfg['kernel']] * len(cfg['depths'])
    for s, (n, c, k) in enumerate(zip(cfg['depths'], cfg['dims'], kernels)):
        if s > 0:
            x = ln2d(x, w, f'stages.{s}.downsample.0')
            x = F.conv2d(x, w[f'stages.{s}.downsample.1.weight'], w[f'stages.{s}.downsample.1.bias'], stride=2)
        for i in range(n):
            b = f'stages.{s}.blocks.{i}'
            y = F.conv2d(x, w[f'{b}.conv_dw.weight'], w[f'{b}.conv_dw.bias'], padding=k // 2, groups=c)
            if mlp_as_conv:
                y = ln2d(y, w, f'{b}.norm')
                y = F.gelu(F.conv2d(y, w[f'{b}.mlp.fc1.weight'].view(4 * c, c, 1, 1), w[f'{b}.mlp.fc1.bias']))
                y = F.conv2d(y, w[f'{b}.mlp.fc2.weight'].view(c, 4 * c, 1, 1), w[f'{b}.mlp.fc2.bias'])
                x = x + y * w[f'{b}.gamma'].view(1, c, 1, 1)
                continue
            y = y.permute(0, 2, 3, 1)
            y = F.layer_norm(y, (c,), w[f'{b}.norm.weight'], w[f'{b}.norm.bias'], EPS)
            y = F.linear(F.gelu(F.linear(y, w[f'{b}.mlp.fc1.weight'], w[f'{b}.mlp.fc1.bias'])), w[f'{b}.mlp.fc2.weight'], w[f'{b}.mlp.fc2.bias'])
            x = x + (y * w[f'{b}.gamma']).permute(0, 3, 1, 2)
    pooled = F.layer_norm(x.mean(dim=(2, 3)), (x.shape[1],), w['head.norm.weight'], w['head.norm.bias'], EPS)
    return F.linear(pooled, w['head.fc.weight'], w['head.fc.bias'])


def entropy(logits):
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def config_json(cfg, architecture='convnext_fixture'):
    return {
        'architecture': architecture,
        'num_classes': cfg['classes'],
        'model_args': {'depths': cfg['depths'], 'dims': cfg['dims'], 'patch_size': cfg['patch'], 'kernel_sizes': cfg['kernel']},
        'pretrained_cfg': {'input_size': [cfg['in_chans'], cfg['image'], cfg['image']], 'mean': cfg['mean'], 'std': cfg['std']},
    }


def build(cfg):
    gen = torch.Generator().manual_seed(cfg['seed'])
    weights = make_weights(cfg, gen)
    inputs = torch.rand(cfg['batch'], cfg['image'], cfg['image'], cfg['in_chans'], generator=gen, dtype=torch.float64).float().numpy()
    folder = os.path.join(ROOT, cfg['name'])
    os.makedirs(folder, exist_ok=True)
    meta = {'generator': 'tools/make_convnext_fixtures.py', 'seed': str(cfg['seed'])}
    write_safetensors(os.path.join(folder, 'model.safetensors'), weights, metadata=meta)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(config_json(cfg), f, indent=2)
        f.write('\n')
    w = {k: torch.from_numpy(v.astype(np.float64)) for k, v in weights.items()}
    names = [n for n in weights if is_norm(n)]
    for n in names:
        w[n].requires_grad_(True)
    logits = logits_of(cfg, w, torch.from_numpy(inputs.astype(np.float64)))
    ent = entropy(logits)
    grads = torch.autograd.grad(ent.mean(), [w[n] for n in names])
    out = {'inputs': inputs, 'logits': logits.detach().numpy().astype(np.float32)}
    out.update({f'grad.{n}': g.numpy().astype(np.float32) for n, g in zip(names, grads)})
    write_safetensors(os.path.join(folder, 'expected.safetensors'), out, metadata=meta)
    gmax = max(float(np.abs(g).max()) for g in grads)
    gmin = min(float(np.abs(g).max()) for g in grads)
    print(f"{cfg['name']}: {len(weights)} tensors, {len(names)} norm tensors, entropy {np.round(ent.detach().numpy(), 3).tolist()}"
          f" (ln C {math.log(cfg['classes']):.3f}), |logits| max {np.abs(out['logits']).max():.2f}, |grad| max per tensor {gmin:.3g}..{gmax:.3g}")


def read_safetensors(path):
    """name -> float32 array, for F32 files such as the ones write_safetensors makes."""
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        assert e['dtype'] == 'F32', (name, e['dtype'])
        a, b = e['data_offsets']
        out[name] = np.frombuffer(raw, dtype='<f4', count=(b - a) // 4, offset=8 + n + a).reshape(e['shape'])
    return out


SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'public', 'models', 'fmnist-convnext')


def shipped_check(data='/usr/share/datasets/fashion-mnist', count=16):
    from train_resnet_gn import load  # the same reader the training used
    if not os.path.exists(os.path.join(SHIPPED, 'model.safetensors')):
        print('no public/models/fmnist-convnext: skipped its check (npm run train:convnext)')
        return
    with open(os.path.join(SHIPPED, 'config.json')) as f:
        c = json.load(f)
    weights = read_safetensors(os.path.join(SHIPPED, 'model.safetensors'))
    args = c['model_args']
    cfg = dict(patch=args['patch_size'], kernel=args['kernel_sizes'], depths=args['depths'], dims=args['dims'],
               mean=c['pretrained_cfg']['mean'], std=c['pretrained_cfg']['std'])
    images, _ = load(data, 't10k')
    inputs = images[:count].numpy()
    w = {k: torch.from_numpy(v.astype(np.float64)) for k, v in weights.items()}
    with torch.no_grad():
        logits = logits_of(cfg, w, torch.from_numpy(inputs.astype(np.float64)))
    out = {'inputs': inputs, 'logits': logits.numpy().astype(np.float32)}
    write_safetensors(os.path.join(ROOT, 'shipped-check.safetensors'), out,
                      metadata={'generator': 'tools/make_convnext_fixtures.py', 'model': 'public/models/fmnist-convnext'})
    print(f'shipped-check: the shipped model on {count} test images, |logits| max {np.abs(out["logits"]).max():.2f}')


def main():
    torch.set_grad_enabled(True)
    for cfg in FIXTURES:
        build(cfg)
    shipped_check()


if __name__ == '__main__':
    main()
