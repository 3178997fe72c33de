// The GroupNorm ResNet family against PyTorch (tools/make_resnet_fixtures.py,
// e2e/fixtures/resnet-gn/): logits and GroupNorm-affine gradients on the cpu
// and wasm backends; its hand-written backward (one host kernel on cpu and
// wasm, tensor ops elsewhere) against tf.grads through its differentiable forward; its norm selection; the loader's validation; and
// every method adapting it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { backboneFromTensors, loadBackbone } from './load';
import { ResNetGN } from './resnet-gn';
import { FlatLayout } from '../methods/flat';
import { entropyWithGrad } from '../kernels';
import { OPS_ONLY_BACKEND, registerOpsOnlyBackend } from '../kernels/testing';
import { createAdapter, type AdapterOptions } from '../methods';
import { assertAdaptsOnSixFrames, everySampleOptions } from '../methods/testing';
import { computeSourceStats, readSourceStats } from './source-stats';
import { grayAccuracy } from './evaluate';
import { loadFashionMnist } from '../../tools/fmnist-node';
import { assertBackwardIsAutodiff, assertLogitsLeaveOnlyResult, fixtureReader, inputTensor, maxAbs, maxDiff, tensorVariants } from './testing';

const DIR = join(import.meta.dirname, '..', '..', 'e2e', 'fixtures', 'resnet-gn');
const FIXTURES = ['basic-gray28', 'bottleneck-rgb32'];

const fixture = fixtureReader(DIR);

