#!/usr/bin/python3
"""PyTorch reference runs of SAR, Tent, EATA and DeYO for src/methods/parity.test.ts.

    /usr/bin/python3 tools/make_method_fixtures.py        (npm run fixtures:methods)

Each method's step is written here from the papers' algorithms (docs/methods.md
says them in our words) and the project's own semantics (no-update when no sample is reliable, reset
also zeroes momentum and clears the EMA, ...), in plain torch on float64
tensors, sharing no code with src/methods. The ViT forward and the fixture
writer come from tools/make_fixtures.py (an independent torch ViT).

Every run is 8 steps of batch size 1 on a tiny random ViT (1×28×28, patch 7,
width 16, depth 4, 2 heads, 10 classes; depth 4 so that SAR and DeYO leave
block 3's norms alone). The inputs are picked greedily from a pool of
synthetic images so that every run mixes the branches of its method
(reliable / unreliable, second SAR filter empty, EATA redundant samples,
DeYO low PLPD, SAR model recovery), and every decision clears its threshold
by at least MARGIN so float32 rounding on the tfjs side cannot flip it.

Output in e2e/fixtures/methods/:
  model.safetensors     F32 weights, timm names (make_fixtures.write_safetensors)
  config.json           our config keys (make_fixtures.config_json)
  expected.safetensors  F32 tensors, per run R:
                          R.inputs                [8, 28, 28, 1] the step inputs, NHWC in [0, 1]
                          R.step<i>.<param>       every adapted tensor after step i (0-based)
                        and for EATA also
                          eata.fisher_images      [8, 28, 28, 1] clean images for the Fisher
                          eata.fisher.<param>     the Fisher estimate (batch size 4, 2 batches)
                          eata.step<i>.m          moving average of probabilities after step i
                                                  (zeros while there is none)
  runs.json             per run: name, method, options (exactly what the test passes
                        to createAdapter), resolved constants, adapted parameter names,
                        and per step: reliable (filter 1), report (an update was queued,
                        i.e. some sample passed filter 1), updated, kept, reset,
                        loss, lossSecond, gradNorm, ema (float64; null = NaN / absent),
                        and, for information, margin (smallest distance of any decision
                        of this step from its threshold; null: none), drift (max-abs
                        distance of the adapted tensors from the source); EATA: hasM,
                        fisherPenalty; DeYO: perm (the 4×4 patch order of that step,
                        output cell j shows input cell perm[j]; drawn for every step,
                        used where filter 1 passed), plpd.
  Runs: sar (default constants, lr 0.05), sar_reset (lr 0.3 and a resetThreshold
  placed between the EMA values so the first reset lands at step 3), tent, eata
  (dMargin 0.4), deyo (plpdThreshold 0.05). Tent has no filter: reliable is
  always true for it.

Deterministic: fixed seeds, CPU, one thread.
"""

import copy
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (the independent torch ViT and the safetensors writer)

OUT = os.path.join(mf.ROOT, 'methods')
STEPS = 8
MARGIN = 2e-3  # every decision clears its threshold by at least this much (absolute)
SEED = 12

CFG = dict(name='methods', seed=SEED, image_size=28, patch_size=7, in_chans=1, embed_dim=16, depth=4,
           num_heads=2, mlp_hidden=32, num_classes=10, global_pool='token', fc_norm=False, norm_eps=1e-6,
           mean=[0.5], std=[0.5], class_names=None, head_gain=4.0)
C = CFG['num_classes']
LN_C = math.log(C)
DTYPE = torch.float64


# --- the model ----------------------------------------------------------------

def adapted_names(skip_last, include_final):
    """Norm scale/shift names of blocks 0 .. depth-1-skip_last, then the final norm if asked."""
    names = []
    for i in range(CFG['depth'] - skip_last):
        for n in ('norm1', 'norm2'):
            names += [f'blocks.{i}.{n}.weight', f'blocks.{i}.{n}.bias']
    if include_final:
        names += ['norm.weight', 'norm.bias']
    return names


class Model:
    def __init__(self, weights):
        self.frozen = {k: torch.from_numpy(v.astype(np.float64)) for k, v in weights.items()}

    def logits(self, x, params):
        w = dict(self.frozen)
        w.update(params)
        return mf.vit_logits(CFG, w, x)


