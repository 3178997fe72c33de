// Issue 25, item 3: tfjs's backend is one per JavaScript realm, so two
// page-thread instances on different backends would share one silently (the
// first would still report its own while running on the second's). The
// second is refused at create() instead; the same backend, 'auto', and a
// backend freed by dispose() are fine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { WildTTA } from './wildtta';
import { BackendError, BackendInUseError } from './errors';
import { writeSafetensors } from '../model/safetensors';
import { randomViTTensors, tinyConfig } from '../model/random-vit';

const cfg = tinyConfig();
const model = () =>
  writeSafetensors(
    [...randomViTTensors(cfg, 7)].map(([k, t]) => [k, { shape: [...t.shape], values: t.values }]),
    { 'wildtta.config': JSON.stringify(cfg) },
  );
// Node reads tfjs-wasm's binary from its package; started once here, before the API sets a (browser) path.
await tf.setBackend('wasm');
await tf.setBackend('cpu');
const page = { assetsUrl: 'http://localhost/wildtta/', worker: false } as const;
const frame = () => tf.tidy(() => tf.randomUniform([cfg.imageSize, cfg.imageSize, 1], 0, 1, 'float32', 3));

async function classifies(tta: WildTTA): Promise<string> {
  const x = frame();
  try {
    return (await tta.classify(x)).backend;
  } finally {
    x.dispose();
  }
}

test('a page-thread instance on another backend than a live one is refused, naming both; the first keeps its backend', async () => {
  const first = await WildTTA.create({ ...page, backend: 'cpu', model: model() });
  try {
    await assert.rejects(WildTTA.create({ ...page, backend: 'wasm', model: model() }), (e: unknown) => {
      assert.ok(e instanceof BackendInUseError && e instanceof BackendError, String(e));
      assert.match(e.message, /wasm/);
      assert.match(e.message, /cpu/);
      assert.match(e.message, /worker: true/);
      return true;
    });
    assert.equal(tf.getBackend(), 'cpu', "the refused instance switched the first one's backend");
    assert.equal(await classifies(first), 'cpu');
  } finally {
    await first.dispose();
  }
});

test("same backend: both work; 'auto' takes the one running; after dispose another backend is allowed", async () => {
  const a = await WildTTA.create({ ...page, backend: 'cpu', model: model() });
  const b = await WildTTA.create({ ...page, backend: 'cpu', model: model() });
  const c = await WildTTA.create({ ...page, backend: 'auto', model: model() });
  try {
    assert.equal(c.backend, 'cpu');
    assert.match(c.backendReport.why, /already runs cpu/);
    for (const t of [a, b, c]) assert.equal(await classifies(t), 'cpu');
  } finally {
    await a.dispose();
    await b.dispose();
  }
  // c still holds cpu.
  await assert.rejects(WildTTA.create({ ...page, backend: 'wasm', model: model() }), BackendInUseError);
  await c.dispose();
  const w = await WildTTA.create({ ...page, backend: 'wasm', model: model() });
  try {
    assert.equal(await classifies(w), 'wasm');
  } finally {
    await w.dispose();
    await tf.setBackend('cpu');
  }
});

test('a create() that fails releases its claim', async () => {
  await assert.rejects(WildTTA.create({ ...page, backend: 'wasm', model: new Uint8Array([1, 2, 3]) }));
  const a = await WildTTA.create({ ...page, backend: 'cpu', model: model() });
  await a.dispose();
});
