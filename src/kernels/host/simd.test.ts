// The SIMD module: its shipped bytes are what simd-kernels.wat assembles to,
// it stays small enough to compile synchronously in a page, and it loads on
// tfjs-wasm's memory (so the wasm runs of kernels.test.ts exercise it)
// and, as its shared-memory variant, on a shared one.
//
//   node --import tsx --test src/kernels/host/simd.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { assembleSimdKernels } from '../../../tools/build-simd';
import { SIMD_KERNELS_WASM, SIMD_KERNELS_WASM_SHARED } from './simd-kernels.wasm';
import { SYNC_COMPILE_LIMIT, simdKernelsFor, tfjsWasmMemory } from './simd';

test('simd-kernels.wasm.ts is what simd-kernels.wat assembles to (npm run build:simd)', async () => {
  assert.equal(readFileSync(join(import.meta.dirname, 'simd-kernels.wasm.ts'), 'utf8'), await assembleSimdKernels());
});

test('both variants of the module are under the size a page may compile synchronously', () => {
  for (const base64 of [SIMD_KERNELS_WASM, SIMD_KERNELS_WASM_SHARED]) {
    const bytes = atob(base64).length;
    assert.ok(bytes > 0 && bytes < SYNC_COMPILE_LIMIT, `${bytes} bytes`);
  }
});

test("the kernels instantiate on tfjs-wasm's memory, once per memory, and on a shared one (the threaded build's)", async () => {
  await tf.setBackend('wasm');
  const memory = tfjsWasmMemory(tf.backend());
  const kernels = simdKernelsFor(memory);
  assert.ok(kernels, 'no SIMD kernels on the wasm backend');
  assert.equal(typeof kernels.layer_norm, 'function');
  assert.equal(simdKernelsFor(memory), kernels);
  assert.equal(simdKernelsFor(undefined), null);
  // On a shared memory: a block copy and a transpose, read back.
  const shared = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  const onShared = simdKernelsFor(shared);
  assert.ok(onShared, 'no SIMD kernels on a shared memory');
  const heap = new Float32Array(shared.buffer);
  heap.set([1, 2, 3, 4, 5, 6], 0); // [2, 3] at byte 0
  onShared.copy_block(0, 3, 64, 3, 2, 3);
  onShared.transpose_block(0, 3, 128, 2, 3);
  assert.deepEqual([...heap.subarray(16, 22)], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...heap.subarray(32, 38)], [1, 4, 2, 5, 3, 6]);
  await tf.setBackend('cpu');
});
