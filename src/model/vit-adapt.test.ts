// The ViT's adaptation forward (on the kernels) and its hand-written
// LayerNorm backward (vit-backward.ts) against the definition: the plain
// forward with tfjs autodiff, on random ViTs of every pooling variant, batch
// sizes 1 and 3, any subset of adapted norms; against the PyTorch fixtures of
// tools/make_fixtures.py; on the host's kernels (cpu, and wasm with its SIMD
// kernels and its one-call backward) and on the tfjs-ops implementations
// (src/kernels/ops, what webgl runs).
//
//   node --import tsx --test src/model/vit-adapt.test.ts
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { ViT } from './vit';
import type { ViTTape } from './vit-backward';
import { vitFromSafetensors } from './load';
import { readSafetensors } from './safetensors';
import { randomViTTensors, tinyConfig } from './random-vit';
import type { ViTConfig } from './config';
import { entropyWithGrad, softmaxEntropy } from '../kernels';
import { OPS_ONLY_BACKEND, registerOpsOnlyBackend } from '../kernels/testing';
import { FlatLayout } from '../methods/flat';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
  registerOpsOnlyBackend();
});

after(async () => {
  await tf.setBackend('cpu');
});

function maxAbs(t: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(t)).dataSync()[0]!);
}
function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** The adapted norms `names` in a layout of their own. */
const layoutOf = (model: ViT, names: string[]) => new FlatLayout(new Map(names.map((n) => [n, model.variables.get(n)!])));

/** Weighted mean entropy (weights differ per row, so each sample's gradient path is checked). */
function lossWeights(B: number): tf.Tensor1D {
  return tf.tensor1d(Array.from({ length: B }, (_, i) => (i + 1) / B));
}

/** Logits and the flat gradient of the weighted entropy for `wanted`, through forward and gradient (inside tf.tidy). */
function adapted(model: ViT, x: tf.Tensor4D, wanted: string[], dFeatures?: tf.Tensor2D) {
  const w = lossWeights(x.shape[0]);
  const { logits, tape } = model.forward(x, model.param, true);
  const dLogits = tf.mul(entropyWithGrad(logits).grad, tf.expandDims(w, 1)) as tf.Tensor2D;
  return { logits, grad: model.gradient(tape!, dLogits, layoutOf(model, wanted), dFeatures) };
}

function check(model: ViT, x: tf.Tensor4D, wanted: string[], label: string): void {
  tf.tidy(() => {
    const w = lossWeights(x.shape[0]);
    const vars = wanted.map((n) => model.variables.get(n)!);
    const ref = tf.variableGrads(() => tf.sum(tf.mul(softmaxEntropy(model.logits(x)), w)) as tf.Scalar, vars);
    const refLogits = model.logits(x);
    const { logits, grad } = adapted(model, x, wanted);
    const logitErr = maxAbsDiff(logits, refLogits);
    assert.ok(logitErr <= 1e-4 * Math.max(1, maxAbs(refLogits)), `${label}: logits off by ${logitErr}`);
    const want = tf.concat(wanted.map((n) => tf.reshape(ref.grads[model.variables.get(n)!.name]!, [-1])));
    const scale = maxAbs(want);
    assert.ok(scale > 0, `${label}: reference gradients are zero`);
    const err = maxAbsDiff(grad, want);
    assert.ok(err <= 1e-4 * scale, `${label}: gradient off by ${err.toExponential(2)} (scale ${scale.toExponential(2)})`);
  });
}

const variants: Array<[string, Partial<ViTConfig>]> = [
  ['token pool', { depth: 3, heads: 2 }],
  ['avg pool + fc_norm', { depth: 2, heads: 4, pool: 'avg', imageSize: 16, patchSize: 4, inChannels: 3, mean: [0.4, 0.5, 0.6], std: [0.2, 0.3, 0.25] }],
];

