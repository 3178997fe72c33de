// Feature re-centering (recenter.ts) against a plain-array reference, the
// feature-gradient path of the backward (align.ts's term) against autodiff,
// sar-align's pieces, and the collapse watch.
//
//   node --import tsx --test src/methods/recenter.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ViT } from '../model/vit';
import { randomViTTensors, tinyConfig } from '../model/random-vit';
import { computeSourceStats, type SourceStats } from '../model/source-stats';
import { createAdapter } from './index';
import { OPS_ONLY_BACKEND, registerOpsOnlyBackend } from '../kernels/testing';
import { CollapseWatch, CollapseWatch as Watch } from './collapse-watch';
import { FeatureRecentering } from './recenter';
import type { SarAlignAdapter } from './sar-align';
import { transform } from '../data/stress';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
  registerOpsOnlyBackend();
});

const cfg = tinyConfig({ depth: 2, heads: 2 });

async function setup(): Promise<{ model: ViT; stats: SourceStats }> {
  const model = new ViT(cfg, randomViTTensors(cfg, 3, 3));
  const clean = tf.randomUniform([40, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
  const stats = await computeSourceStats(model, clean);
  clean.dispose();
  return { model, stats };
}

/** Shifted test images: brighter and noisier than the clean ones the statistics saw. */
function shifted(i: number): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(tf.add(tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 100 + i), 0.4), 0, 1) as tf.Tensor4D);
}

for (const biasCorrected of [false, true])
  test(`re-centred predictions follow a plain-array reference step by step${biasCorrected ? ' (bias-corrected)' : ''}`, async () => {
    const { model, stats } = await setup();
    const C = cfg.numClasses;
    const D = cfg.width;
    const decay = 0.8;
    const adapter = await createAdapter(model, { method: 'source', recenter: { decay, biasCorrected }, sourceStats: stats });
    const weights = new Float64Array(C);
    const W = model.param('head.weight').dataSync();
    const bias = model.param('head.bias').dataSync();
    const means = Float64Array.from(stats.classMeans);
    const srcMean = new Float64Array(D);
    for (let c = 0; c < C; c++) for (let d = 0; d < D; d++) srcMean[d]! += stats.classMeans[c * D + d]! / C;
    let moved = 0;
    for (let i = 0; i < 8; i++) {
      const x = shifted(i);
      const f = tf.tidy(() => model.summaries(x).features).dataSync();
      const r = await adapter.step(x);
      // Reference: logits of f − μ̂ + μ_src, μ̂ the mean over classes of the running class means.
      const logits = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        let z = bias[c]!;
        for (let d = 0; d < D; d++) {
          let testMean = 0;
          if (biasCorrected) {
            const w = weights.reduce((a, b) => a + b, 0);
            let shift = 0;
            for (let k = 0; k < C; k++) shift += means[k * D + d]! - stats.classMeans[k * D + d]!;
            testMean = srcMean[d]! + shift / Math.max(w, 1e-6);
          } else for (let k = 0; k < C; k++) testMean += means[k * D + d]! / C;
          z += W[c * D + d]! * (f[d]! - testMean + srcMean[d]!);
        }
        logits[c] = z;
      }
      const top = Math.max(...logits);
      const exp = logits.map((z) => Math.exp(z - top));
      const sum = exp.reduce((a, b) => a + b, 0);
      for (let c = 0; c < C; c++)
        assert.ok(Math.abs(r.probabilities[c]! - exp[c]! / sum) < 1e-4, `step ${i} class ${c}: ${r.probabilities[c]} vs ${exp[c]! / sum}`);
      const cls = logits.indexOf(top);
      assert.equal(r.classes[0], cls, `step ${i}`);
      for (let d = 0; d < D; d++) means[cls * D + d] = decay * means[cls * D + d]! + (1 - decay) * f[d]!;
      weights[cls] = decay * weights[cls]! + (1 - decay);
      if (i === 0) moved = r.probabilities[0]!;
      x.dispose();
    }
    assert.ok(Number.isFinite(moved));
    // Reset puts the source class means back: the first prediction repeats.
    adapter.reset();
    const again = await adapter.step(shifted(0));
    assert.ok(Math.abs(again.probabilities[0]! - moved) < 1e-5);
    adapter.dispose();
    model.dispose();
  });

