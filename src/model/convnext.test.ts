// The ConvNeXt family against PyTorch (tools/make_convnext_fixtures.py,
// e2e/fixtures/convnext/): logits and LayerNorm-affine gradients on the cpu
// and wasm backends, by both autodiff paths (gradient and forwardGradient);
// its norm selection; the loader's validation; every method adapting it
// through the Backbone interface; and the shipped Fashion-MNIST model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readSafetensors } from './safetensors';
import { backboneFromTensors, loadBackbone } from './load';
import { ModelFormatError } from './errors';
import { ConvNeXt } from './convnext';
import { familyOf } from './families';
import { FlatLayout } from '../methods/flat';
import { entropyWithGrad } from '../kernels';
import { createAdapter, type AdapterOptions } from '../methods';
import { assertAdaptsOnSixFrames, everySampleOptions } from '../methods/testing';
import { computeSourceStats, readSourceStats } from './source-stats';
import { grayAccuracy } from './evaluate';
import { loadFashionMnist } from '../../tools/fmnist-node';
import { assertBackwardIsAutodiff, assertLogitsLeaveOnlyResult, fixtureReader, inputTensor, maxAbs, maxDiff, tensorVariants } from './testing';
import { autodiffGradient, AutodiffTape } from './backbone';

const DIR = join(import.meta.dirname, '..', '..', 'e2e', 'fixtures', 'convnext');
const FIXTURES = ['gray28-patch2', 'rgb32-patch4'];

const fixture = fixtureReader(DIR);

for (const name of FIXTURES) {
  test(`${name}: the written-out backward is tf.grads through the differentiable forward, for every selection, with dFeatures, and with the stem lent by another tape`, async () => {
    await tf.setBackend('cpu');
    await assertBackwardIsAutodiff(fixture(name));
  });
}