// cpu: the host kernels (the walk in one call at batch 1); the ops-only backend: every op in tfjs ops.
for (const backend of ['cpu', OPS_ONLY_BACKEND]) {
  for (const [name, over] of variants) {
    for (const B of [1, 3]) {
      test(`${backend}, ${name}, batch ${B}: logits and LayerNorm gradients match autodiff`, async () => {
        await tf.setBackend(backend);
        const cfg = tinyConfig(over);
        const model = new ViT(cfg, randomViTTensors(cfg, 3, 3));
        const x = tf.randomUniform([B, cfg.imageSize, cfg.imageSize, cfg.inChannels], 0, 1, 'float32', 5) as tf.Tensor4D;
        try {
          const all = model.normParamNames();
          const last = `blocks.${cfg.depth - 1}`;
          check(model, x, all, 'all norms');
          // SAR's selection (blocks but the last, no final norm), in reverse order too; one norm bias alone.
          const sar = all.filter((n) => n.startsWith('blocks.') && !n.startsWith(`${last}.`));
          check(model, x, sar, 'SAR selection');
          check(model, x, [...sar].reverse(), 'SAR selection, reversed');
          check(model, x, ['blocks.1.norm2.bias'], 'one tensor');
          // The last block alone (under token pooling its backward runs on the class tokens' rows on the host).
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
}

test('a loss on the pooled feature too (dFeatures): the gradient matches autodiff, with and without it', async () => {
  await tf.setBackend('cpu');
  const cfg = tinyConfig({ depth: 2 });
  const model = new ViT(cfg, randomViTTensors(cfg, 6, 3));
  const x = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 8) as tf.Tensor4D;
  tf.tidy(() => {
    const names = model.normParamNames().filter((n) => n.startsWith('blocks.'));
    const u = tf.randomNormal([1, cfg.width], 0, 1, 'float32', 9) as tf.Tensor2D;
    const vars = names.map((n) => model.variables.get(n)!);
    // Σ entropy + Σ u·features, through the plain forward.
    const ref = tf.variableGrads(() => {
      const { logits, features } = model.summaries(x);
      return tf.add(tf.sum(softmaxEntropy(logits)), tf.sum(tf.mul(features, u))) as tf.Scalar;
    }, vars);
    const want = tf.concat(names.map((n) => tf.reshape(ref.grads[model.variables.get(n)!.name]!, [-1])));
    const got = adapted(model, x, names, u).grad;
    assert.ok(maxAbsDiff(got, want) <= 1e-4 * maxAbs(want), `with dFeatures off by ${maxAbsDiff(got, want)}`);
    assert.ok(maxAbsDiff(adapted(model, x, names).grad, want) > 1e-3 * maxAbs(want), 'the feature term changes the gradient');
  });
  x.dispose();
  model.dispose();
});

const FIXTURES = join(import.meta.dirname, '..', '..', 'e2e', 'fixtures');
for (const name of ['vit-gray28-p4-token', 'vit-rgb32-p8-avg', 'vit-rgb16-p4-avgnorm']) {
  test(`${name}: logits and mean-entropy LayerNorm gradients match PyTorch`, async () => {
    await tf.setBackend('cpu');
    const config: unknown = JSON.parse(readFileSync(join(FIXTURES, name, 'config.json'), 'utf8'));
    const model = vitFromSafetensors(new Uint8Array(readFileSync(join(FIXTURES, name, 'model.safetensors'))), config);
    const expected = readSafetensors(new Uint8Array(readFileSync(join(FIXTURES, name, 'expected.safetensors')))).tensors;
    try {
      tf.tidy(() => {
        const xs = expected.get('inputs')!;
        const x = tf.tensor4d(xs.values, xs.shape as [number, number, number, number]);
        const want = expected.get('logits')!;
        const { logits, tape } = model.forward(x, model.param, true);
        const logitErr = maxAbsDiff(logits, tf.tensor(want.values, want.shape));
        assert.ok(logitErr <= 1e-4, `logits off by ${logitErr}`);
        const B = x.shape[0];
        const names = model.normParamNames();
        const layout = layoutOf(model, names);
        const grads = layout.split(model.gradient(tape!, tf.div(entropyWithGrad(logits).grad, B) as tf.Tensor2D, layout));
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
  test(`batch ${B}: the host's kernels (cpu, wasm) and the tfjs-ops implementations agree`, async () => {
    const cfg = tinyConfig({ depth: 2 });
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const model = new ViT(cfg, randomViTTensors(cfg, 4, 3));
      const x = tf.randomUniform([B, 28, 28, 1], 0, 1, 'float32', 9) as tf.Tensor4D;
      const out = tf.tidy(() => {
        const { logits, grad } = adapted(model, x, model.normParamNames());
        // Without the tape, the same logits.
        const plain = model.forward(x, model.param).logits;
        return [logits, grad, plain].map((t) => t.dataSync().slice() as Float32Array);
      });
      x.dispose();
      model.dispose();
      return out;
    };
    const [logits, grad, plain] = await run('cpu');
    for (const backend of ['wasm', OPS_ONLY_BACKEND]) {
      const [l, g] = await run(backend);
      const diff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
      assert.ok(diff(l!, logits!) <= 1e-5, `${backend}: logits off by ${diff(l!, logits!)}`);
      assert.ok(diff(g!, grad!) <= 1e-5 * Math.max(1, ...grad!.map(Math.abs)), `${backend}: gradient off by ${diff(g!, grad!)}`);
    }
    assert.deepEqual(plain, logits, 'the forward gives the same logits with and without its tape');
  });
}

// Head width 8 takes the attention backward's per-head products, 16 its SIMD kernel (three blocks: two full backwards).
for (const over of [
  { depth: 2, heads: 2 },
  { depth: 3, heads: 2, width: 32 },
]) {
  test(`wasm, batch 1 (head width ${(over.width ?? 16) / over.heads}): the one-call backward matches autodiff and frees what it makes`, async () => {
    await tf.setBackend('wasm');
    const cfg = tinyConfig(over);
    const model = new ViT(cfg, randomViTTensors(cfg, 5, 3));
    const x = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
    const names = model.normParamNames();
    tf.tidy(() => void adapted(model, x, names));
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const vars = names.map((n) => model.variables.get(n)!);
      const w = lossWeights(1);
      const ref = tf.variableGrads(() => tf.sum(tf.mul(softmaxEntropy(model.logits(x)), w)) as tf.Scalar, vars);
      // All norms, and SAR's selection (blocks but the last) in reverse order.
      for (const order of [names, names.filter((n) => n.startsWith('blocks.') && !n.startsWith(`blocks.${cfg.depth - 1}.`)).reverse()]) {
        const want = tf.concat(order.map((n) => tf.reshape(ref.grads[model.variables.get(n)!.name]!, [-1])));
        const err = maxAbsDiff(adapted(model, x, order).grad, want);
        assert.ok(err <= 1e-4 * Math.max(1, maxAbs(want)), `flat gradient of ${order.length} tensors off by ${err}`);
      }
    });
    assert.equal(tf.memory().numTensors, before);
    const dataIds = tf.engine().backend.numDataIds();
    tf.tidy(() => void adapted(model, x, names));
    assert.equal(tf.engine().backend.numDataIds(), dataIds, 'the whole backward leaves nothing behind on the backend');
    x.dispose();
    model.dispose();
  });
}

test('the tape keeps its tensors past tf.tidy and frees them all on dispose', async () => {
  await tf.setBackend('cpu');
  const cfg = tinyConfig();
  const model = new ViT(cfg, randomViTTensors(cfg, 1));
  const x = tf.zeros([1, 28, 28, 1]) as tf.Tensor4D;
  const layout = layoutOf(model, model.normParamNames());
  // One forward and backward first: the prepared weights are made on first use and kept.
  tf.tidy(() => void model.gradient(model.forward(x, model.param, true).tape!, tf.ones([1, 10]) as tf.Tensor2D, layout));
  const before = tf.memory().numTensors;
  let tape!: ViTTape;
  tf.tidy(() => {
    tape = model.forward(x, model.param, true).tape as ViTTape;
    tape.keep();
  });
  assert.ok(tf.memory().numTensors > before);
  tf.tidy(() => void model.gradient(tape, tf.ones([1, 10]) as tf.Tensor2D, layout));
  tape.dispose();
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  const beforeModel = tf.memory().numTensors;
  model.dispose();
  assert.ok(tf.memory().numTensors < beforeModel, 'dispose frees the weights and the prepared ones');
});
