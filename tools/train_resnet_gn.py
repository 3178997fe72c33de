#!/usr/bin/python3
"""Trains the shipped Fashion-MNIST GroupNorm ResNet with PyTorch on the CPU.

    /usr/bin/python3 tools/train_resnet_gn.py [--epochs 12] [--out public/models/fmnist-resnet-gn]
    (npm run train:resnet)

Why PyTorch, when the ViT trained in tfjs (tools/train.ts): a user's ResNet
comes from PyTorch, so this is that path end to end (torch weights in timm's
names, a safetensors file, the browser), and it trains in minutes on two cores
where tfjs-wasm would take hours. PyTorch is a tool here, never a runtime
dependency.

The forward is the one the fixtures check the TypeScript model against
(make_resnet_fixtures.logits_of: timm's ResNet from torch primitives, every
norm a GroupNorm). Architecture: timm's 7x7/2 stem and 3x3/2 max pool, four
stages of one basic block (widths 16, 32, 64, 128), GroupNorm with 8 groups,
global average pooling, fc; about the ViT's size in compute. Initialization
as timm's: Kaiming-normal convolutions (fan_out), norms at (1, 0) except each
block's last GroupNorm scale at 0 (timm's zero_init_last).

Training as the ViT's, so the two models meet the benchmark on equal terms:
AdamW (lr 2e-3, weight decay 0.05 on convolutions and fc only), batch 128,
linear warmup then cosine to 0, ordinary augmentation only (random crop with
2-pixel zero padding, horizontal flip; never a corruption the benchmark
tests), no label smoothing.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402
from make_resnet_fixtures import block_plan, logits_of  # noqa: E402

CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']


def read_idx(path):
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data, split):
    x = read_idx(os.path.join(data, f'{split}-images-idx3-ubyte.gz')).astype(np.float32) / 255.0
    y = read_idx(os.path.join(data, f'{split}-labels-idx1-ubyte.gz')).astype(np.int64)
    return torch.from_numpy(x).unsqueeze(-1), torch.from_numpy(y)  # [N, 28, 28, 1] in [0, 1]


def init_weights(cfg, gen):
    w = {}

    def conv(name, out, cin, k):
        w[name] = torch.randn(out, cin, k, k, generator=gen) * math.sqrt(2.0 / (out * k * k))

    def norm(name, c, zero=False):
        w[f'{name}.weight'] = torch.zeros(c) if zero else torch.ones(c)
        w[f'{name}.bias'] = torch.zeros(c)

    conv('conv1.weight', cfg['stem'], cfg['in_chans'], 7)
    norm('bn1', cfg['stem'])
    plan, features = block_plan(cfg)
    for name, cin, width, out, _, down in plan:
        conv(f'{name}.conv1.weight', width, cin, 3)
        norm(f'{name}.bn1', width)
        conv(f'{name}.conv2.weight', out, width, 3)
        norm(f'{name}.bn2', out, zero=True)
        if down:
            conv(f'{name}.downsample.0.weight', out, cin, 1)
            norm(f'{name}.downsample.1', out)
    bound = 1.0 / math.sqrt(features)
    w['fc.weight'] = (torch.rand(cfg['classes'], features, generator=gen) * 2 - 1) * bound
    w['fc.bias'] = (torch.rand(cfg['classes'], generator=gen) * 2 - 1) * bound
    return w


def augment(x, gen):
    """Random crop of the 2-pixel zero-padded image and a horizontal flip with p 0.5."""
    B = x.shape[0]
    padded = F.pad(x, (0, 0, 2, 2, 2, 2))
    dy = torch.randint(0, 5, (B,), generator=gen)
    dx = torch.randint(0, 5, (B,), generator=gen)
    rows = (dy.view(B, 1) + torch.arange(28).view(1, 28))
    cols = (dx.view(B, 1) + torch.arange(28).view(1, 28))
    out = padded[torch.arange(B).view(B, 1, 1), rows.view(B, 28, 1), cols.view(B, 1, 28)]
    flip = torch.rand(B, generator=gen) < 0.5
    out[flip] = out[flip].flip(2)
    return out


def accuracy(cfg, w, x, y):
    with torch.no_grad():
        hits = 0
        for s in range(0, len(x), 1000):
            hits += int((logits_of(cfg, w, x[s:s + 1000]).argmax(1) == y[s:s + 1000]).sum())
    return hits / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
    ap.add_argument('--out', default='public/models/fmnist-resnet-gn')
    ap.add_argument('--epochs', type=int, default=12)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--weight-decay', type=float, default=0.05)
    ap.add_argument('--warmup-steps', type=int, default=400)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    cfg = dict(block='basic', layers=[1, 1, 1, 1], stem=16, widths=[16, 32, 64, 128], groups=8,
               in_chans=1, image=28, classes=10, mean=[0.5], std=[0.5])
    xtr, ytr = load(a.data, 'train')
    xte, yte = load(a.data, 't10k')
    w = {k: v.requires_grad_(True) for k, v in init_weights(cfg, gen).items()}
    decayed = [v for k, v in w.items() if v.dim() > 1]
    plain = [v for k, v in w.items() if v.dim() <= 1]
    opt = torch.optim.AdamW([{'params': decayed, 'weight_decay': a.weight_decay}, {'params': plain, 'weight_decay': 0.0}],
                            lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    per_epoch = len(xtr) // a.batch
    total = per_epoch * a.epochs

    def lr_at(step):
        if step < a.warmup_steps:
            return a.lr * (step + 1) / a.warmup_steps
        return a.lr * 0.5 * (1 + math.cos(math.pi * (step - a.warmup_steps) / (total - a.warmup_steps)))

    history = []
    t0 = time.time()
    step = 0
    for epoch in range(1, a.epochs + 1):
        order = torch.randperm(len(xtr), generator=gen)
        running = 0.0
        for i in range(per_epoch):
            idx = order[i * a.batch:(i + 1) * a.batch]
            x = augment(xtr[idx], gen)
            for g in opt.param_groups:
                g['lr'] = lr_at(step)
            loss = F.cross_entropy(logits_of(cfg, w, x), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            running += float(loss)
            step += 1
        acc = accuracy(cfg, w, xte, yte)
        history.append({'epoch': epoch, 'step': step, 'loss': running / per_epoch, 'testAccuracy': acc, 'seconds': time.time() - t0})
        print(f'epoch {epoch}: loss {running / per_epoch:.4f}, test accuracy {acc:.4f}, {time.time() - t0:.0f} s', flush=True)

    os.makedirs(a.out, exist_ok=True)
    weights = {k: v.detach().numpy() for k, v in w.items()}
    parameters = sum(v.size for v in weights.values())
    command = ' '.join(['/usr/bin/python3', 'tools/train_resnet_gn.py'] + sys.argv[1:])
    write_safetensors(os.path.join(a.out, 'model.safetensors'), weights, metadata={'generator': 'tools/train_resnet_gn.py'})
    config = {
        'architecture': 'resnet_gn_fmnist_basic1111_w16',
        'num_classes': cfg['classes'],
        'gn_groups': cfg['groups'],
        'class_names': CLASSES,
        'pretrained_cfg': {'input_size': [1, 28, 28], 'mean': cfg['mean'], 'std': cfg['std']},
        'training': {
            'dataset': 'Fashion-MNIST train split (60,000 images)',
            'framework': f'PyTorch {torch.__version__} (CPU, {a.threads} threads), tools/train_resnet_gn.py',
            'optimizer': 'AdamW, betas 0.9/0.999, eps 1e-8, weight decay on convolutions and fc only',
            'lr': a.lr,
            'schedule': f'linear warmup {a.warmup_steps} steps, cosine to 0 at the last step',
            'command': command,
            'weightDecay': a.weight_decay,
            'batch': a.batch,
            'epochs': a.epochs,
            'augmentation': 'random crop (2 px zero padding), horizontal flip p=0.5',
            'labelSmoothing': 0,
            'seed': a.seed,
            'parameters': int(parameters),
            'steps': step,
            'trainingSeconds': round(time.time() - t0),
            'cleanTestAccuracy': history[-1]['testAccuracy'],
            'history': history,
        },
    }
    with open(os.path.join(a.out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
        f.write('\n')
    print(f'wrote {a.out}: {parameters} parameters, clean test accuracy {history[-1]["testAccuracy"]:.4f}')


if __name__ == '__main__':
    main()