def entropy(logits):
    return mf.entropy(logits)


def global_norm(grads):
    return torch.sqrt(sum((g * g).sum() for g in grads.values()))


class State:
    """Adapted parameters (float64), SGD momentum buffers, and method state."""

    def __init__(self, model, names):
        self.names = names
        self.source = {n: model.frozen[n].clone() for n in names}
        self.theta = {n: model.frozen[n].clone() for n in names}
        self.buf = {n: torch.zeros_like(model.frozen[n]) for n in names}
        self.ema = None  # SAR
        self.m = None  # EATA

    def leaves(self, values=None):
        return {n: (values or self.theta)[n].detach().clone().requires_grad_(True) for n in self.names}


def grad_of(loss, leaves):
    gs = torch.autograd.grad(loss, [leaves[n] for n in leaves], allow_unused=True)
    return {n: (torch.zeros_like(leaves[n]) if g is None else g.detach()) for n, g in zip(leaves, gs)}


def sgd_step(st, grads, lr, momentum=0.9):
    """torch.optim.SGD with momentum, no dampening / Nesterov / weight decay; buffers start at 0."""
    for n in st.names:
        st.buf[n] = momentum * st.buf[n] + grads[n]
        st.theta[n] = st.theta[n] - lr * st.buf[n]


def blank_record(reliable):
    return dict(reliable=reliable, report=False, updated=False, kept=0, reset=False,
                loss=None, lossSecond=None, gradNorm=None, ema=None, margin=math.inf)


def num(t):
    v = float(t)
    return None if not math.isfinite(v) else v


# --- the methods, one step each (x: [B, H, W, C] float64) ---------------------

def sar_step(model, st, x, opt, _step):
    e0 = 0.4 * LN_C
    rho = 0.05
    threshold = opt.get('resetThreshold', 0.2 * LN_C / math.log(1000))
    with torch.no_grad():
        ent = entropy(model.logits(x, st.theta))
    rel = ent < e0
    rec = blank_record(rel.tolist())
    rec['margin'] = float((ent - e0).abs().min())
    if not rel.any():
        return rec  # nothing at all happens
    rec['report'] = True
    xs = x[rel]
    leaves = st.leaves()
    loss1 = entropy(model.logits(xs, leaves)).mean()
    g = grad_of(loss1, leaves)
    gn = global_norm(g)
    scale = rho / (gn + 1e-12)
    perturbed = st.leaves({n: st.theta[n] + scale * g[n] for n in st.names})
    e2 = entropy(model.logits(xs, perturbed))
    mask = (e2 < e0).detach()
    rec['margin'] = min(rec['margin'], float((e2.detach() - e0).abs().min()))
    rec.update(loss=num(loss1), gradNorm=num(gn), kept=int(mask.sum()))
    if mask.any():
        loss2 = e2[mask].mean()
        g2 = grad_of(loss2, perturbed)  # at θ+ε; θ itself was never changed (restore is exact)
        sgd_step(st, g2, opt['lr'])
        l2 = float(loss2)
        st.ema = l2 if st.ema is None else 0.9 * st.ema + 0.1 * l2
        rec.update(updated=True, lossSecond=l2)
    rec['ema'] = st.ema
    if st.ema is not None:
        rec['margin'] = min(rec['margin'], abs(st.ema - threshold))
        if st.ema < threshold:  # model recovery: source weights, zero momentum, no EMA
            for n in st.names:
                st.theta[n] = st.source[n].clone()
                st.buf[n] = torch.zeros_like(st.buf[n])
            st.ema = None
            rec['reset'] = True
    return rec


def tent_step(model, st, x, opt, _step):
    leaves = st.leaves()
    ent = entropy(model.logits(x, leaves))
    loss = ent.mean()
    g = grad_of(loss, leaves)
    sgd_step(st, g, opt['lr'])
    rec = blank_record([True] * x.shape[0])
    rec.update(report=True, updated=True, kept=x.shape[0], loss=num(loss), gradNorm=num(global_norm(g)))
    return rec


