// The autodiff families' one-pass forward and gradient (Backbone.forwardGradient)
// against the path it replaces (a forward, then tf.grads re-running it): the
// same adapted values step by step for each method that uses it, with SAR's
// speculated first gradient on and off; and tensors flat over reliable,
// unreliable and switching steps and resets. The shipped families all have
// written-out backwards, so the family here is the ConvNeXt fixture adapted
// as an autodiff family would be (tf.grads through its differentiable forward).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadBackbone } from './load';
import {
  autodiffForwardGradient,
  autodiffGradient,
  AutodiffTape,
  type Backbone,
  type BackboneTape,
  type GradientLayout,
  type LossGradient,
  type ParamLookup,
} from './backbone';
import { createAdapter, type AdapterOptions } from '../methods';
import type { Adapter } from '../methods/adapter';
import { computeSourceStats } from './source-stats';
import { float32Margin, ReliableRate } from '../methods/speculate';
import { softmaxAndEntropy } from '../kernels';

const DIR = join(import.meta.dirname, '..', '..', 'e2e', 'fixtures', 'convnext', 'gray28-patch2');
/** The model as an AutodiffBackbone family would adapt it: its forward the differentiable one, its gradients by tf.grads. */
function viaAutodiff(model: Backbone): Backbone {
  const run = (x: tf.Tensor4D, n: ParamLookup) => model.summaries(x, n);
  return Object.assign(Object.create(model) as Backbone, {
    forward: (x: tf.Tensor4D, n: ParamLookup, save = false) => {
      const out = run(x, n);
      return save ? { ...out, tape: new AutodiffTape(x, n) } : out;
    },
    forwardGradient: (x: tf.Tensor4D, n: ParamLookup, layout: GradientLayout, loss: LossGradient, withFeatures?: boolean) =>
      autodiffForwardGradient(run, x, n, layout, loss, withFeatures),
    gradient: (tape: BackboneTape, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D) =>
      autodiffGradient(run, tape, dLogits, layout, dFeatures),
  });
}

const load = async () =>
  viaAutodiff(
    await loadBackbone(new Uint8Array(readFileSync(join(DIR, 'model.safetensors'))), { config: JSON.parse(readFileSync(join(DIR, 'config.json'), 'utf8')) }),
  );

/** The same model without forwardGradient: every gradient re-runs the forward, as before it existed. */
function withoutOnePass(model: Backbone): Backbone {
  Object.defineProperty(model, 'forwardGradient', { value: undefined });
  return model;
}

/** Moves the adapter's reliable-filter margin (E0) between steps: above ln C every sample passes, at 0 none does. */
const setMargin = (a: Adapter, m: number) => Object.defineProperty(a, 'margin', { value: m, configurable: true });

