// The engine on Node's wasm backend with the shipped model: frames in,
// predictions, update reports and records out; the frozen reference; bad
// input rejected with typed errors while the engine goes on; flat tensors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
// The umbrella registers tfjs's gradients (EATA's Fisher), as the package's entries do in a browser.
import * as tf from '@tensorflow/tfjs';
import { Engine, EngineStateError } from './engine';
import type { FrameInput } from './engine-types';
import { loadFashionMnist } from '../../tools/fmnist-node';

const PUBLIC = join(import.meta.dirname, '..', '..', 'public');
const data = loadFashionMnist('t10k', join(PUBLIC, 'data', 'fashion-mnist'));
const engine = new Engine();

function image(i: number): Float32Array {
  return Float32Array.from(data.images.subarray(i * 784, (i + 1) * 784), (v) => v / 255);
}

const frame = (i: number, extra: Partial<FrameInput> = {}): FrameInput => ({
  frame: { data: image(i), width: 28, height: 28, channels: 1, maxValue: 1 },
  label: data.labels[i]!,
  tag: i,
  corruption: { name: 'gaussian_noise', severity: 5, seed: i },
  ...extra,
});

before(async () => {
  await engine.init({ backend: 'wasm' });
  const weights = readFileSync(join(PUBLIC, 'models', 'fmnist-vit', 'model.safetensors'));
  const config = JSON.parse(readFileSync(join(PUBLIC, 'models', 'fmnist-vit', 'config.json'), 'utf8'));
  const info = await engine.loadModel({ kind: 'bytes', weights: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength), config });
  assert.deepEqual([info.imageSize, info.inChannels, info.numClasses, info.classNames[9]], [28, 1, 10, 'Ankle boot']);
});
after(() => engine.dispose());

test('engine: used out of order it says what is missing', async () => {
  const fresh = new Engine();
  await assert.rejects(fresh.step(frame(0)), EngineStateError);
  await assert.rejects(fresh.loadModel({ kind: 'url', url: 'http://127.0.0.1:9/none/' }), /init/);
});

test('engine: SAR steps report predictions, updates and records; the reference is the unadapted model; tensors stay flat', async () => {
  const info = await engine.setMethod({ method: 'sar', lr: 1e-3 });
  assert.ok(Math.abs(info.margin - 0.4 * Math.log(10)) < 1e-9);
  engine.clearRecords();
  engine.setReference(true);
  const results = [];
  // One GPU→CPU read per frame, the reference forward and the preview included.
  const read = tf.Tensor.prototype.data;
  let reads = 0;
  tf.Tensor.prototype.data = function (this: tf.Tensor) {
    reads++;
    return read.call(this);
  } as typeof read;
  try {
    for (let i = 0; i < 40; i++) results.push(await engine.step(frame(i, { preview: i === 3 })));
  } finally {
    tf.Tensor.prototype.data = read;
  }
  assert.equal(reads, 40, 'reads in 40 frames with the reference on');
  // Before any update the adapted model is the source model.
  assert.equal(results[0]!.predicted, results[0]!.reference!.input.predicted);
  assert.ok(Math.abs(results[0]!.confidence - results[0]!.reference!.input.confidence) < 1e-5);
  assert.ok(
    results.some((r) => r.updates.some((u) => u.updated)),
    'no update in 40 frames',
  );
  assert.equal(results[3]!.preview!.length, 784);
  assert.ok(
    results[3]!.preview!.some((v, k) => Math.abs(v - image(3)[k]!) > 0.05),
    'the preview is the corrupted input',
  );
  const settled = results.slice(10).map((r) => r.numTensors - (r.pending ? 1 : 0));
  assert.equal(Math.max(...settled), Math.min(...settled), `tensor count moved: ${[...new Set(settled)]}`);
  const rec = engine.getRecords();
  assert.deepEqual(
    rec.frame,
    results.map((r) => r.frame),
  );
  assert.deepEqual(
    rec.predicted,
    results.map((r) => r.predicted),
  );
  assert.deepEqual(
    rec.label,
    results.map((_, i) => data.labels[i]),
  );
  assert.deepEqual(
    rec.referenceInput,
    results.map((r) => r.reference!.input.predicted),
  );
  assert.deepEqual(
    rec.tag,
    results.map((_, i) => i),
  );
  // The reference is the source model all along, not the adapted one: a no-adapt engine on the same frames gives its predictions.
  await engine.setMethod({ method: 'source' });
  engine.setReference(false);
  for (let i = 0; i < 40; i++) {
    const r = await engine.step(frame(i));
    assert.equal(r.predicted, results[i]!.reference!.input.predicted, `frame ${i}`);
    assert.ok(
      Math.abs(r.confidence - results[i]!.reference!.input.confidence) < 1e-4,
      `frame ${i}: confidence ${r.confidence} vs the reference's ${results[i]!.reference!.input.confidence}`,
    );
  }
});