test('a NaN frame is refused and leaves the re-centering as it was', async () => {
  const { model, stats } = await setup();
  const adapter = await createAdapter(model, { method: 'sar-align', sourceStats: stats, lr: 1e-3 });
  await adapter.step(shifted(0));
  const before = await adapter.exportState();
  const bad = tf.fill([1, 28, 28, 1], NaN) as tf.Tensor4D;
  await assert.rejects(adapter.step(bad), /NaN/);
  bad.dispose();
  assert.deepEqual(await adapter.exportState(), before);
  adapter.dispose();
  model.dispose();
});

test('sar-align: the alignment weight changes the update; tensors stay flat over 60 steps', async () => {
  const { model, stats } = await setup();
  const run = async (alignWeight: number) => {
    const adapter = await createAdapter(model, { method: 'sar-align', sourceStats: stats, lr: 1e-2, alignWeight, marginFraction: 1 });
    let count = 0;
    let after = 0;
    for (let i = 0; i < 60; i++) {
      const x = shifted(i % 7);
      await adapter.step(x);
      x.dispose();
      // Same phase of a step both times (an update still pending), after the first kernels have cached their constants.
      if (i === 4) count = tf.memory().numTensors;
      if (i === 59) after = tf.memory().numTensors;
    }
    await adapter.flush();
    const theta = [...adapter.params.values()].map((p) => Array.from(p.dataSync()));
    adapter.dispose();
    return { theta, count, after, updates: adapter.updateCount };
  };
  const plain = await run(0);
  const aligned = await run(10);
  assert.ok(plain.updates > 0 && aligned.updates > 0, 'updates happened');
  assert.equal(plain.after, plain.count, 'tensor count flat (no alignment)');
  assert.equal(aligned.after, aligned.count, 'tensor count flat (alignment)');
  const diff = Math.max(...plain.theta.flatMap((p, i) => p.map((v, j) => Math.abs(v - aligned.theta[i]![j]!))));
  assert.ok(diff > 1e-6, `alignment changed nothing (max |Δθ| ${diff})`);
  model.dispose();
});

test('sar-align refuses to start without source statistics, with a message that says so', async () => {
  const { model } = await setup();
  await assert.rejects(createAdapter(model, { method: 'sar-align' }), /source statistics/);
  await assert.rejects(createAdapter(model, { method: 'tent', recenter: true }), /source statistics/);
  model.dispose();
});

test('the collapse watch fires on one class for hundreds of frames and on high entropy, not on label-shift blocks', () => {
  const C = 10;
  // These two rules only: the agreement rule (which needs the source's classes) has its own test below.
  const CollapseWatch = class extends Watch {
    constructor(numClasses: number, o: ConstructorParameters<typeof Watch>[1] = {}) {
      super(numClasses, { agreementFloor: 0, ...o });
    }
  };
  const low = new Float32Array([0.1]);
  const oneClass = new CollapseWatch(C);
  let fired = -1;
  for (let i = 0; i < 600 && fired < 0; i++) if (oneClass.observe([3], low)) fired = i;
  assert.ok(fired >= 199 && fired < 400, `one-class collapse seen at frame ${fired}`);
  const blocks = new CollapseWatch(C);
  for (let i = 0; i < 3000; i++) assert.equal(blocks.observe([Math.floor(i / 20) % C], low), false, `label-shift block at ${i}`);
  const unsure = new CollapseWatch(C);
  fired = -1;
  for (let i = 0; i < 600 && fired < 0; i++) if (unsure.observe([i % C], new Float32Array([0.95 * Math.log(C)]))) fired = i;
  assert.ok(fired >= 199, `high-entropy collapse seen at frame ${fired}`);
  const off = new CollapseWatch(C, { oneClassShare: 1, highEntropyFraction: 1 });
  for (let i = 0; i < 1000; i++) assert.equal(off.observe([0], new Float32Array([Math.log(C)])), false);
});

