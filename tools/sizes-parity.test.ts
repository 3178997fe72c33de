// The real-size benchmark's three engines compute one function (bench/sizes.ts):
// for the tiny ViT, GroupNorm ResNet and ConvNeXt that make-model writes, the
// PyTorch definition (tools/sizes_torch.py), its ONNX export run by ONNX
// Runtime Web's wasm build, and wildtta's loader on the wasm backend give the
// same logits on the parity image. A loader or exporter that read one tensor
// differently (a transposed weight, a wrong eps, heads or stride) fails here,
// before any benchmark figure compares engines that do not run the same network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-web';
import { loadModelFolder, nodeSetup } from './lib/node-env';
import { maxAbsDiff, prepareModel, torchAvailable } from './lib/sizes-models';
import { parityImage, toNchw } from './lib/parity-image';

// float32 everywhere, logits of a few units: a real mismatch moves them by ≥ 0.01.
const TOLERANCE = 2e-3;
const noTorch = torchAvailable();

for (const key of ['tiny', 'rn-tiny', 'cn-tiny']) {
  test(`${key}: PyTorch, ONNX Runtime Web and wildtta agree on the logits`, { skip: noTorch, timeout: 60_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), 'wildtta-sizes-'));
    try {
      await nodeSetup('wasm');
      const m = await prepareModel(key, root);
      const { imageSize: S, inChannels: C } = m.spec;
      const image = parityImage(S, C);

      const model = loadModelFolder(m.dir);
      const logits = tf.tidy(() => model.logits(tf.tensor4d(image, [1, S, S, C])));
      const ours = Array.from(await logits.data());
      logits.dispose();
      model.dispose();

      ort.env.wasm.numThreads = 1;
      const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(m.onnx)));
      const out = await session.run({ pixels: new ort.Tensor('float32', toNchw(image, S, C), [1, C, S, S]) });
      const onnx = Array.from(out.logits!.data as Float32Array);
      await session.release();

      assert.equal(ours.length, m.spec.numClasses);
      // Not a constant output: a model that ignored its input would agree with itself trivially.
      assert.ok(Math.max(...ours) - Math.min(...ours) > 0.1, `logits barely spread: ${ours.join(', ')}`);
      const d = { oursTorch: maxAbsDiff(ours, m.torchCheck), ortTorch: maxAbsDiff(onnx, m.torchCheck), oursOrt: maxAbsDiff(ours, onnx) };
      for (const [pair, v] of Object.entries(d)) assert.ok(v < TOLERANCE, `${key}: ${pair} max |Δ| ${v} ≥ ${TOLERANCE}`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}
