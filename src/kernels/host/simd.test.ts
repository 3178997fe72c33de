// The SIMD module: its shipped bytes are what simd-kernels.wat assembles to,
// it stays small enough to compile synchronously in a page, and it loads on
// tfjs-wasm's memory (so the wasm runs of kernels.test.ts exercise it)
// and, as its shared-memory variant, on a shared one.
//
//   node --import tsx --test src/kernels/host/simd.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { assembleSimdKernels } from '../../../tools/build-simd';
import {
  GEMM_RELAXED_WASM,
  GEMM_RELAXED_WASM_SHARED,
  GEMM_WASM,
  GEMM_WASM_SHARED,
  NORM_WASM,
  NORM_WASM_SHARED,
  SIMD_KERNELS_WASM,
  SIMD_KERNELS_WASM_SHARED,
} from './simd-kernels.wasm';
import { SYNC_COMPILE_LIMIT, simdKernelsFor, tfjsWasmMemory } from './simd';

test('simd-kernels.wasm.ts is what simd-kernels.wat assembles to (npm run build:simd)', async () => {
  assert.equal(readFileSync(join(import.meta.dirname, 'simd-kernels.wasm.ts'), 'utf8'), await assembleSimdKernels());
});

test('both variants of the module, all four of gemm.wat and both of norm.wat are under the size a page may compile synchronously', () => {
  for (const base64 of [
    SIMD_KERNELS_WASM,
    SIMD_KERNELS_WASM_SHARED,
    GEMM_WASM,
    GEMM_RELAXED_WASM,
    GEMM_WASM_SHARED,
    GEMM_RELAXED_WASM_SHARED,
    NORM_WASM,
    NORM_WASM_SHARED,
  ]) {
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

test('gemm.wat and its relaxed multiply-add variant agree with a float64 product, whole or column range by column range, on either kind of memory (the relaxed one in a Node that has relaxed SIMD)', () => {
  // This Node runs the relaxed variant only behind a flag: a child process with it checks both, printing the largest errors.
  // Ranges: the threads of gemm-pool.ts each compute C's columns [j0, j1) into the same C; a range that wrote
  // outside its columns would overwrite a sentinel, one that missed some would leave it.
  const script = `
    import { gemmFor, relaxedGemm } from './src/kernels/host/simd.ts';
    const errors = [];
    for (const shared of [false, true]) {
      const memory = new WebAssembly.Memory(shared ? { initial: 64, maximum: 64, shared: true } : { initial: 64 });
      const [M, K, N] = [13, 37, 40];
      const heap = new Float32Array(memory.buffer);
      const A = 64, B = A + 4 * M * K, bias = B + 4 * K * N, C = bias + 4 * N;
      let seed = 7;
      for (let i = A / 4; i < C / 4; i++) heap[i] = ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
      for (const plain of [true, false]) {
        for (const edges of [[0, N], [0, 16, 24, 40], [0, 8, 16, 24, 32, 40]]) {
          heap.fill(NaN, C / 4, C / 4 + M * N + 8);
          for (let p = 0; p + 1 < edges.length; p++) gemmFor(memory, plain)(A, B, bias, C, M, N, K, edges[p], edges[p + 1]);
          let worst = 0;
          for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
            let s = heap[bias / 4 + j];
            for (let k = 0; k < K; k++) s += heap[A / 4 + i * K + k] * heap[B / 4 + (j >> 3) * K * 8 + k * 8 + (j & 7)];
            const e = Math.abs(s - heap[C / 4 + i * N + j]);
            worst = e <= worst ? worst : Number.isNaN(e) ? Infinity : e;
          }
          for (let i = C / 4 + M * N; i < C / 4 + M * N + 8; i++) if (!Number.isNaN(heap[i])) worst = Infinity;
          errors.push(worst);
        }
      }
    }
    console.log(JSON.stringify({ relaxed: relaxedGemm(), errors }));`;
  const run = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: join(import.meta.dirname, '..', '..', '..'),
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  const { relaxed, errors } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { relaxed: boolean; errors: number[] };
  assert.ok(relaxed, 'the relaxed variant did not compile under --experimental-wasm-relaxed-simd');
  assert.equal(errors.length, 12);
  for (const e of errors) assert.ok(e < 1e-5, `off by ${e}`);
});
