// Issue 25, item 2: a frame whose outputs are not finite is reported, and
// the adapted state goes back to the last one that gave finite outputs,
// from the step's one read (no other), with the tensor count flat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ViT } from '../model/vit';
import { readSafetensors } from '../model/safetensors';
import { randomViTTensors, tinyConfig } from '../model/random-vit';
import { createAdapter, NonFiniteOutputError, type Adapter, type AdapterOptions } from './index';
import { methodSpec } from './registry';
import { optionSchema } from './method';

await tf.setBackend('cpu');

const cfg = tinyConfig();
const weights = randomViTTensors(cfg, 7);
const noise = (seed: number) => tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', seed) as tf.Tensor4D;

async function tensorsOf(a: Adapter): Promise<Map<string, number[]>> {
  return new Map([...readSafetensors(await a.exportState()).tensors].map(([k, t]) => [k, [...t.values]]));
}

/** A diverged state: the first adapted scale set to a finite value the next layer overflows on. */
function diverge(a: Adapter): void {
  const [first] = a.params.values();
  tf.tidy(() => first!.assign(tf.fill(first!.shape, 3e38)));
}

for (const method of ['sar', 'sar-msam', 'tent', 'eata', 'deyo'] as const) {
  test(`${method}: non-finite outputs throw NonFiniteOutputError and put back the last state with finite outputs`, async () => {
    const model = new ViT(cfg, weights);
    const bag = { lr: 0.05, marginFraction: 100, plpdThreshold: 0 };
    const takes = optionSchema(methodSpec(method));
    const a = await createAdapter(model, { method, ...Object.fromEntries(Object.entries(bag).filter(([k]) => k in takes)) } as AdapterOptions);
    try {
      let lastGood = new Map<string, number[]>();
      for (let i = 0; i < 12; i++) {
        lastGood = await tensorsOf(a);
        const x = noise(i);
        await a.step(x);
        x.dispose();
      }
      // With the last update read, as after the failing step.
      await a.flush();
      const tensors = tf.memory().numTensors;
      diverge(a);
      const x = noise(99);
      await assert.rejects(a.step(x), (e: unknown) => e instanceof NonFiniteOutputError && /not finite/.test(e.message) && e.cause.length > 0);
      assert.deepEqual(await tensorsOf(a), lastGood, 'the adapted state is the one the last finite step ran at');
      // It adapts on from there.
      const r = await a.step(x);
      assert.ok(r.probabilities.every(Number.isFinite));
      await a.flush();
      x.dispose();
      assert.equal(tf.memory().numTensors, tensors, 'tensor count');
    } finally {
      a.dispose();
      model.dispose();
    }
  });
}

test('with no finite step since the last reset, non-finite outputs put back the source model', async () => {
  const model = new ViT(cfg, weights);
  const a = await createAdapter(model, { method: 'sar', lr: 0.05 });
  try {
    const source = await tensorsOf(a);
    diverge(a);
    const x = noise(1);
    await assert.rejects(a.step(x), NonFiniteOutputError);
    assert.deepEqual(await tensorsOf(a), source);
    x.dispose();
  } finally {
    a.dispose();
    model.dispose();
  }
});