def cosine(a, b):
    return (a * b).sum(-1) / torch.clamp(a.norm(dim=-1) * b.norm(dim=-1), min=1e-8)


def eata_step(model, st, x, opt, _step):
    e_margin = 0.4 * LN_C
    d_margin = opt['dMargin']
    alpha = 2000.0
    with torch.no_grad():
        logits = model.logits(x, st.theta)
        ent = entropy(logits)
        probs = torch.softmax(logits, -1)
    rel = ent < e_margin
    rec = blank_record(rel.tolist())
    rec['margin'] = float((ent - e_margin).abs().min())
    if not rel.any():
        return rec
    rec['report'] = True
    p, e_kept, xs = probs[rel], ent[rel], x[rel]
    if st.m is not None:
        cos = cosine(st.m.unsqueeze(0), p).abs()
        keep = cos < d_margin
        rec['margin'] = min(rec['margin'], float((cos - d_margin).abs().min()))
    else:
        keep = torch.ones(p.shape[0], dtype=torch.bool)
    count = int(keep.sum())
    rec['kept'] = count
    if count > 0:
        mean_p = p[keep].mean(0)
        st.m = mean_p if st.m is None else 0.9 * st.m + 0.1 * mean_p
        weights = torch.exp(e_margin - e_kept[keep])  # detached: from the first forward
        leaves = st.leaves()
        e = entropy(model.logits(xs[keep], leaves))
        loss = (e * weights).sum() / count
        penalty = sum(alpha * (opt['fisher'][n] * (leaves[n] - st.source[n]) ** 2).sum() for n in st.names)
        loss = loss + penalty
        g = grad_of(loss, leaves)
        sgd_step(st, g, opt['lr'])
        rec.update(updated=True, loss=num(loss), gradNorm=num(global_norm(g)), penalty=float(penalty))
    return rec


def estimate_fisher(model, names, images, batch_size):
    """Mean over batches of the squared gradient of the batch-mean cross-entropy against the arg-max."""
    source = {n: model.frozen[n] for n in names}
    total = {n: torch.zeros_like(source[n]) for n in names}
    batches = 0
    for start in range(0, images.shape[0], batch_size):
        leaves = {n: source[n].clone().requires_grad_(True) for n in names}
        logits = model.logits(images[start:start + batch_size], leaves)
        loss = F.cross_entropy(logits, logits.argmax(-1).detach())
        for n, g in grad_of(loss, leaves).items():
            total[n] += g ** 2
        batches += 1
    return {n: t / batches for n, t in total.items()}


def patch_shuffle(x, perm, grid=4):
    """x [B, H, W, C]; output cell j (row-major) shows input cell perm[j]."""
    B, H, W, Ch = x.shape
    ph, pw = H // grid, W // grid
    cells = x.reshape(B, grid, ph, grid, pw, Ch).permute(0, 1, 3, 2, 4, 5).reshape(B, grid * grid, ph, pw, Ch)
    cells = cells[:, list(perm)]
    return cells.reshape(B, grid, grid, ph, pw, Ch).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, Ch)


def deyo_step(model, st, x, opt, step):
    e_filter = 0.5 * LN_C
    e0 = 0.4 * LN_C
    tau = opt['plpdThreshold']
    with torch.no_grad():
        logits = model.logits(x, st.theta)
        ent = entropy(logits)
        probs = torch.softmax(logits, -1)
    rel = ent < e_filter
    rec = blank_record(rel.tolist())
    rec['margin'] = float((ent - e_filter).abs().min())
    if not rel.any():
        return rec
    rec['report'] = True
    xs, p, e_kept = x[rel], probs[rel], ent[rel]
    assert xs.shape[0] == 1, 'one permutation per step: batch size 1'
    with torch.no_grad():
        shuffled = torch.softmax(model.logits(patch_shuffle(xs, opt['perms'][step]), st.theta), -1)
    yhat = p.argmax(-1)
    plpd = p.gather(1, yhat[:, None])[:, 0] - shuffled.gather(1, yhat[:, None])[:, 0]
    keep = plpd > tau
    rec['margin'] = min(rec['margin'], float((plpd - tau).abs().min()))
    count = int(keep.sum())
    rec['kept'] = count
    rec['plpd'] = plpd.tolist()
    if count > 0:
        weights = torch.exp(e0 - e_kept[keep]) + torch.exp(plpd[keep])  # detached
        leaves = st.leaves()
        e = entropy(model.logits(xs[keep], leaves))
        loss = (e * weights).sum() / count
        g = grad_of(loss, leaves)
        sgd_step(st, g, opt['lr'])
        rec.update(updated=True, loss=num(loss), gradNorm=num(global_norm(g)))
    return rec