for (const biasCorrected of [false, true])
  test(`re-centering: the host kernel and the tfjs-ops implementation agree${biasCorrected ? ' (bias-corrected)' : ''}`, async () => {
    const { model, stats } = await setup();
    /** Five updates, then a NaN feature (which must change nothing), on `backend`; the state as arrays. */
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const r = new FeatureRecentering(model, stats, { decay: 0.7, biasCorrected });
      for (let i = 0; i < 5; i++) {
        tf.tidy(() => {
          const features = tf.randomNormal([i === 4 ? 3 : 1, cfg.width], 0, 1, 'float32', 20 + i) as tf.Tensor2D;
          r.observe(features, tf.randomNormal([features.shape[0], cfg.numClasses], 0, 1, 'float32', 40 + i) as tf.Tensor2D);
        });
      }
      tf.tidy(() => r.observe(tf.fill([1, cfg.width], NaN) as tf.Tensor2D, tf.zeros([1, cfg.numClasses]) as tf.Tensor2D));
      const state = (['classMeans', 'classWeights', 'offset', 'shift'] as const).map((k) => r[k].dataSync().slice());
      r.dispose();
      await tf.setBackend('cpu');
      return state;
    };
    const host = await run('cpu');
    const ops = await run(OPS_ONLY_BACKEND);
    ['classMeans', 'classWeights', 'offset', 'shift'].forEach((k, i) => {
      const err = Math.max(...host[i]!.map((v, j) => Math.abs(v - ops[i]![j]!)));
      assert.ok(err < 1e-5, `${k}: max |Δ| ${err}`);
    });
    assert.ok(Math.max(...host[2]!.map(Math.abs)) > 0, 'the shift moved');
    model.dispose();
  });

test('re-centering leaves no tensor behind when its adapter is disposed', async () => {
  const { model, stats } = await setup();
  // The model's fast path and its caches are built on the first forward; count after that.
  const counts: number[] = [];
  for (let i = 0; i < 4; i++) {
    const a = await createAdapter(model, { method: 'sar-align', sourceStats: stats });
    const x = shifted(i);
    await a.step(x);
    await a.step(x);
    await a.flush();
    x.dispose();
    a.dispose();
    counts.push(tf.memory().numTensors);
  }
  assert.deepEqual(counts.slice(1), [counts[1], counts[1], counts[1]], `tensors after each adapter: ${counts.join(', ')}`);
  model.dispose();
});

test('a collapse seen on the CPU resets the model, and that frame drives no update', async () => {
  const { model, stats } = await setup();
  // A share no stream stays under: the watch fires as soon as its warm-up is over.
  const a = await createAdapter(model, { method: 'sar-align', sourceStats: stats, lr: 1e-2, marginFraction: 1, oneClassShare: 0.01, collapseWarmup: 3 });
  const results = [];
  for (let i = 0; i < 3; i++) {
    const x = shifted(i);
    results.push(await a.step(x));
    x.dispose();
  }
  assert.equal(results[0]!.adapting, true);
  const last = results[2]!;
  assert.equal(last.adapting, false, 'no update queued from the collapsed forward');
  assert.equal(last.update?.reset, true, 'the reset is reported with the step');
  const theta = [...a.params.values()].map((p) => Array.from(p.dataSync()));
  a.reset();
  assert.deepEqual(
    [...a.params.values()].map((p) => Array.from(p.dataSync())),
    theta,
    'the model is at the source after the recovery',
  );
  assert.equal(a.resetCount, 2);
  a.dispose();
  model.dispose();
});

/** Moves θ far from the source through writeParams, the path every update takes. */
function injectDrift(a: SarAlignAdapter, seed = 2): void {
  const inner = a as unknown as { theta(): tf.Tensor1D; writeParams(flat: tf.Tensor1D): void };
  tf.tidy(() => {
    const theta = inner.theta();
    inner.writeParams(tf.add(tf.mul(theta, -3), tf.randomNormal(theta.shape, 0, 1, 'float32', seed)));
  });
}

test('agreement rule: no source forward while θ is the source’s (before the first update, after a reset), one a frame once it has moved', async () => {
  const { model, stats } = await setup();
  const a = (await createAdapter(model, {
    method: 'sar-align',
    sourceStats: stats,
    lr: 0,
    resetThreshold: 0,
    // No frame passes the reliable filter: nothing but injectDrift moves θ, and SAR runs no forward of its own.
    marginFraction: 1e-9,
    oneClassShare: 1,
    highEntropyFraction: 1,
    collapseWarmup: 1000,
    agreementFloor: 0.8,
  })) as SarAlignAdapter;
  let forwards = 0;
  const forward = model.forward.bind(model);
  model.forward = ((...args: Parameters<typeof forward>) => {
    forwards++;
    return forward(...args);
  }) as typeof model.forward;
  const perFrame = async (n: number) => {
    const before = forwards;
    for (let i = 0; i < n; i++) {
      const x = shifted(i);
      const r = await a.step(x);
      x.dispose();
      assert.equal(r.adapting, false);
    }
    return (forwards - before) / n;
  };
  try {
    assert.equal(await perFrame(3), 1, 'at the source: the prediction’s forward only');
    assert.ok(Math.abs(a.sourceAgreement - 1) < 1e-12, `and the source’s classes are the prediction’s: ${a.sourceAgreement}`);
    injectDrift(a);
    assert.equal(await perFrame(3), 2, 'moved: the source’s forward as well');
    assert.ok(a.sourceAgreement < 1 - 1e-6, `the drift shows: ${a.sourceAgreement}`);
    a.reset();
    assert.equal(await perFrame(2), 1, 'after a reset, at the source again');
    injectDrift(a);
    const state = await a.exportState();
    a.reset();
    a.importState(state);
    assert.equal(await perFrame(1), 2, 'an imported state may be anywhere: the source’s forward runs');
  } finally {
    model.forward = forward;
    a.dispose();
    model.dispose();
  }
});

