// The public API in Node, on the page's thread and through a stand-in worker
// (test-worker.ts). Issue 25, item 6: a caller's bytes and callbacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import '@tensorflow/tfjs';
import { WildTTA } from './wildtta';
import { writeSafetensors } from '../model/safetensors';
import { randomViTTensors, tinyConfig } from '../model/random-vit';
import { installFakeWorker, type FakeWorkerMode } from './test-worker';

const cfg = tinyConfig();
const modelBytes = () =>
  writeSafetensors(
    [...randomViTTensors(cfg, 7)].map(([k, t]) => [k, { shape: [...t.shape], values: t.values }]),
    { 'wildtta.config': JSON.stringify(cfg) },
  );
const base = { backend: 'cpu', assetsUrl: 'http://localhost/wildtta/' } as const;
const mode: FakeWorkerMode = 'engine';
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