test('engine: bad frames are rejected with typed errors, and the engine goes on', async () => {
  await engine.setMethod({ method: 'sar', lr: 1e-3 });
  engine.clearRecords();
  await engine.step(frame(0));
  const bad: Array<[Partial<FrameInput>, string, RegExp]> = [
    [{ frame: { data: new Float32Array(784).fill(NaN), width: 28, height: 28, channels: 1, maxValue: 1 }, corruption: null }, 'InvalidInputError', /NaN/],
    [{ frame: { data: new Float32Array(10), width: 28, height: 28, channels: 1, maxValue: 1 } }, 'FrameFormatError', /needs 784 values/],
    [{ corruption: { name: 'smoke', severity: 3, seed: 1 } }, 'FrameFormatError', /unknown corruption 'smoke'/],
    [{ corruption: { name: 'fog', severity: 6, seed: 1 } }, 'FrameFormatError', /severity/],
    [
      { corruption: { name: 'fog', severity: 3, seed: 1, regime: 'imagenet224' as 'cifar' } },
      'FrameFormatError',
      /regime 'imagenet224' \(known: imagenet64, cifar\)/,
    ],
    [{ label: 10 }, 'FrameFormatError', /label must be an integer class in 0..9/],
    // Issue 25: 0-255 values given as [0, 1], and a normalized image's negative values.
    [
      { frame: { data: new Float32Array(784).fill(200), width: 28, height: 28, channels: 1, maxValue: 1 } },
      'FrameFormatError',
      /pixel value 0 is 200, outside \[0, 1\]/,
    ],
    [{ frame: { data: new Float32Array(784).fill(-0.5), width: 28, height: 28, channels: 1, maxValue: 1 } }, 'FrameFormatError', /outside \[0, 1\]/],
  ];
  for (const [patch, name, message] of bad) {
    await assert.rejects(engine.step(frame(1, patch)), (e: Error) => e.name === name && message.test(e.message));
  }
  const next = await engine.step(frame(2));
  assert.equal(next.step, 1, 'rejected frames use no step');
  assert.equal(engine.getRecords().frame.length, 2, 'rejected frames leave no record');
});

test('engine: any frame size is cropped and resized to the model input', async () => {
  await engine.setMethod({ method: 'source' });
  // Test image 0 drawn 2× larger in the middle of a wider RGBA frame.
  const w = 80;
  const h = 56;
  const rgba = new Uint8ClampedArray(w * h * 4);
  const src = data.images.subarray(0, 784);
  for (let y = 0; y < h; y++)
    for (let x = 12; x < 68; x++) {
      const v = src[Math.floor(y / 2) * 28 + Math.floor((x - 12) / 2)]!;
      rgba.set([v, v, v, 255], (y * w + x) * 4);
    }
  const big = await engine.step({ frame: { data: rgba, width: w, height: h, channels: 4 }, corruption: null, preview: true });
  const direct = await engine.step({ frame: { data: image(0), width: 28, height: 28, channels: 1, maxValue: 1 }, corruption: null });
  assert.equal(big.predicted, direct.predicted);
  assert.ok(
    big.preview!.every((v, k) => Math.abs(v - image(0)[k]!) < 1e-5),
    'a 2× blow-up shrinks back exactly',
  );
});