for (const backend of ['cpu', 'wasm'] as const) {
  for (const name of FIXTURES) {
    test(`${name} on ${backend}: logits and LayerNorm-affine gradients (the written-out backward and autodiff) match PyTorch`, async (t) => {
      await tf.setBackend(backend);
      const f = fixture(name);
      const model = await loadBackbone(f.model, { config: f.config });
      assert.ok(model instanceof ConvNeXt, `loaded as ${model.family}`);
      const x = inputTensor(f.expected);
      try {
        const logits = model.logits(x);
        const wantLogits = f.expected.get('logits')!.values;
        const err = maxDiff(await logits.data(), wantLogits);
        logits.dispose();
        assert.ok(err <= 1e-4 * Math.max(1, maxAbs(wantLogits)), `logits off by ${err}`);
        // The batch-mean entropy's gradient with respect to every LayerNorm scale/shift (head.norm's too).
        const layout = new FlatLayout(model.variables);
        const dEntropy = (l: tf.Tensor2D) => tf.div(entropyWithGrad(l).grad, l.shape[0]) as tf.Tensor2D;
        const gradients = (): [tf.Tensor, tf.Tensor] =>
          tf.tidy(() => {
            const { logits: l, tape } = model.forward(x, model.param, true);
            const viaAutodiff = autodiffGradient((im, n) => model.summaries(im, n), new AutodiffTape(x, model.param), dEntropy(l), layout);
            return [model.gradient(tape!, dEntropy(l), layout), viaAutodiff];
          });
        // The first backward makes the flipped depthwise filters the model keeps; the count is taken after it.
        tf.dispose(gradients());
        const tensors = tf.memory().numTensors;
        const [flat, onePass] = gradients();
        const [got, gotOnePass] = await Promise.all([flat.data(), onePass.data()]);
        tf.dispose([flat, onePass]);
        assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
        let worst = 0;
        layout.names.forEach((n, i) => {
          const want = f.expected.get(`grad.${n}`)!.values;
          for (const [what, all] of [
            ['gradient', got],
            ['autodiff', gotOnePass],
          ] as const) {
            const e = maxDiff(all.subarray(layout.offsets[i]!, layout.offsets[i]! + want.length), want);
            worst = Math.max(worst, e);
            assert.ok(e <= 1e-4 * Math.max(1e-2, maxAbs(want)) + 1e-6, `${n} (${what}): off by ${e} (largest ${maxAbs(want)})`);
          }
        });
        assert.equal(layout.names.length, [...f.expected.keys()].filter((k) => k.startsWith('grad.')).length, 'every LayerNorm has a reference gradient');
        t.diagnostic(`max |Δ| logits ${err.toExponential(2)}, gradients ${worst.toExponential(2)}`);
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  }
}

test('the family registry reads a ConvNeXt file as a ConvNeXt, not as a ViT', () => {
  const names = new Set(readSafetensors(fixture('gray28-patch2').model).tensors.keys());
  assert.equal(familyOf(names).name, 'convnext');
});

test('norm selection: the stem and every stage but the last by default; head.norm only with includeFinalNorm; skipLastBlocks counts stages', async () => {
  await tf.setBackend('cpu');
  const f = fixture('gray28-patch2');
  const model = await loadBackbone(f.model, { config: f.config });
  try {
    const unit = (n: string) => (n.startsWith('head.') ? 'head' : (/^stages\.(\d+)\./.exec(n)?.[1] ?? 'stem'));
    assert.equal(model.normUnits, 5);
    assert.deepEqual([...new Set(model.selectNorms({}).map(unit))], ['stem', '0', '1', '2']);
    assert.deepEqual([...new Set(model.selectNorms({ includeFinalNorm: true }).map(unit))], ['stem', '0', '1', '2', 'head']);
    assert.deepEqual([...new Set(model.selectNorms({ skipLastBlocks: 0 }).map(unit))], ['stem', '0', '1', '2', '3']);
    assert.deepEqual(model.selectNorms({ skipLastBlocks: model.normUnits }), []);
    // The third stage's downsample norm is adapted with its blocks; the fourth's is skipped with them.
    assert.ok(model.selectNorms({}).includes('stages.2.downsample.0.weight'));
    assert.ok(!model.selectNorms({}).includes('stages.3.downsample.0.weight'));
    assert.throws(() => model.selectNorms({ skipLastBlocks: 6 }), RangeError);
    assert.deepEqual(model.summaryWidths, [8, 16, 16, 16, 32]);
  } finally {
    model.dispose();
  }
});

test('the loader validates a ConvNeXt: missing, misshapen, unknown, GRN and non-finite tensors, classes, model_args', async () => {
  await tf.setBackend('cpu');
  const f = fixture('gray28-patch2');
  const { tensors, metadata, variant, rejects } = tensorVariants(f.model);
  rejects(
    variant((m) => m.delete('stages.1.blocks.1.gamma')),
    f.config,
    'stages.1.blocks.1.gamma',
    /missing/,
  );
  rejects(
    variant((m) => m.set('stages.0.blocks.0.mlp.fc1.weight', { shape: [32, 9], values: new Float32Array(288) })),
    f.config,
    'stages.0.blocks.0.mlp.fc1.weight',
    /does not match/,
  );
  rejects(
    variant((m) => m.set('head.pre_logits.fc.weight', { shape: [32, 32], values: new Float32Array(1024) })),
    f.config,
    'head.pre_logits.fc.weight',
    /variant/,
  );
  rejects(
    variant((m) => m.set('stages.0.blocks.0.mlp.grn.weight', { shape: [32], values: new Float32Array(32) })),
    f.config,
    'stages.0.blocks.0.mlp.grn.weight',
    /GRN/,
  );
  rejects(
    variant((m) => (m.get('stages.2.blocks.0.norm.bias')!.values[1] = Infinity)),
    f.config,
    'stages.2.blocks.0.norm.bias',
    /value 1 is/,
  );
  rejects(
    variant(() => undefined),
    { ...f.config, num_classes: 7 },
    'head.fc.weight',
    /classes/,
  );
  rejects(
    variant(() => undefined),
    { ...f.config, model_args: { depths: [3, 3, 9, 3] } },
    undefined,
    /model_args.depths/,
  );
  rejects(
    variant(() => undefined),
    { ...f.config, model_args: { stem_type: 'overlap' } },
    undefined,
    /stem_type/,
  );
  // The file as it is loads.
  backboneFromTensors(tensors, metadata, f.config).dispose();
});

// Every method the benchmark runs ('recenter' is source with feature re-centering), through the Backbone interface only.
for (const method of ['sar', 'sar-msam', 'tent', 'eata', 'deyo', 'sar-align', 'recenter', 'source'] as const) {
  test(`${method} runs on the ConvNeXt: ${method === 'source' || method === 'recenter' ? 'predictions' : 'updates, a finite loss'}, tensors flat`, async () => {
    await tf.setBackend('cpu');
    const f = fixture('gray28-patch2');
    const model = await loadBackbone(f.model, { config: f.config });
    const clean = tf.randomUniform([16, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const sourceStats = method === 'sar-align' || method === 'recenter' ? await computeSourceStats(model, clean) : undefined;
    clean.dispose();
    const name = method === 'recenter' ? 'source' : method;
    const options = {
      method: name,
      ...(method === 'recenter' ? { recenter: true } : {}),
      ...everySampleOptions(name, sourceStats),
    } as AdapterOptions;
    const adapter = await createAdapter(model, options);
    try {
      const adapts = method !== 'source' && method !== 'recenter';
      assert.equal(adapter.params.size > 0, adapts, 'what it adapts');
      await assertAdaptsOnSixFrames(adapter, method, adapts, 'LayerNorm scale/shift');
    } finally {
      adapter.dispose();
      model.dispose();
    }
  });
}

const SHIPPED = join(import.meta.dirname, '..', '..', 'public', 'models', 'fmnist-convnext');

test("the shipped Fashion-MNIST ConvNeXt: loads with its source statistics, and tfjs (wasm) gives PyTorch's logits and clean test accuracy", async (t) => {
  await tf.setBackend('wasm');
  const config = JSON.parse(readFileSync(join(SHIPPED, 'config.json'), 'utf8')) as { training: { cleanTestAccuracy: number } };
  const model = await loadBackbone(new Uint8Array(readFileSync(join(SHIPPED, 'model.safetensors'))), { config });
  try {
    assert.equal(model.family, 'convnext');
    const stats = readSourceStats(new Uint8Array(readFileSync(join(SHIPPED, 'source-stats.safetensors'))), model);
    assert.deepEqual(stats.layerWidths, [16, 32, 64, 128]);
    // PyTorch's logits on the first 16 test images (tools/make_convnext_fixtures.py, float64).
    const check = readSafetensors(new Uint8Array(readFileSync(join(DIR, 'shipped-check.safetensors')))).tensors;
    const x = inputTensor(check);
    const logits = model.logits(x);
    const want = check.get('logits')!.values;
    const err = maxDiff(await logits.data(), want);
    tf.dispose([x, logits]);
    t.diagnostic(`max |Δ| logits against PyTorch ${err.toExponential(2)} (largest ${maxAbs(want).toFixed(2)})`);
    assert.ok(err <= 1e-4 * Math.max(1, maxAbs(want)), `logits off by ${err}`);
    const test = loadFashionMnist('t10k', join(import.meta.dirname, '..', '..', 'public', 'data', 'fashion-mnist'));
    const acc = await grayAccuracy(model, test.images, test.labels, { batch: 500 });
    // PyTorch's figure from training (tools/train_convnext.py), on all 10,000 images; float32 on both sides.
    assert.ok(Math.abs(acc.accuracy - config.training.cleanTestAccuracy) <= 0.0005, `tfjs ${acc.accuracy} vs PyTorch ${config.training.cleanTestAccuracy}`);
  } finally {
    model.dispose();
  }
});

test("timm's conv_mlp layout (the MLP's weights [out, in, 1, 1], as convnext_atto … _nano store them) loads and gives the same logits", async () => {
  await tf.setBackend('cpu');
  const f = fixture('gray28-patch2');
  const { tensors, metadata } = readSafetensors(f.model);
  const asConv = new Map([...tensors].map(([n, t]) => [n, /\.mlp\.fc\d\.weight$/.test(n) ? { shape: [...t.shape, 1, 1], values: t.values } : t] as const));
  const x = inputTensor(f.expected);
  const plain = backboneFromTensors(tensors, metadata, f.config);
  const conv = backboneFromTensors(asConv, metadata, { ...f.config, model_args: { conv_mlp: true } });
  try {
    const [a, b] = await Promise.all([plain.logits(x).data(), conv.logits(x).data()]);
    assert.deepEqual(b, a);
    assert.throws(
      () => backboneFromTensors(asConv, metadata, { ...f.config, model_args: { conv_mlp: false } }),
      (e: unknown) => e instanceof ModelFormatError && /conv_mlp/.test(e.message),
    );
  } finally {
    tf.dispose(x);
    plain.dispose();
    conv.dispose();
  }
});

test('logits() outside tf.tidy leaves only its result (the caller owns it)', async () => {
  await tf.setBackend('cpu');
  await assertLogitsLeaveOnlyResult(fixture(FIXTURES[0]!));
});
