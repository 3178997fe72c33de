#!/usr/bin/python3
"""PyTorch reference fixtures for the tfjs GroupNorm ResNet (src/model/resnet-gn.test.ts).

    /usr/bin/python3 tools/make_resnet_fixtures.py        (npm run fixtures:resnet)

Small random-weight ResNets in timm's layout (the names of timm's
resnet50_gn and its basic-block siblings: conv1/bn1 stem, layer1..4 of
blocks with conv1..3/bn1..3 and downsample.0/.1, fc), every norm a
GroupNorm. The forward is written here from torch primitives only
(F.conv2d, F.group_norm, F.relu, F.max_pool2d, F.linear), as timm's ResNet
runs it, and shares no code with the TypeScript model. Computed in float64
from the stored float32 values.

Output, for each fixture, in e2e/fixtures/resnet-gn/<name>/:
  model.safetensors     F32 weights, timm names
  config.json           timm's keys (architecture, num_classes, pretrained_cfg) and gn_groups
  expected.safetensors  F32: inputs [B,H,W,C] in [0,1]; logits [B,classes];
                        grad.<name> for every GroupNorm weight/bias = gradient of
                        the batch mean of -sum(p log p), p = softmax(logits)

Deterministic: a fixed seed per fixture and no GPU.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'e2e', 'fixtures', 'resnet-gn')

FIXTURES = [
    # Basic blocks (resnet18/34's block), gray 28x28: the shape of a Fashion-MNIST model.
    dict(name='basic-gray28', seed=11, block='basic', layers=[2, 1, 1, 1], stem=8, widths=[8, 16, 16, 32],
         groups=4, in_chans=1, image=28, classes=10, batch=3, mean=[0.5], std=[0.5]),
    # Bottleneck blocks (resnet50_gn's), RGB 32x32.
    dict(name='bottleneck-rgb32', seed=12, block='bottleneck', layers=[1, 2, 1, 1], stem=8, widths=[4, 8, 8, 8],
         groups=4, in_chans=3, image=32, classes=5, batch=2, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
]

EPS = 1e-5  # timm's GroupNorm


def block_plan(cfg):
    """(name, in, width, out, stride, downsample) for every block, as timm builds them."""
    expansion = 4 if cfg['block'] == 'bottleneck' else 1
    plan = []
    inplanes = cfg['stem']
    for s, (n, width) in enumerate(zip(cfg['layers'], cfg['widths'])):
        for i in range(n):
            stride = 2 if (s > 0 and i == 0) else 1
            out = width * expansion
            plan.append((f'layer{s + 1}.{i}', inplanes, width, out, stride, stride != 1 or inplanes != out))
            inplanes = out
    return plan, inplanes


def make_weights(cfg, gen):
    def randn(*shape, std=1.0, mean=0.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * std + mean).float().numpy()

    def conv(out, cin, k):
        return randn(out, cin, k, k, std=math.sqrt(2.0 / (cin * k * k)))

    w = {}

    def norm(name, c):
        # Away from timm's init (1, 0) so that the test sees the affine parameters used.
        w[f'{name}.weight'] = randn(c, std=0.2, mean=1.0)
        w[f'{name}.bias'] = randn(c, std=0.1)

    w['conv1.weight'] = conv(cfg['stem'], cfg['in_chans'], 7)
    norm('bn1', cfg['stem'])
    plan, features = block_plan(cfg)
    for name, cin, width, out, stride, down in plan:
        if cfg['block'] == 'basic':
            w[f'{name}.conv1.weight'] = conv(width, cin, 3)
            norm(f'{name}.bn1', width)
            w[f'{name}.conv2.weight'] = conv(out, width, 3)
            norm(f'{name}.bn2', out)
        else:
            w[f'{name}.conv1.weight'] = conv(width, cin, 1)
            norm(f'{name}.bn1', width)
            w[f'{name}.conv2.weight'] = conv(width, width, 3)
            norm(f'{name}.bn2', width)
            w[f'{name}.conv3.weight'] = conv(out, width, 1)
            norm(f'{name}.bn3', out)
        if down:
            w[f'{name}.downsample.0.weight'] = conv(out, cin, 1)
            norm(f'{name}.downsample.1', out)
    w['fc.weight'] = randn(cfg['classes'], features, std=1.0 / math.sqrt(features))
    w['fc.bias'] = randn(cfg['classes'], std=0.1)
    return w


def norm_names(weights):
    return [k for k in weights if k.startswith('bn') or '.bn' in k or 'downsample.1' in k]


def logits_of(cfg, w, images):
    """images [B,H,W,C] in [0,1] -> logits, timm's ResNet forward."""
    g = cfg['groups']
    mean = torch.tensor(cfg['mean'], dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(cfg['std'], dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    x = (images.permute(0, 3, 1, 2) - mean) / std

    def gn(x, name):
        return F.group_norm(x, g, w[f'{name}.weight'], w[f'{name}.bias'], EPS)

    x = F.conv2d(x, w['conv1.weight'], stride=2, padding=3)
    x = F.relu(gn(x, 'bn1'))
    x = F.max_pool2d(x, 3, stride=2, padding=1)
    plan, _ = block_plan(cfg)
    for name, _, _, _, stride, down in plan:
        shortcut = x
        if cfg['block'] == 'basic':
            y = F.relu(gn(F.conv2d(x, w[f'{name}.conv1.weight'], stride=stride, padding=1), f'{name}.bn1'))
            y = gn(F.conv2d(y, w[f'{name}.conv2.weight'], padding=1), f'{name}.bn2')
        else:
            y = F.relu(gn(F.conv2d(x, w[f'{name}.conv1.weight']), f'{name}.bn1'))
            y = F.relu(gn(F.conv2d(y, w[f'{name}.conv2.weight'], stride=stride, padding=1), f'{name}.bn2'))
            y = gn(F.conv2d(y, w[f'{name}.conv3.weight']), f'{name}.bn3')
        if down:
            shortcut = gn(F.conv2d(x, w[f'{name}.downsample.0.weight'], stride=stride), f'{name}.downsample.1')
        x = F.relu(y + shortcut)
    pooled = x.mean(dim=(2, 3))
    return F.linear(pooled, w['fc.weight'], w['fc.bias'])


def entropy(logits):
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def config_json(cfg):
    return {
        'architecture': 'resnet_gn_fixture',
        'num_classes': cfg['classes'],
        'gn_groups': cfg['groups'],
        'pretrained_cfg': {'input_size': [cfg['in_chans'], cfg['image'], cfg['image']], 'mean': cfg['mean'], 'std': cfg['std']},
    }


def build(cfg):
    gen = torch.Generator().manual_seed(cfg['seed'])
    weights = make_weights(cfg, gen)
    inputs = torch.rand(cfg['batch'], cfg['image'], cfg['image'], cfg['in_chans'], generator=gen, dtype=torch.float64).float().numpy()
    folder = os.path.join(ROOT, cfg['name'])
    os.makedirs(folder, exist_ok=True)
    meta = {'generator': 'tools/make_resnet_fixtures.py', 'seed': str(cfg['seed'])}
    write_safetensors(os.path.join(folder, 'model.safetensors'), weights, metadata=meta)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(config_json(cfg), f, indent=2)
        f.write('\n')
    w = {k: torch.from_numpy(v.astype(np.float64)) for k, v in weights.items()}
    names = norm_names(weights)
    for n in names:
        w[n].requires_grad_(True)
    logits = logits_of(cfg, w, torch.from_numpy(inputs.astype(np.float64)))
    ent = entropy(logits)
    grads = torch.autograd.grad(ent.mean(), [w[n] for n in names])
    out = {'inputs': inputs, 'logits': logits.detach().numpy().astype(np.float32)}
    out.update({f'grad.{n}': g.numpy().astype(np.float32) for n, g in zip(names, grads)})
    write_safetensors(os.path.join(folder, 'expected.safetensors'), out, metadata=meta)
    gmax = max(float(np.abs(g).max()) for g in grads)
    print(f"{cfg['name']}: {len(weights)} tensors, {len(names)} norm tensors, entropy {np.round(ent.detach().numpy(), 3).tolist()}"
          f" (ln C {math.log(cfg['classes']):.3f}), |logits| max {np.abs(out['logits']).max():.2f}, |grad| max {gmax:.3g}")


def main():
    torch.set_grad_enabled(True)
    for cfg in FIXTURES:
        build(cfg)


if __name__ == '__main__':
    main()
