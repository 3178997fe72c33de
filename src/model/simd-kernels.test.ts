// The SIMD module: its shipped bytes are what simd-kernels.wat assembles to,
// it stays small enough to compile synchronously in a page, and it loads on
// tfjs-wasm's memory (so the wasm runs of host-kernels.test.ts exercise it).
//
//   node --import tsx --test src/model/simd-kernels.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { assembleSimdKernels } from '../../tools/build-simd';
import { SIMD_KERNELS_WASM } from './simd-kernels.wasm';
import { SYNC_COMPILE_LIMIT, simdKernelsFor } from './simd-kernels';

test('simd-kernels.wasm.ts is what simd-kernels.wat assembles to (npm run build:simd)', async () => {
  assert.equal(readFileSync(join(import.meta.dirname, 'simd-kernels.wasm.ts'), 'utf8'), await assembleSimdKernels());
});

test('the module is under the size a page may compile synchronously', () => {
  const bytes = atob(SIMD_KERNELS_WASM).length;
  assert.ok(bytes > 0 && bytes < SYNC_COMPILE_LIMIT, `${bytes} bytes`);
});

test("the kernels instantiate on tfjs-wasm's memory, once per memory, and not on a shared one", async () => {
  await tf.setBackend('wasm');
  const memory = (tf.backend() as unknown as { wasm: { asm: { memory: WebAssembly.Memory } } }).wasm.asm.memory;
  const kernels = simdKernelsFor(memory);
  assert.ok(kernels, 'no SIMD kernels on the wasm backend');
  assert.equal(typeof kernels.layer_norm, 'function');
  assert.equal(simdKernelsFor(memory), kernels);
  assert.equal(simdKernelsFor(new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true })), null);
  assert.equal(simdKernelsFor(undefined), null);
  await tf.setBackend('cpu');
});