for (const backend of ['cpu', 'wasm'] as const) {
  for (const name of FIXTURES) {
    test(`${name} on ${backend}: logits and GroupNorm-affine gradients match PyTorch`, async () => {
      await tf.setBackend(backend);
      const f = fixture(name);
      const model = await loadBackbone(f.model, { config: f.config });
      assert.ok(model instanceof ResNetGN, `loaded as ${model.family}`);
      const x = inputTensor(f.expected);
      try {
        const logits = tf.tidy(() => model.logits(x));
        const wantLogits = f.expected.get('logits')!.values;
        const err = maxDiff(await logits.data(), wantLogits);
        logits.dispose();
        assert.ok(err <= 1e-4 * Math.max(1, maxAbs(wantLogits)), `logits off by ${err}`);
        // The gradient of the batch-mean entropy with respect to every GroupNorm scale/shift, by the hand-written backward.
        const layout = new FlatLayout(model.variables);
        const flat = tf.tidy(() => {
          const { logits: l, tape } = model.forward(x, model.param, true);
          // The fixture's loss is the batch mean; entropyWithGrad gives each sample's own gradient.
          return model.gradient(tape!, tf.div(entropyWithGrad(l).grad, l.shape[0]) as tf.Tensor2D, layout);
        });
        const got = await flat.data();
        flat.dispose();
        layout.names.forEach((n, i) => {
          const want = f.expected.get(`grad.${n}`)!.values;
          const piece = got.subarray(layout.offsets[i]!, layout.offsets[i]! + want.length);
          const e = maxDiff(piece, want);
          assert.ok(e <= 1e-4 * Math.max(1e-2, maxAbs(want)) + 1e-6, `${n}: gradient off by ${e} (largest ${maxAbs(want)})`);
        });
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  }
}

// cpu and wasm walk the backward in one host kernel (kernels/host/conv-backward.ts); the ops-only backend walks it on tensor ops, as webgl and webgpu do.
registerOpsOnlyBackend();
for (const backend of ['cpu', 'wasm', OPS_ONLY_BACKEND])
  for (const name of FIXTURES) {
    test(`${name} on ${backend}: the hand-written backward is tf.grads through the differentiable forward, for every selection, with dFeatures, and with the stem lent by another tape; also on two 72 px images`, async () => {
      await tf.setBackend(backend);
      await assertBackwardIsAutodiff(fixture(name));
      // At 28-32 px the last stage is 1×1; at 72 px it is 3×3, and a batch of two.
      await assertBackwardIsAutodiff(fixture(name), 72);
    });
  }

test('norm selection: the stem and every stage but the last by default (SAR skips layer4); skipLastBlocks counts stages', async () => {
  await tf.setBackend('cpu');
  const f = fixture('basic-gray28');
  const model = await loadBackbone(f.model, { config: f.config });
  try {
    const stage = (n: string) => /^layer(\d+)\./.exec(n)?.[1] ?? '0';
    assert.deepEqual([...new Set(model.selectNorms({}).map(stage))], ['0', '1', '2', '3']);
    assert.deepEqual([...new Set(model.selectNorms({ skipLastBlocks: 0 }).map(stage))], ['0', '1', '2', '3', '4']);
    assert.deepEqual(model.selectNorms({ skipLastBlocks: model.normUnits }), []);
    assert.ok(model.selectNorms({}).every((n) => /(bn\d|downsample\.1)\.(weight|bias)$/.test(n)));
    assert.throws(() => model.selectNorms({ skipLastBlocks: 9 }), RangeError);
    // A layout naming no norm of this model: a clear error, not zeros.
    assert.throws(
      () =>
        tf.tidy(() => {
          const { tape } = model.forward(tf.zeros([1, 28, 28, 1]), model.param, true);
          model.gradient(tape!, tf.zeros([1, model.config.numClasses]), { names: ['layer9.0.bn1.weight'], offsets: [0], total: 4 });
        }),
      /no step of this forward holds layer9\.0\.bn1\.weight/,
    );
  } finally {
    model.dispose();
  }
});

test('the loader validates a ResNet as it does a ViT: missing, misshapen, unknown and non-finite tensors, groups, classes', async () => {
  await tf.setBackend('cpu');
  const f = fixture('basic-gray28');
  const { tensors, metadata, variant, rejects } = tensorVariants(f.model);
  rejects(
    variant((m) => m.delete('layer2.0.bn1.bias')),
    f.config,
    'layer2.0.bn1.bias',
    /missing/,
  );
  rejects(
    variant((m) => m.set('layer1.0.conv2.weight', { shape: [8, 8, 3, 2], values: new Float32Array(384) })),
    f.config,
    'layer1.0.conv2.weight',
    /does not match/,
  );
  rejects(
    variant((m) => m.set('layer1.0.se.fc.weight', { shape: [8], values: new Float32Array(8) })),
    f.config,
    'layer1.0.se.fc.weight',
    /variant/,
  );
  rejects(
    variant((m) => (m.get('layer3.0.bn2.weight')!.values[2] = NaN)),
    f.config,
    'layer3.0.bn2.weight',
    /value 2 is NaN/,
  );
  rejects(
    variant(() => undefined),
    { ...f.config, gn_groups: 3 },
    'bn1.weight',
    /groups/,
  );
  rejects(
    variant(() => undefined),
    { ...f.config, num_classes: 7 },
    'fc.weight',
    /classes/,
  );
  // The file as it is loads.
  backboneFromTensors(tensors, metadata, f.config).dispose();
});

for (const method of ['sar', 'sar-msam', 'tent', 'eata', 'deyo', 'sar-align'] as const) {
  test(`${method} adapts the GroupNorm ResNet: updates, a finite loss, tensors flat`, async () => {
    await tf.setBackend('cpu');
    const f = fixture('basic-gray28');
    const model = await loadBackbone(f.model, { config: f.config });
    // sar-align's statistics from the model's own blocks, on other random images than the stream's.
    const clean = tf.randomUniform([16, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const sourceStats = method === 'sar-align' ? await computeSourceStats(model, clean) : undefined;
    clean.dispose();
    const options = {
      method,
      ...everySampleOptions(method, sourceStats),
    } as AdapterOptions;
    const adapter = await createAdapter(model, options);
    try {
      assert.ok(adapter.params.size > 0, 'nothing to adapt');
      await assertAdaptsOnSixFrames(adapter, method, true, 'GroupNorm scale/shift');
    } finally {
      adapter.dispose();
      model.dispose();
    }
  });
}

test("the shipped Fashion-MNIST GroupNorm ResNet: loads with its source statistics, and tfjs (wasm) gives PyTorch's clean test accuracy", async () => {
  await tf.setBackend('wasm');
  const dir = join(import.meta.dirname, '..', '..', 'public', 'models', 'fmnist-resnet-gn');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { training: { cleanTestAccuracy: number } };
  const model = await loadBackbone(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), { config });
  try {
    assert.equal(model.family, 'resnet-gn');
    const stats = readSourceStats(new Uint8Array(readFileSync(join(dir, 'source-stats.safetensors'))), model);
    assert.deepEqual(stats.layerWidths, [16, 32, 64, 128]);
    const test = loadFashionMnist('t10k', join(import.meta.dirname, '..', '..', 'public', 'data', 'fashion-mnist'));
    const acc = await grayAccuracy(model, test.images, test.labels, { batch: 500 });
    // PyTorch's figure from training (tools/train_resnet_gn.py), on all 10,000 images; float32 on both sides.
    assert.ok(Math.abs(acc.accuracy - config.training.cleanTestAccuracy) <= 0.0005, `tfjs ${acc.accuracy} vs PyTorch ${config.training.cleanTestAccuracy}`);
  } finally {
    model.dispose();
  }
});

test('logits() outside tf.tidy leaves only its result (the caller owns it)', async () => {
  await tf.setBackend('cpu');
  await assertLogitsLeaveOnlyResult(fixture(FIXTURES[0]!));
});