test('agreement rule: norms driven away from the source’s predictions on rotated frames, which no other rule resets, are reset; without the rule they are not', async () => {
  const { model, stats } = await setup();
  // Rotated frames (the stress family's rot90), and every other recovery off: SAR's entropy-EMA reset (e_m = 0),
  // the one-class and the high-entropy rules (1), and learning (lr 0), so that only the injected drift moves θ.
  const frames = Array.from({ length: 24 }, (_, i) => tf.tidy(() => transform(shifted(i), 'rot90')));
  const run = async (agreementFloor: number) => {
    const a = (await createAdapter(model, {
      method: 'sar-align',
      sourceStats: stats,
      lr: 0,
      resetThreshold: 0,
      oneClassShare: 1,
      highEntropyFraction: 1,
      collapseDecay: 0.8,
      collapseWarmup: 8,
      agreementFloor,
    })) as SarAlignAdapter;
    const source = [...a.params.values()].map((p) => Array.from(p.dataSync()));
    let reads = 0;
    const data = tf.Tensor.prototype.data;
    for (const [i, x] of frames.entries()) {
      // The synthetic collapse: after two frames the adapted norms jump far from the source's (scales flipped and
      // tripled, shifts moved), as a run of bad updates would leave them, and through the path every update takes.
      if (i === 2) injectDrift(a);
      tf.Tensor.prototype.data = function (this: tf.Tensor) {
        reads++;
        return data.call(this);
      } as typeof data;
      try {
        await a.step(x);
      } finally {
        tf.Tensor.prototype.data = data;
      }
    }
    const theta = [...a.params.values()].map((p) => Array.from(p.dataSync()));
    const out = { resets: a.resetCount, agreement: a.sourceAgreement, atSource: JSON.stringify(theta) === JSON.stringify(source), reads };
    a.dispose();
    return out;
  };
  const watched = await run(Number.MIN_VALUE);
  assert.ok(watched.agreement < 0.5, `the drift is real: the adapted model agrees with the source on ${watched.agreement} of recent frames`);
  assert.equal(watched.reads, frames.length, 'the source classes ride in the step’s one read');
  const off = await run(0);
  assert.equal(off.resets, 0, 'no other rule resets it');
  assert.equal(off.atSource, false);
  const on = await run(0.8);
  assert.ok(on.resets >= 1, 'the agreement rule resets the drifted model');
  assert.equal(on.atSource, true, 'and puts the source norms back');
  tf.dispose(frames);
  model.dispose();
});

test('the collapse watch: the agreement rule fires only below its floor, after the warm-up, and needs the source classes', () => {
  const w = new CollapseWatch(10, { oneClassShare: 1, highEntropyFraction: 1, collapseDecay: 0.9, collapseWarmup: 5, agreementFloor: 0.8 });
  const classes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const e = new Array(10).fill(1);
  // Agreeing on every frame never fires.
  assert.equal(w.observe(classes, e, classes), false);
  assert.ok(Math.abs(w.sourceAgreement - 1) < 1e-12);
  // Then disagreeing on every frame: fires once the moving agreement is below 0.8, and restarts.
  const other = classes.map((c) => (c + 1) % 10);
  let fired = -1;
  for (let t = 0; t < 10 && fired < 0; t++) if (w.observe([classes[t]!], [1], [other[t]!])) fired = t;
  // 10 agreeing frames then k disagreeing: 0.9^k · (1 − 0.9^10) / (1 − 0.9^(10+k)) is 0.85 at k = 1, 0.74 at k = 2.
  assert.equal(fired, 1);
  assert.ok(Number.isNaN(w.sourceAgreement), 'restarted');
  assert.throws(() => w.observe(classes, e), /source model's classes/);
  const off = new CollapseWatch(10, { agreementFloor: 0 });
  assert.equal(off.observe(classes, e), false);
});
