// The public API in Node, on the page's thread and through a stand-in worker
// (test-worker.ts). Issue 25, item 6: a caller's bytes and callbacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import '@tensorflow/tfjs';
import { WildTTA } from './wildtta';
import { writeSafetensors } from '../model/safetensors';
import { randomViTTensors, tinyConfig } from '../model/random-vit';
import { installFakeWorker, type FakeWorkerMode } from './test-worker';
import { WorkerError } from './errors';

const cfg = tinyConfig();
const modelBytes = () =>
  writeSafetensors(
    [...randomViTTensors(cfg, 7)].map(([k, t]) => [k, { shape: [...t.shape], values: t.values }]),
    { 'wildtta.config': JSON.stringify(cfg) },
  );
const base = { backend: 'cpu', assetsUrl: 'http://localhost/wildtta/' } as const;
let mode: FakeWorkerMode = 'engine';
const fake = installFakeWorker(() => mode);
test.after(() => fake.restore());

test('a throwing onProgress does not stop create()', async () => {
  const uncaught: unknown[] = [];
  const g = globalThis as { reportError?: (e: unknown) => void };
  const previous = g.reportError;
  g.reportError = (e) => uncaught.push(e);
  try {
    for (const worker of [false, true]) {
      const tta = await WildTTA.create({
        ...base,
        worker,
        model: modelBytes(),
        onProgress: () => {
          throw new Error('a bug in the page');
        },
      });
      await tta.dispose();
    }
    assert.ok(uncaught.length >= 2, 'the callback error is still reported');
  } finally {
    g.reportError = previous;
  }
});

test("worker: true leaves the caller's Uint8Array model as it was", async () => {
  const bytes = modelBytes();
  const copy = bytes.slice();
  const tta = await WildTTA.create({ ...base, worker: true, model: bytes });
  try {
    assert.equal(bytes.byteLength, copy.byteLength, 'the array was emptied (its buffer transferred)');
    assert.deepEqual(bytes, copy);
  } finally {
    await tta.dispose();
  }
});

test('a worker that never answers, or does not load, rejects create() naming its URL', async () => {
  try {
    mode = 'silent';
    const t0 = Date.now();
    await assert.rejects(
      WildTTA.create({ ...base, worker: true, workerTimeoutMs: 100, model: modelBytes() }),
      (e: unknown) =>
        e instanceof WorkerError &&
        e.url === 'http://localhost/wildtta/wildtta.worker.js' &&
        /wildtta\.worker\.js did not answer within 100 ms/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 5000);
    mode = 'missing';
    await assert.rejects(
      WildTTA.create({ ...base, worker: true, model: modelBytes() }),
      (e: unknown) => e instanceof WorkerError && /http:\/\/localhost\/wildtta\/wildtta\.worker\.js did not start/.test(e.message),
    );
  } finally {
    mode = 'engine';
  }
});

test("classify's own invert option is checked too", async () => {
  const tta = await WildTTA.create({ ...base, model: modelBytes() });
  try {
    const frame = { shape: [28, 28, 1], data: async () => new Float32Array(784).fill(0.5) };
    await assert.rejects(tta.classify(frame, { invert: 'no' as never }), /classify: option invert must be true, false or 'auto', got "no"/);
    assert.equal((await tta.classify(frame, { invert: 'auto' })).step, 0);
  } finally {
    await tta.dispose();
  }
});

test('create() options are checked at the door: unknown keys with the nearest name, types and ranges', async () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ workr: true }, /unknown option 'workr'; did you mean 'worker'\?/],
    [{ method: 'sarr' }, /unknown method "sarr"; did you mean 'sar'\?/],
    [{ invert: 'no' }, /option invert must be true, false or 'auto', got "no"/],
    [{ worker: 'yes' }, /option worker must be true or false/],
    [{ snapshotEvery: 0 }, /snapshotEvery must be a whole number ≥ 1, got 0/],
    [{ snapshotEvery: 2.5 }, /snapshotEvery must be a whole number ≥ 1, got 2.5/],
    [{ lr: NaN }, /option lr must be a finite number ≥ 0, got NaN/],
    [{ cropFraction: Infinity }, /cropFraction must be a number > 0 and ≤ 1, got Infinity/],
    [{ backend: 'gpu' }, /option backend must be one of/],
    [{ methodOptions: { margin: 0.4 } }, /sar: unknown option 'margin'; did you mean 'marginFraction'\?/],
    [{ methodOptions: { rho: -1 } }, /sar: option rho must be a finite number ≥ 0, got -1/],
  ];
  for (const [o, message] of bad) await assert.rejects(WildTTA.create({ ...base, model: modelBytes(), ...o } as never), message, JSON.stringify(o));
});