test('engine: EATA gets its Fisher from clean images', async () => {
  const count = 20;
  const pixels = new Float32Array(count * 784);
  for (let i = 0; i < count; i++) pixels.set(image(9000 + i), i * 784);
  const info = await engine.setMethod({ method: 'eata', lr: 3e-3, fisherImages: { pixels, count } });
  assert.equal(info.fisher, true);
  await engine.step(frame(5));
  await assert.rejects(engine.setMethod({ method: 'eata', fisherImages: { pixels, count: count + 1 } }), /fisherImages/);
});

test('engine: a method that cannot be made leaves the running one, with its adapted state, in place', async () => {
  await engine.setMethod({ method: 'sar', lr: 1e-3, options: { marginFraction: 100, resetThreshold: 0 } });
  for (let i = 0; i < 8; i++) await engine.step(frame(i));
  const before = await engine.exportState();
  for (const bad of [
    { method: 'tent' as const, options: { skipLastBlocks: 99 } },
    { method: 'sar' as const, options: { rho: 'far' } },
  ]) {
    await assert.rejects(engine.setMethod(bad as never), (e: unknown) => e instanceof Error && /skipLastBlocks|rho/.test(e.message), JSON.stringify(bad));
    assert.deepEqual(await engine.exportState(), before, `${JSON.stringify(bad)}: the adapted state changed`);
  }
  // And it goes on adapting.
  const r = await engine.step(frame(8));
  assert.equal(r.step, 8);
});

