// The shipped Fashion-MNIST model classifies the shipped test split in the
// page (WebGPU) as it does in Node (wasm backend): same first 1,000 clean
// images, accuracies within 0.3 points.
//
// Reads public/models/fmnist-vit/ and public/data/fashion-mnist/ (the files
// the page is served), or the same layout under $WILDTTA_PUBLIC_DIR. Skipped,
// saying why, while the model is not there yet (it is trained by npm run train).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { initBackend } from '../src/runtime/backend';
import { vitFromSafetensors } from '../src/model/load';
import { grayAccuracy } from '../src/model/evaluate';
import { loadFashionMnist } from '../tools/fmnist-node';
import { REPO_ROOT, assertNoPageErrors, withPage } from './support/browser';

const PUBLIC_DIR = process.env.WILDTTA_PUBLIC_DIR ? resolve(process.env.WILDTTA_PUBLIC_DIR) : join(REPO_ROOT, 'public');
const MODEL_DIR = join(PUBLIC_DIR, 'models', 'fmnist-vit');
const DATA_DIR = join(PUBLIC_DIR, 'data', 'fashion-mnist');
const N = 1000;
/** Allowed |page − Node| accuracy difference, in percentage points. */
const TOL_POINTS = 0.3;
/** Images per forward pass, in the page and in Node. */
const BATCH = 100;

const missing = [
  join(MODEL_DIR, 'model.safetensors'),
  join(DATA_DIR, 't10k-images-idx3-ubyte'),
  join(DATA_DIR, 't10k-labels-idx1-ubyte'),
].filter((p) => !existsSync(p));
const skip = missing.length > 0 ? `not there yet: ${missing.map((p) => relative(REPO_ROOT, p)).join(', ')}` : false;

test(`shipped model: accuracy on the first ${N} clean test images, webgpu page vs Node`, { skip }, async (t) => {
  // The Node figure: same files, wasm backend, same batches.
  const node = await (async () => {
    const report = await initBackend('wasm');
    assert.equal(report.backend, 'wasm');
    const configPath = join(MODEL_DIR, 'config.json');
    const config: unknown = existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : undefined;
    const model = vitFromSafetensors(new Uint8Array(readFileSync(join(MODEL_DIR, 'model.safetensors'))), config);
    try {
      const data = loadFashionMnist('t10k', DATA_DIR);
      assert.ok(data.count >= N, `the test split has ${data.count} images`);
      const t0 = Date.now();
      const r = await grayAccuracy(model, data.images, data.labels, { count: N, batch: BATCH, height: data.height, width: data.width });
      return { ...r, ms: Date.now() - t0 };
    } finally {
      model.dispose();
    }
  })();
  t.diagnostic(`Node (wasm): ${(node.accuracy * 100).toFixed(2)}% in ${node.ms} ms`);

  const page = await withPage((h) => h.call('cleanAccuracy', N, 'webgpu', { batch: BATCH }));
  t.diagnostic(`page (${page.backend}): ${(page.accuracy * 100).toFixed(2)}% in ${page.ms.toFixed(0)} ms`);
  assert.equal(page.backend, 'webgpu');
  assert.equal(page.total, N);
  assert.equal(page.numTensorsAfter, page.numTensorsBefore, 'the page leaked tensors');

  let disagree = 0;
  for (let i = 0; i < N; i++) if (page.predictions[i] !== node.predictions[i]) disagree++;
  t.diagnostic(`${disagree} of ${N} predictions differ`);
  const diffPoints = Math.abs(page.accuracy - node.accuracy) * 100;
  assert.ok(
    diffPoints <= TOL_POINTS,
    `page accuracy ${(page.accuracy * 100).toFixed(2)}% vs Node ${(node.accuracy * 100).toFixed(2)}%: ${diffPoints.toFixed(2)} points apart (> ${TOL_POINTS})`,
  );
});

test('no console errors or uncaught exceptions in the page', () => assertNoPageErrors());
