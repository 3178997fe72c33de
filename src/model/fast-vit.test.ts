// The adaptation forward and its hand-written LayerNorm backward
// (fast-vit.ts) against the reference: vit.ts's forward with tfjs autodiff on
// random ViTs of every pooling variant, batch sizes 1 and 3, any subset of
// adapted norms; and against the PyTorch fixtures of tools/make_fixtures.py.
//
//   node --import tsx --test src/model/fast-vit.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ViT } from './vit';
import { FastViT, type FastTape } from './fast-vit';
import { vitFromSafetensors } from './load';
import { readSafetensors } from './safetensors';
import { randomViTTensors, tinyConfig } from './random-vit';
import type { ViTConfig } from './config';
import { entropyWithGrad, softmaxEntropy } from '../methods/entropy';
import { FlatLayout } from '../methods/flat';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

function maxAbs(t: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(t)).dataSync()[0]!);
}
function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** Weighted mean entropy (weights differ per row, so each sample's gradient path is checked). */
function lossWeights(B: number): tf.Tensor1D {
  return tf.tensor1d(Array.from({ length: B }, (_, i) => (i + 1) / B));
}

function check(model: ViT, x: tf.Tensor4D, wanted: string[], label: string): void {
  const B = x.shape[0];
  tf.tidy(() => {
    const w = lossWeights(B);
    const vars = wanted.map((n) => model.variables.get(n)!);
    const ref = tf.variableGrads(() => tf.sum(tf.mul(softmaxEntropy(model.logits(x)), w)) as tf.Scalar, vars);
    const refLogits = model.logits(x);
    const { logits, tape } = model.fast.forward(x, model.param, true);
    const logitErr = maxAbsDiff(logits, refLogits);
    assert.ok(logitErr <= 1e-4 * Math.max(1, maxAbs(refLogits)), `${label}: logits off by ${logitErr}`);
    const { grad } = entropyWithGrad(logits);
    const grads = model.fast.backward(tape!, tf.mul(grad, tf.expandDims(w, 1)) as tf.Tensor2D, new Set(wanted));
    assert.deepEqual([...grads.keys()].sort(), [...wanted].sort(), `${label}: gradient names`);
    const scale = Math.max(...wanted.map((n) => maxAbs(ref.grads[model.variables.get(n)!.name]!)));
    assert.ok(scale > 0, `${label}: reference gradients are zero`);
    for (const n of wanted) {
      const err = maxAbsDiff(grads.get(n)!, ref.grads[model.variables.get(n)!.name]!);
      assert.ok(err <= 1e-4 * scale, `${label}: ${n} off by ${err.toExponential(2)} (scale ${scale.toExponential(2)})`);
    }
    // The same gradients laid end to end by one kernel, where that applies (host path, batch 1, token pooling, a block norm adapted).
    const layout = new FlatLayout(new Map(wanted.map((n) => [n, model.variables.get(n)!])));
    const flat = model.fast.flatBackward(tape!, tf.mul(grad, tf.expandDims(w, 1)) as tf.Tensor2D, layout);
    const applies = B === 1 && model.config.pool === 'token' && wanted.some((n) => n.startsWith('blocks.'));
    assert.equal(flat !== undefined, applies, `${label}: the one-kernel backward applies`);
    if (flat) {
      const err = maxAbsDiff(flat, tf.concat(wanted.map((n) => tf.reshape(ref.grads[model.variables.get(n)!.name]!, [-1]))));
      assert.ok(err <= 1e-4 * scale, `${label}: the one-kernel backward is off by ${err.toExponential(2)}`);
    }
  });
}

const variants: Array<[string, Partial<ViTConfig>]> = [
  ['token pool', { depth: 3, heads: 2 }],
  ['avg pool + fc_norm', { depth: 2, heads: 4, pool: 'avg', imageSize: 16, patchSize: 4, inChannels: 3, mean: [0.4, 0.5, 0.6], std: [0.2, 0.3, 0.25] }],
];

for (const [name, over] of variants) {
  for (const B of [1, 3]) {
    test(`${name}, batch ${B}: logits and LayerNorm gradients match autodiff`, () => {
      const cfg = tinyConfig(over);
      const model = new ViT(cfg, randomViTTensors(cfg, 3, 3));
      const x = tf.randomUniform([B, cfg.imageSize, cfg.imageSize, cfg.inChannels], 0, 1, 'float32', 5) as tf.Tensor4D;
      try {
        const all = model.normParamNames();
        check(model, x, all, 'all norms');
        // SAR's selection (blocks but the last, no final norm), one norm bias alone, the final norm alone.
        check(
          model,
          x,
          all.filter((n) => n.startsWith('blocks.') && !n.startsWith(`blocks.${cfg.depth - 1}.`)),
          'SAR selection',
        );
        check(model, x, ['blocks.1.norm2.bias'], 'one tensor');
        // The last block alone (under token pooling its backward runs on the class tokens' rows).
        const last = `blocks.${cfg.depth - 1}`;
        check(model, x, [`${last}.norm2.weight`], 'last norm2');
        check(model, x, [`${last}.norm1.weight`, `${last}.norm1.bias`], 'last norm1');
        check(
          model,
          x,
          all.filter((n) => !n.startsWith('blocks.')),
          'final norm only',
        );
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  }
}

const FIXTURES = join(import.meta.dirname, '..', '..', 'e2e', 'fixtures');
for (const name of ['vit-gray28-p4-token', 'vit-rgb32-p8-avg', 'vit-rgb16-p4-avgnorm']) {
  test(`${name}: logits and mean-entropy LayerNorm gradients match PyTorch`, () => {
    const config: unknown = JSON.parse(readFileSync(join(FIXTURES, name, 'config.json'), 'utf8'));
    const model = vitFromSafetensors(new Uint8Array(readFileSync(join(FIXTURES, name, 'model.safetensors'))), config);
    const expected = readSafetensors(new Uint8Array(readFileSync(join(FIXTURES, name, 'expected.safetensors')))).tensors;
    try {
      tf.tidy(() => {
        const xs = expected.get('inputs')!;
        const x = tf.tensor4d(xs.values, xs.shape as [number, number, number, number]);
        const want = expected.get('logits')!;
        const { logits, tape } = model.fast.forward(x, model.param, true);
        const logitErr = maxAbsDiff(logits, tf.tensor(want.values, want.shape));
        assert.ok(logitErr <= 1e-4, `logits off by ${logitErr}`);
        const B = x.shape[0];
        const names = model.normParamNames();
        const grads = model.fast.backward(tape!, tf.div(entropyWithGrad(logits).grad, B) as tf.Tensor2D, new Set(names));
        const ref = names.map((n) => expected.get(`grad.${n}`)!);
        const scale = Math.max(...ref.map((r) => Math.max(...r.values.map(Math.abs))));
        names.forEach((n, i) => {
          const err = maxAbsDiff(grads.get(n)!, tf.tensor(ref[i]!.values, ref[i]!.shape));
          assert.ok(err <= 1e-4 * scale, `${n} off by ${err.toExponential(2)}`);
        });
      });
    } finally {
      model.dispose();
    }
  });
}

for (const B of [1, 2]) {
  test(`batch ${B}: the host path (fused kernels, both layouts, per-head attention at batch 1) and the GPU paths (with and without fused norms) agree`, () => {
    const cfg = tinyConfig({ depth: 2 });
    const model = new ViT(cfg, randomViTTensors(cfg, 4, 3));
    const opsOnly = new FastViT(cfg, model.param, model.finalNorm, { host: false, fused: false });
    const fusedKernels = new FastViT(cfg, model.param, model.finalNorm, { host: false, fused: true });
    assert.equal(opsOnly.host, false);
    assert.equal(model.fast.host, true);
    const x = tf.randomUniform([B, 28, 28, 1], 0, 1, 'float32', 9) as tf.Tensor4D;
    tf.tidy(() => {
      const names = new Set(model.normParamNames());
      const run = (f: FastViT) => {
        const { logits, tape } = f.forward(x, model.param, true);
        return { logits, grads: f.backward(tape!, entropyWithGrad(logits).grad, names) };
      };
      const a = run(model.fast);
      for (const other of [opsOnly, fusedKernels]) {
        const b = run(other);
        assert.ok(maxAbsDiff(a.logits, b.logits) <= 1e-5);
        for (const n of names) assert.ok(maxAbsDiff(a.grads.get(n)!, b.grads.get(n)!) <= 1e-5 * Math.max(1, maxAbs(a.grads.get(n)!)), n);
      }
      // Without the tape, the same logits.
      assert.ok(maxAbsDiff(model.fast.forward(x, model.param).logits, a.logits) <= 1e-6);
    });
    opsOnly.dispose();
    fusedKernels.dispose();
    x.dispose();
    model.dispose();
  });
}

test('the tape keeps its tensors past tf.tidy and frees them all on dispose', () => {
  const cfg = tinyConfig();
  const model = new ViT(cfg, randomViTTensors(cfg, 1));
  const x = tf.zeros([1, 28, 28, 1]) as tf.Tensor4D;
  const names = new Set(model.normParamNames());
  // One forward and backward first: derived weights and constants are built on first use and kept.
  tf.tidy(() => void model.fast.backward(model.fast.forward(x, model.param, true).tape!, tf.ones([1, 10]) as tf.Tensor2D, names));
  const before = tf.memory().numTensors;
  let tape!: FastTape;
  tf.tidy(() => {
    tape = model.fast.forward(x, model.param, true).tape!;
    tape.keep();
  });
  assert.ok(tf.memory().numTensors > before);
  tf.tidy(() => void model.fast.backward(tape, tf.ones([1, 10]) as tf.Tensor2D, names));
  tape.dispose();
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  model.dispose();
});
