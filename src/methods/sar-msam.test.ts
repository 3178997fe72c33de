import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ViT } from '../model/vit';
import { randomViTTensors, tinyConfig } from '../model/random-vit';
import { maxDiff } from '../model/testing';
import { createAdapter, type Adapter } from './index';

await tf.setBackend('cpu');

const cfg = tinyConfig();
const weights = randomViTTensors(cfg, 7);
const frames = (n: number) => Array.from({ length: n }, (_, i) => tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 50 + i) as tf.Tensor4D);

async function values(params: ReadonlyMap<string, tf.Tensor>): Promise<Float32Array[]> {
  return Promise.all([...params.values()].map(async (p) => (await p.data()) as Float32Array));
}

/**
 * Momentum-SAM's SGD written out on the plain forward with autodiff, every
 * frame reliable: ε = −ρ·v/(‖v‖ + 1e-12) from the momentum v, g the gradient
 * of the mean entropy at θ + ε, v ← 0.9·v + g, θ ← θ − lr·v.
 */
function reference(names: string[], xs: tf.Tensor4D[], lr: number, rho: number): Float32Array[] {
  const model = new ViT(cfg, weights);
  const vars = names.map((n) => model.variables.get(n)!);
  let theta: tf.Tensor[] = vars.map((v) => tf.clone(v));
  let buf: tf.Tensor[] = vars.map((v) => tf.zerosLike(v));
  for (const x of xs) {
    const next = tf.tidy(() => {
      const norm = tf.sqrt(tf.addN(buf.map((b) => tf.sum(tf.square(b)))));
      const scale = tf.div(-rho, tf.add(norm, 1e-12));
      vars.forEach((v, i) => v.assign(tf.add(theta[i]!, tf.mul(buf[i]!, scale))));
      const { grads } = tf.variableGrads(() => {
        const logits = model.logits(x);
        return tf.neg(tf.mean(tf.sum(tf.mul(tf.softmax(logits), tf.logSoftmax(logits)), 1))) as tf.Scalar;
      }, vars);
      const b = buf.map((old, i) => tf.keep(tf.add(tf.mul(old, 0.9), grads[vars[i]!.name]!)));
      return { b, t: theta.map((t, i) => tf.keep(tf.sub(t, tf.mul(b[i]!, lr)))) };
    });
    tf.dispose([...theta, ...buf]);
    theta = next.t;
    buf = next.b;
  }
  const out = theta.map((t) => t.dataSync() as Float32Array);
  tf.dispose([...theta, ...buf]);
  model.dispose();
  return out;
}

async function adapted(
  options: { lr: number; rho: number },
  xs: tf.Tensor4D[],
  method: 'sar-msam' | 'sar' = 'sar-msam',
): Promise<{ names: string[]; after: Float32Array[] }> {
  const model = new ViT(cfg, weights);
  const a = await createAdapter(model, { method, marginFraction: 100, resetThreshold: 0, ...options });
  try {
    for (const x of xs) await a.step(x);
    await a.flush();
    return { names: [...a.params.keys()], after: await values(a.params) };
  } finally {
    a.dispose();
    model.dispose();
  }
}

const worst = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((v, i) => maxDiff(v, b[i]!)));

test('sar-msam: four steps are Momentum-SAM on the plain forward (autodiff), perturbation included', async () => {
  const xs = frames(4);
  try {
    const lr = 0.05;
    const rho = 0.5;
    const { names, after } = await adapted({ lr, rho }, xs);
    const want = reference(names, xs, lr, rho);
    const err = worst(after, want);
    // The same updates without the perturbation land elsewhere, by far more than the tolerance: the test sees ε.
    const withoutEps = reference(names, xs, lr, 0);
    const moved = worst(want, withoutEps);
    assert.ok(err < 2e-5, `sar-msam vs reference: ${err}`);
    assert.ok(moved > 50 * err && moved > 1e-4, `ε moves the result by ${moved} only (error ${err})`);
    // And it is not SAR: the same frames and settings under SAM's own perturbation give other values.
    const sar = await adapted({ lr, rho }, xs, 'sar');
    assert.ok(worst(sar.after, after) > 1e-4, 'sar-msam took SAR’s steps');
  } finally {
    tf.dispose(xs);
  }
});

test('sar-msam: a reliable step runs one backward where SAR runs two', async () => {
  const count = async (method: 'sar' | 'sar-msam') => {
    const model = new ViT(cfg, weights);
    const a: Adapter = await createAdapter(model, { method, marginFraction: 100, resetThreshold: 0, lr: 1e-3 });
    const [x0, x1] = frames(2);
    try {
      await a.step(x0!);
      await a.flush();
      const { kernels } = await tf.profile(async () => {
        await a.step(x1!);
        await a.flush();
      });
      return kernels.filter((k) => k.name === 'WildttaBackward').length;
    } finally {
      tf.dispose([x0!, x1!]);
      a.dispose();
      model.dispose();
    }
  };
  assert.equal(await count('sar'), 2);
  assert.equal(await count('sar-msam'), 1);
});

test('sar-msam: tensors stay flat over 500 steps; after a reset (momentum zeroed) the next step is the unperturbed first step', async () => {
  const model = new ViT(cfg, weights);
  const lr = 1e-3;
  const rho = 0.5;
  const a = await createAdapter(model, { method: 'sar-msam', lr, rho, marginFraction: 100, resetThreshold: 0 });
  const [x] = frames(1);
  try {
    let base = 0;
    let updates = 0;
    for (let i = 0; i < 500; i++) {
      const noise = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', i) as tf.Tensor4D;
      const r = await a.step(noise);
      noise.dispose();
      if (r.update?.updated) updates++;
      if (i === 9) base = tf.memory().numTensors;
    }
    assert.equal(tf.memory().numTensors, base, 'tensor count drifted');
    assert.ok(updates > 400, `only ${updates} updates`);
    a.reset();
    await a.step(x!);
    await a.flush();
    const err = worst(await values(a.params), reference([...a.params.keys()], [x!], lr, rho));
    assert.ok(err < 1e-6, `the step after a reset is off the first step from the source by ${err}`);
  } finally {
    x!.dispose();
    a.dispose();
    model.dispose();
  }
});

test('sar-msam: a saved state carries the momentum its next perturbation comes from, and a SAR adapter refuses it', async () => {
  const xs = frames(4);
  const make = async (method: 'sar' | 'sar-msam') => {
    const model = new ViT(cfg, weights);
    return { model, a: await createAdapter(model, { method, lr: 0.05, rho: 0.5, marginFraction: 100, resetThreshold: 0 }) };
  };
  const first = await make('sar-msam');
  const second = await make('sar-msam');
  const sar = await make('sar');
  try {
    for (const x of xs.slice(0, 3)) await first.a.step(x);
    const saved = await first.a.exportState();
    second.a.importState(saved);
    for (const { a } of [first, second]) {
      await a.step(xs[3]!);
      await a.flush();
    }
    assert.equal(worst(await values(first.a.params), await values(second.a.params)), 0, 'the step after an import differs from the step without it');
    await assert.rejects(async () => sar.a.importState(saved), /sar-msam|method/i);
  } finally {
    tf.dispose(xs);
    for (const { a, model } of [first, second, sar]) {
      a.dispose();
      model.dispose();
    }
  }
});