# --- input pool and greedy sequence building ----------------------------------

def image_pool(gen, n=400):
    """Synthetic 28×28 gray images of several kinds, float32-rounded, as float64 [n, 28, 28, 1]."""
    S = CFG['image_size']
    yy, xx = torch.meshgrid(torch.linspace(0, 1, S, dtype=DTYPE), torch.linspace(0, 1, S, dtype=DTYPE), indexing='ij')
    out = []
    for i in range(n):
        kind = i % 5
        r = lambda *s: torch.rand(*s, generator=gen, dtype=DTYPE)  # noqa: E731
        if kind == 0:  # noise with random contrast and level
            k, b = r(1), r(1)
            img = k * r(S, S) + (1 - k) * b
        elif kind == 1:  # oriented ramp
            a = 2 * math.pi * float(r(1))
            img = (math.cos(a) * xx + math.sin(a) * yy)
            img = (img - img.min()) / (img.max() - img.min())
        elif kind == 2:  # blocky
            g = [2, 4, 7][int(r(1) * 3)]
            img = r(g, g).repeat_interleave(S // g, 0).repeat_interleave(S // g, 1)
        elif kind == 3:  # stripes
            f = 1 + float(r(1)) * 6
            a = 2 * math.pi * float(r(1))
            img = 0.5 + 0.5 * torch.sin(2 * math.pi * f * (math.cos(a) * xx + math.sin(a) * yy))
        else:  # a bright square on a dark background
            s = 6 + int(r(1) * 14)
            y0, x0 = int(r(1) * (S - s)), int(r(1) * (S - s))
            img = 0.2 * r(S, S)
            img[y0:y0 + s, x0:x0 + s] += 0.7
        out.append(img.clamp(0, 1))
    pool = torch.stack(out)[..., None]
    # Mixtures of two pool images give inputs at every entropy between theirs.
    idx = torch.randint(0, n, (2, n), generator=gen)
    lam = torch.rand(n, 1, 1, 1, generator=gen, dtype=DTYPE)
    pool = torch.cat([pool, lam * pool[idx[0]] + (1 - lam) * pool[idx[1]]])
    return torch.from_numpy(pool.numpy().astype(np.float32).astype(np.float64))


def classify(rec):
    if not rec['report']:
        return 'skip'
    if rec.get('reset'):
        return 'reset'
    if not rec['updated']:
        return 'noupdate'
    return 'update'


def build_sequence(model, step_fn, names, opt, events, pool, gen, prefix=()):
    """Greedily picks for each step an unused pool image that gives the wanted event with margin
    (after replaying the pool indices of `prefix`)."""
    st = State(model, names)
    order = torch.randperm(pool.shape[0], generator=gen).tolist()
    used, chosen, records = set(prefix), list(prefix), []
    for step, i in enumerate(prefix):
        rec = step_fn(model, st, pool[i:i + 1], opt, step)
        assert rec['margin'] >= MARGIN, f'prefix step {step}: margin {rec["margin"]:.2e}'
    for step, want in enumerate(events, start=len(prefix)):
        for i in order:
            if i in used:
                continue
            trial = copy.deepcopy(st)
            rec = step_fn(model, trial, pool[i:i + 1], opt, step)
            if (want == 'any' or classify(rec) == want) and rec['margin'] >= MARGIN:
                used.add(i)
                chosen.append(i)
                records.append(rec)
                st = trial
                break
        else:
            raise RuntimeError(f'no pool image gives {want} at step {step}')
    return pool[chosen], chosen


def run(model, step_fn, names, opt, inputs):
    st = State(model, names)
    recs, params, ms = [], [], []
    for step in range(inputs.shape[0]):
        rec = step_fn(model, st, inputs[step:step + 1], opt, step)
        assert rec['margin'] >= MARGIN, f'step {step}: a decision is within {rec["margin"]:.2e} of its threshold'
        recs.append(rec)
        params.append({n: st.theta[n].clone() for n in names})
        ms.append(None if st.m is None else st.m.clone())
    return recs, params, ms, st


def drift(params, source):
    return max(float((params[n] - source[n]).abs().max()) for n in params)


# --- main ---------------------------------------------------------------------

def main():
    torch.set_num_threads(1)
    torch.set_grad_enabled(True)
    gen = torch.Generator().manual_seed(SEED)
    weights = mf.make_weights(CFG, gen)
    model = Model(weights)
    pool = image_pool(gen)
    with torch.no_grad():
        ent = entropy(model.logits(pool, {}))
    print(f'pool: {pool.shape[0]} images, {(ent < 0.4 * LN_C).sum().item()} below 0.4 ln C, '
          f'classes {np.bincount(model.logits(pool, {}).argmax(-1).numpy(), minlength=C).tolist()}')

    sar_names = adapted_names(CFG['depth'] // 4, False)
    all_names = adapted_names(0, True)
    runs = []
    tensors = {}

    def finish(name, method, options, resolved, names, step_fn, opt, inputs):
        recs, params, ms, _ = run(model, step_fn, names, opt, inputs)
        source = {n: model.frozen[n] for n in names}
        steps = []
        for i, rec in enumerate(recs):
            s = {k: rec[k] for k in ('reliable', 'report', 'updated', 'kept', 'reset', 'loss', 'lossSecond',
                                     'gradNorm', 'ema')}
            s['margin'] = rec['margin'] if math.isfinite(rec['margin']) else None  # None: no decision
            s['drift'] = drift(params[i], source)
            if method == 'eata':
                s['hasM'] = ms[i] is not None
                s['fisherPenalty'] = rec.get('penalty')
                tensors[f'{name}.step{i}.m'] = (ms[i] if ms[i] is not None else torch.zeros(C, dtype=DTYPE)).numpy()
            if method == 'deyo':
                s['perm'] = opt['perms'][i]
                if 'plpd' in rec:
                    s['plpd'] = rec['plpd']
            steps.append(s)
            for n in names:
                tensors[f'{name}.step{i}.{n}'] = params[i][n].numpy()
        tensors[f'{name}.inputs'] = inputs.numpy()
        entry = dict(name=name, method=method, options=options, resolved=resolved, adapted=names, steps=steps)
        runs.append(entry)
        flags = ' '.join(
            ('-' if not s['report'] else ('R' if s['reset'] else ('U' if s['updated'] else 'n'))) + str(s['kept'])
            for s in steps)
        print(f'{name:10s} {flags}  drift {steps[-1]["drift"]:.3g}  min margin {min(s["margin"] or math.inf for s in steps):.2e}')
        return steps

    # SAR with the default constants: unreliable inputs, an empty second filter, updates; no reset.
    opt = dict(lr=0.05)
    ev = ['update', 'skip', 'update', 'noupdate', 'update', 'skip', 'update', 'update']
    inputs, _ = build_sequence(model, sar_step, sar_names, opt, ev, pool, gen)
    finish('sar', 'sar', dict(method='sar', **opt),
           dict(E0=0.4 * LN_C, rho=0.05, resetThreshold=0.2 * LN_C / math.log(1000), momentum=0.9),
           sar_names, sar_step, opt, inputs)

    # SAR model recovery: a large lr drives the entropy down fast; the threshold is set from the
    # EMA trajectory of a run without resets so that the first reset lands at step k, then the
    # rest of the sequence is picked with that threshold (fresh EMA, zeroed momentum, more resets).
    opt = dict(lr=0.3, resetThreshold=-1.0)
    k = 3  # the reset lands at step 3: the EMA there must be below all earlier ones
    inputs, head = build_sequence(model, sar_step, sar_names, opt, ['update'] * (k + 1), pool, gen)
    recs, _, _, _ = run(model, sar_step, sar_names, opt, inputs)
    emas = [r['ema'] for r in recs]
    assert emas[k] < min(emas[:k]) - 2 * MARGIN, emas
    threshold = round((emas[k] + min(emas[:k])) / 2, 6)
    opt = dict(lr=0.3, resetThreshold=threshold)
    ev = ['update', 'any', 'any', 'any']
    inputs, _ = build_sequence(model, sar_step, sar_names, opt, ev, pool, gen, prefix=head)
    steps = finish('sar_reset', 'sar', dict(method='sar', **opt),
                   dict(E0=0.4 * LN_C, rho=0.05, resetThreshold=threshold, momentum=0.9),
                   sar_names, sar_step, opt, inputs)
    assert steps[k]['reset'] and any(s['updated'] for s in steps[k + 1:]), \
        'SAR reset run needs a reset followed by an update'

    # Tent: every step updates, reliable or not.
    opt = dict(lr=0.02)
    ev = ['any'] * STEPS
    inputs, _ = build_sequence(model, tent_step, all_names, opt, ev, pool, gen)
    finish('tent', 'tent', dict(method='tent', **opt), dict(momentum=0.9), all_names, tent_step, opt, inputs)

    # EATA: Fisher from 8 clean images (batch size 4); redundant and new samples alternate.
    # "Clean" = among the 40 images the source model is most confident on, which also keeps
    # α·F small enough for SGD at this lr (lr·2α·max F < 1).
    confident = ent.argsort()[:40]
    fisher_images = pool[confident[torch.randperm(40, generator=gen)[:8]]]
    fisher = estimate_fisher(model, all_names, fisher_images, 4)
    opt = dict(lr=0.01, dMargin=0.4, fisher=fisher)
    fmax = max(float(f.max()) for f in fisher.values())
    assert opt['lr'] * 2 * 2000 * fmax < 1.0, f'Fisher term too stiff for lr: {fmax}'
    ev = ['skip', 'update', 'noupdate', 'update', 'skip', 'noupdate', 'update', 'update']
    inputs, _ = build_sequence(model, eata_step, all_names, opt, ev, pool, gen)
    tensors['eata.fisher_images'] = fisher_images.numpy()
    for n in all_names:
        tensors[f'eata.fisher.{n}'] = fisher[n].numpy()
    finish('eata', 'eata', dict(method='eata', lr=opt['lr'], dMargin=opt['dMargin']),
           dict(eMargin=0.4 * LN_C, dMargin=opt['dMargin'], fisherAlpha=2000, fisherBatchSize=4, momentum=0.9),
           all_names, eata_step, opt, inputs)

    # DeYO: low-PLPD samples are filtered out after the entropy filter.
    perms = [torch.randperm(16, generator=gen).tolist() for _ in range(STEPS)]
    opt = dict(lr=0.05, plpdThreshold=0.05, perms=perms)
    ev = ['skip', 'update', 'noupdate', 'update', 'skip', 'noupdate', 'update', 'update']
    inputs, _ = build_sequence(model, deyo_step, sar_names, opt, ev, pool, gen)
    finish('deyo', 'deyo', dict(method='deyo', lr=opt['lr'], plpdThreshold=opt['plpdThreshold']),
           dict(filterMargin=0.5 * LN_C, weightMargin=0.4 * LN_C, plpdThreshold=opt['plpdThreshold'], grid=4,
                momentum=0.9),
           sar_names, deyo_step, opt, inputs)

    os.makedirs(OUT, exist_ok=True)
    meta = {'generator': 'tools/make_method_fixtures.py', 'seed': str(SEED)}
    mf.write_safetensors(os.path.join(OUT, 'model.safetensors'), weights, metadata=meta)
    with open(os.path.join(OUT, 'config.json'), 'w') as f:
        json.dump(mf.config_json(CFG), f, indent=2)
        f.write('\n')
    mf.write_safetensors(os.path.join(OUT, 'expected.safetensors'), mf.f32(tensors), metadata=meta)
    with open(os.path.join(OUT, 'runs.json'), 'w') as f:
        json.dump(dict(generator='tools/make_method_fixtures.py', steps=STEPS, margin=MARGIN, runs=runs), f, indent=1,
                  allow_nan=False)
        f.write('\n')


if __name__ == '__main__':
    main()