const frames = (n: number, seed: number, batch = 1) =>
  Array.from({ length: n }, (_, i) => tf.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', seed + i) as tf.Tensor4D);

/** Between the lowest and the highest entropy of the batch's predictions at the model's values now: a filter that keeps some and not all. */
async function middleEntropy(model: Backbone, x: tf.Tensor4D): Promise<number> {
  const e = tf.tidy(() => softmaxAndEntropy(model.logits(x)).entropies);
  const v = [...(await e.data())].sort((a, b) => a - b);
  e.dispose();
  assert.ok(v[0]! < v[2]!, 'the three samples have one entropy');
  return (v[1]! + (v[1]! === v[2]! ? v[0]! : v[2]!)) / 2;
}

for (const method of ['sar', 'tent', 'sar-align'] as const) {
  test(`${method} on the ConvNeXt: one pass per gradient adapts to the same values as a forward and a re-run`, async () => {
    await tf.setBackend('cpu');
    const fast = await load();
    const slow = withoutOnePass(await load());
    assert.ok(fast.forwardGradient && !slow.forwardGradient);
    const clean = tf.randomUniform([16, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const sourceStats = method === 'sar-align' ? await computeSourceStats(fast, clean) : undefined;
    clean.dispose();
    // Batches of 3 where E0 lets some samples through and not others (the mask on the device must be the CPU's filter).
    // resetThreshold is SAR's (and sar-align's) own option: Tent refuses it.
    const options = { method, lr: 1e-2, ...(method === 'tent' ? {} : { resetThreshold: 0 }), ...(sourceStats ? { sourceStats } : {}) } as AdapterOptions;
    const adapters = await Promise.all([createAdapter(fast, options), createAdapter(slow, options)]);
    const xs = frames(8, 70, 3);
    try {
      for (const [i, x] of xs.entries()) {
        // All pass, then none (speculation wasted, then off), all (back on), E0 between the samples' entropies, all.
        const between = i === 5 ? await middleEntropy(fast, x) : 0;
        const results = await Promise.all(
          adapters.map(async (a) => {
            if (method !== 'tent') setMargin(a, i === 2 || i === 3 ? 0 : i === 5 ? between : 100);
            const r = await a.step(x);
            await a.flush();
            return r;
          }),
        );
        assert.deepEqual(results[0]!.reliable, results[1]!.reliable, `step ${i}: filters differ`);
        if (method === 'sar' && i === 5) assert.ok(results[0]!.reliable.includes(true) && results[0]!.reliable.includes(false), 'the mixed batch is not mixed');
        assert.deepEqual(results[0]!.probabilities, results[1]!.probabilities, `step ${i}: predictions differ`);
        const [a, b] = await Promise.all(adapters.map((ad) => Promise.all([...ad.params.values()].map((p) => p.data()))));
        a!.forEach((v, k) => {
          let worst = 0;
          for (let j = 0; j < v.length; j++) worst = Math.max(worst, Math.abs(v[j]! - b![k]![j]!));
          // Autodiff of the same function at the same point, the loss's dLogits the same tensors: the same float operations.
          assert.equal(worst, 0, `step ${i}: adapted values differ by ${worst}`);
        });
      }
    } finally {
      xs.forEach((x) => x.dispose());
      adapters.forEach((a) => a.dispose());
      fast.dispose();
      slow.dispose();
    }
  });
}

test('SAR on the ConvNeXt: tensors flat over reliable, unreliable and switching steps, resets and warmup', async () => {
  await tf.setBackend('cpu');
  const model = await load();
  const adapter = await createAdapter(model, { method: 'sar', lr: 1e-2, resetThreshold: 0 });
  const xs = frames(4, 90);
  const run = async (margins: number[]) => {
    for (const [i, m] of margins.entries()) {
      setMargin(adapter, m);
      await adapter.step(xs[i % xs.length]!);
    }
    await adapter.flush();
  };
  try {
    await adapter.warmup();
    await run([100, 0, 100]);
    const tensors = tf.memory().numTensors;
    // A reliable run (speculating), its end (wasted speculation), an unreliable run (no speculation), a restart; a reset midway.
    await run([100, 100, 100, 0, 0, 0, 0, 0, 100, 100, 100, 100, 100, 0]);
    adapter.reset();
    await run([0, 100, 0, 100]);
    await adapter.warmup();
    assert.equal(tf.memory().numTensors, tensors, 'tensor count after the steps');
    assert.ok(adapter.updateCount > 0, 'no update');
  } finally {
    xs.forEach((x) => x.dispose());
    adapter.dispose();
    model.dispose();
  }
});

test("speculation's margin and schedule: the device's float32 filter is the CPU's; two wasted backwards at a reliable run's end, a restart on a reliable run's fifth frame", () => {
  for (const m of [0.4 * Math.log(10), 0.4 * Math.log(1000), 100 * Math.log(10), 1e-9, 0, -0.3]) {
    const m32 = float32Margin(m);
    assert.equal(Math.fround(m32), m32, `${m}: not a float32`);
    assert.ok(m32 >= m, `${m}: below the margin`);
    // No float32 between the margin and it: e < m ⇔ e < m32 for every float32 e.
    const below = new Float32Array([m32]);
    const bits = new Int32Array(below.buffer);
    bits[0]! += m32 > 0 ? -1 : m32 < 0 ? 1 : 0;
    if (m32 !== 0) assert.ok(below[0]! < m, `${m}: a float32 (${below[0]}) lies between`);
  }
  const rate = new ReliableRate();
  const plan = (frames: boolean[]) =>
    frames.map((reliable) => {
      const s = rate.speculate;
      rate.observe(reliable);
      return s;
    });
  assert.deepEqual(plan([true, true, false, false, false, false]), [true, true, true, true, false, false]);
  assert.deepEqual(plan(Array(20).fill(false)).at(-1), false);
  // An odd reliable frame in an unreliable run does not restart it; a reliable run does, on its fifth frame.
  assert.deepEqual(plan([true, false, false]), [false, false, false]);
  plan(Array(20).fill(false));
  assert.deepEqual(plan([true, true, true, true, true]), [false, false, false, false, true]);
});