test('engine: source statistics come with a model, are validated, and gate sar-align; computeSourceStats makes them', async () => {
  const dir = join(PUBLIC, 'models', 'fmnist-vit');
  const weights = readFileSync(join(dir, 'model.safetensors'));
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const stats = readFileSync(join(dir, 'source-stats.safetensors'));
  const ab = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  const e = new Engine();
  await e.init({ backend: 'wasm' });
  // Without statistics: sar-align and re-centering are refused with a message that says what to do; SAR still runs.
  const bare = await e.loadModel({ kind: 'bytes', weights: ab(weights), config });
  assert.equal(bare.sourceStats, null);
  await e.setMethod({ method: 'sar', lr: 1e-3 });
  await assert.rejects(e.setMethod({ method: 'sar-align' }), /source statistics.*source-stats\.safetensors/);
  await assert.rejects(e.setMethod({ method: 'tent', options: { recenter: true } }), /recenter needs the model's source statistics/);
  assert.equal((await e.step(frame(0))).frame, 0, 'the SAR method set before still runs');
  // A malformed statistics file: a ModelFormatError, and the model loaded before stays.
  const broken = Buffer.from(stats);
  broken.writeUInt32LE(0xffffff, 0);
  await assert.rejects(
    e.loadModel({ kind: 'bytes', weights: ab(weights), config, sourceStats: ab(broken) }),
    (err: Error) => err.name === 'ModelFormatError' && /source statistics/.test(err.message),
  );
  assert.equal((await e.step(frame(1))).frame, 1);
  // Given as bytes: loaded, and sar-align runs.
  const withStats = await e.loadModel({ kind: 'bytes', weights: ab(weights), config, sourceStats: ab(stats) });
  assert.equal(withStats.sourceStats?.count, 1000);
  assert.match(withStats.sourceStats!.provenance, /Fashion-MNIST/);
  const m = await e.setMethod({ method: 'sar-align', lr: 1e-3, options: { alignWeight: 10, inputAlign: { quantile: 0.02 } } });
  assert.equal(m.method, 'sar-align');
  for (let i = 0; i < 5; i++) await e.step(frame(i));
  // Computed here from clean images: the same layout, and they enable sar-align on a model that had none.
  await e.loadModel({ kind: 'bytes', weights: ab(weights), config, sourceStats: false });
  const count = 20;
  const pixels = new Float32Array(count * 784);
  for (let i = 0; i < count; i++) pixels.set(image(9000 + i), i * 784);
  await assert.rejects(e.computeSourceStats({ pixels: pixels.subarray(0, 100), count }), /need 15680 values/);
  const bytes = await e.computeSourceStats({ pixels, count, labels: Array.from({ length: count }, (_, i) => data.labels[9000 + i]!) });
  assert.ok(bytes.byteLength > 1000 && bytes.byteLength < 16384, `${bytes.byteLength} bytes`);
  await e.setMethod({ method: 'sar-align', lr: 0.05 });
  for (let i = 0; i < 20; i++) await e.step(frame(i));
  // Statistics computed after adapting still describe the source model, not the adapted one.
  const again = await e.computeSourceStats({ pixels, count, labels: Array.from({ length: count }, (_, i) => data.labels[9000 + i]!) });
  assert.deepEqual(again, bytes);
  e.dispose();
});

// The autodiff families, through the engine as the page and the worker use it.
for (const f of [
  { label: 'a GroupNorm ResNet', family: 'resnet-gn', fixture: 'resnet-gn/basic-gray28' },
  { label: 'a ConvNeXt', family: 'convnext', fixture: 'convnext/gray28-patch2' },
]) {
  test(`engine: ${f.label} loads, adapts with SAR (autodiff) and runs the side-by-side reference; its own source statistics run sar-align, a bad file is refused clearly`, async () => {
    const dir = join(import.meta.dirname, '..', '..', 'e2e', 'fixtures', ...f.fixture.split('/'));
    const weights = readFileSync(join(dir, 'model.safetensors'));
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const e = new Engine();
    try {
      await e.init({ backend: 'wasm' });
      const bytes = () => weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
      const info = await e.loadModel({ kind: 'bytes', weights: bytes(), config });
      assert.deepEqual([info.family, info.imageSize, info.inChannels, info.numClasses, info.patchSize, info.sourceStats], [f.family, 28, 1, 10, 0, null]);
      await e.setMethod({ method: 'sar', lr: 1e-2, options: { marginFraction: 100, resetThreshold: 0 } });
      e.setReference(true);
      const results = [];
      for (let i = 0; i < 8; i++) results.push(await e.step(frame(i)));
      const late = await e.flush();
      assert.ok(
        [...results.flatMap((r) => r.updates), ...late].some((u) => u.updated),
        'no update in 8 frames',
      );
      // Before the first update the adapted model is the source: its prediction is the reference's.
      assert.equal(results[0]!.predicted, results[0]!.reference!.input.predicted);
      assert.ok(Math.abs(results[0]!.confidence - results[0]!.reference!.input.confidence) < 1e-5);
      await assert.rejects(
        e.setMethod({ method: 'sar-align' }),
        (err: unknown) => err instanceof Error && err.name === 'ModelFormatError' && /source statistics/.test(err.message),
      );
      await assert.rejects(
        e.loadModel({ kind: 'bytes', weights: bytes(), config, sourceStats: new ArrayBuffer(8) }),
        (err: unknown) => err instanceof Error && err.name === 'ModelFormatError',
      );
      // The running model and method are still there after the refusals.
      assert.equal((await e.step(frame(9))).step, 8);
      // Statistics made from the model's own blocks let it run sar-align, and load with it.
      const pixels = new Float32Array(20 * 784);
      for (let i = 0; i < pixels.length; i++) pixels[i] = ((i * 7919) % 997) / 997;
      const stats = await e.computeSourceStats({ pixels, count: 20 });
      const sar = await e.setMethod({ method: 'sar-align' });
      assert.equal(sar.method, 'sar-align');
      for (let i = 0; i < 6; i++) assert.ok(Number.isFinite((await e.step(frame(20 + i))).confidence));
      const again = await e.loadModel({
        kind: 'bytes',
        weights: bytes(),
        config,
        sourceStats: stats.buffer.slice(stats.byteOffset, stats.byteOffset + stats.byteLength) as ArrayBuffer,
      });
      assert.deepEqual(again.sourceStats, { count: 20, provenance: '20 images given to computeSourceStats' });
    } finally {
      e.dispose();
    }
  });
}
