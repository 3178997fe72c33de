#!/usr/bin/python3
"""Trains the shipped Fashion-MNIST ConvNeXt with PyTorch on the CPU.

    /usr/bin/python3 tools/train_convnext.py [--epochs 12] [--out public/models/fmnist-convnext]
    (npm run train:convnext)

The third shipped family, a LayerNorm CNN, trained as the GroupNorm ResNet is
(tools/train_resnet_gn.py, whose reasons for PyTorch hold here too) so the
three models meet the benchmark on equal terms.

The forward is the one the fixtures check the TypeScript model against
(make_convnext_fixtures.logits_of: timm's ConvNeXt from torch primitives).
Architecture: a 2x2/2 patch stem (timm's is 4x4/4 for 224 px; at 28 px that
would leave a 7x7 map for four stages), then four stages of one block with
16, 32, 64 and 128 channels (the shipped ResNet's widths and depths), 7x7
depthwise convolutions (timm's), maps of 14, 7, 3 and 1 pixels: about
230,000 parameters and 1.7 million multiply-adds a 28x28 image, where the
ResNet has 309,000 and about 1.1 million, so its compute is of the same order.
Initialization as timm's: truncated normal (std 0.02) convolutions and
Linear layers, zero biases, norms at (1, 0), layer scale gamma at 1e-6
(timm's ls_init_value).

Training as the ResNet's: AdamW (lr 2e-3, weight decay 0.05 on convolutions
and Linear weights only; norms, biases and gamma none, as timm's optimizer
factory leaves 1-d parameters), batch 128, linear warmup then cosine to 0,
random crop with 2-pixel zero padding and horizontal flip only, no label
smoothing, no stochastic depth.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402
from make_convnext_fixtures import logits_of, tensor_shapes  # noqa: E402
from train_resnet_gn import CLASSES, augment, load  # noqa: E402


def init_weights(cfg, gen):
    w = {}
    for name, shape in tensor_shapes(cfg):
        if name.endswith('.gamma'):
            w[name] = torch.full(shape, 1e-6)
        elif name.endswith('.bias'):
            w[name] = torch.zeros(shape)
        elif len(shape) == 1:
            w[name] = torch.ones(shape)
        else:
            # timm's trunc_normal_(std=.02): cut at ±2, which is 100 standard deviations out, so a plain normal.
            w[name] = torch.randn(*shape, generator=gen) * 0.02
    return w


def accuracy(cfg, w, x, y):
    with torch.no_grad():
        hits = 0
        for s in range(0, len(x), 1000):
            hits += int((logits_of(cfg, w, x[s:s + 1000], mlp_as_conv=True).argmax(1) == y[s:s + 1000]).sum())
    return hits / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
    ap.add_argument('--out', default='public/models/fmnist-convnext')
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
    cfg = dict(patch=2, kernel=7, depths=[1, 1, 1, 1], dims=[16, 32, 64, 128], in_chans=1, image=28, classes=10, mean=[0.5], std=[0.5])
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
            loss = F.cross_entropy(logits_of(cfg, w, x, mlp_as_conv=True), ytr[idx])
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
    command = ' '.join(['/usr/bin/python3', 'tools/train_convnext.py'] + sys.argv[1:])
    write_safetensors(os.path.join(a.out, 'model.safetensors'), weights, metadata={'generator': 'tools/train_convnext.py'})
    config = {
        'architecture': 'convnext_fmnist_p2_d1111_w16',
        'num_classes': cfg['classes'],
        'class_names': CLASSES,
        'model_args': {'depths': cfg['depths'], 'dims': cfg['dims'], 'patch_size': cfg['patch'], 'kernel_sizes': cfg['kernel']},
        'pretrained_cfg': {'input_size': [1, 28, 28], 'mean': cfg['mean'], 'std': cfg['std']},
        'training': {
            'dataset': 'Fashion-MNIST train split (60,000 images)',
            'framework': f'PyTorch {torch.__version__} (CPU, {a.threads} threads), tools/train_convnext.py',
            'optimizer': 'AdamW, betas 0.9/0.999, eps 1e-8, weight decay on convolutions and Linear weights only',
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
