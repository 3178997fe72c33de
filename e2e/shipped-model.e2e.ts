// The shipped Fashion-MNIST model classifies the shipped test split in the
// page as it does in Node (wasm backend): the first 1,000 clean images on
// WebGL and the first 100 on WebGPU (SwiftShader's software WebGPU takes
// ~0.3 s an image here), accuracies within 0.3 points of Node's on the same
// images.
//
// Reads public/models/fmnist-vit/ and public/data/fashion-mnist/ (the files
// the page is served), or the same layout under $WILDTTA_PUBLIC_DIR.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { initBackend } from '../src/runtime/backend';
import { loadModelFolder } from '../tools/lib/node-env';
import { grayAccuracy, type AccuracyResult } from '../src/model/evaluate';
import { loadFashionMnist } from '../tools/fmnist-node';
import { REPO_ROOT, assertNoPageErrors, withPage } from './support/browser';

const PUBLIC_DIR = process.env.WILDTTA_PUBLIC_DIR ?? join(REPO_ROOT, 'public');
const MODEL_DIR = join(PUBLIC_DIR, 'models', 'fmnist-vit');
const DATA_DIR = join(PUBLIC_DIR, 'data', 'fashion-mnist');
/** Allowed |page − Node| accuracy difference, in percentage points. */
const TOL_POINTS = 0.3;
/** Images per forward pass, in the page and in Node. */
const BATCH = 100;

let nodeRun: Promise<AccuracyResult> | undefined;
/** Node's figure on the first 1,000 images (wasm backend, same files, same batches). */
function nodeAccuracy(): Promise<AccuracyResult> {
  nodeRun ??= (async () => {
    await initBackend('wasm');
    const model = loadModelFolder(MODEL_DIR);
    try {
      const data = loadFashionMnist('t10k', DATA_DIR);
      return await grayAccuracy(model, data.images, data.labels, { count: 1000, batch: BATCH });
    } finally {
      model.dispose();
    }
  })();
  return nodeRun;
}

for (const [backend, n] of [
  ['webgl', 1000],
  ['webgpu', 100],
] as const) {
  test(`shipped model: accuracy on the first ${n} clean test images, ${backend} page vs Node`, async (t) => {
    const all = await nodeAccuracy();
    const nodePred = all.predictions.subarray(0, n);
    const labels = loadFashionMnist('t10k', DATA_DIR).labels;
    let nodeCorrect = 0;
    for (let i = 0; i < n; i++) if (nodePred[i] === labels[i]) nodeCorrect++;
    const nodeAcc = nodeCorrect / n;
    const page = await withPage((h) => h.call('cleanAccuracy', n, backend, { batch: BATCH }));
    t.diagnostic(`Node (wasm) ${(nodeAcc * 100).toFixed(2)}%, page (${page.backend}) ${(page.accuracy * 100).toFixed(2)}% in ${page.ms.toFixed(0)} ms`);
    assert.equal(page.backend, backend);
    assert.equal(page.total, n);
    assert.equal(page.numTensorsAfter, page.numTensorsBefore, 'the page leaked tensors');
    let disagree = 0;
    for (let i = 0; i < n; i++) if (page.predictions[i] !== nodePred[i]) disagree++;
    t.diagnostic(`${disagree} of ${n} predictions differ`);
    const diffPoints = Math.abs(page.accuracy - nodeAcc) * 100;
    assert.ok(
      diffPoints <= TOL_POINTS,
      `page ${(page.accuracy * 100).toFixed(2)}% vs Node ${(nodeAcc * 100).toFixed(2)}%: ${diffPoints.toFixed(2)} points apart`,
    );
  });
}

test('no console errors or uncaught exceptions in the page', () => assertNoPageErrors());
