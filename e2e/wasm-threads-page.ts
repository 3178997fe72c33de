// In-page half of e2e/wasm-threads.e2e.ts, imported into the harness page with
// import('/e2e/wasm-threads-page.ts') (Vite resolves its imports to the same
// tfjs the harness uses).
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendReport } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import '../src/kernels';
import { runKernel } from '../src/kernels/calls';
import { useSimdKernels } from '../src/kernels/host/glue';
import { simdKernelsFor, tfjsWasmMemory } from '../src/kernels/host/simd';

export interface ThreadsProbe {
  isolated: boolean;
  hardwareConcurrencyBefore: number;
  hardwareConcurrencyAfter: number;
  /** Whether navigator kept an own hardwareConcurrency property (it must not). */
  ownHardwareConcurrency: boolean;
  report: BackendReport;
  /** The .wasm binaries this page fetched (Vite's `?import` modules left out). */
  binaries: string[];
  /** Largest |error| of a 96×80 · 80×64 matMul against plain JS. */
  matMulError: number;
  /** Whether the SIMD host kernels loaded on this build's memory (shared in the threaded one). */
  simdKernels: boolean;
  /** Largest |difference| of a LayerNorm and GELU through those kernels against their JavaScript loops. */
  simdError: number;
}

/** initBackend('wasm', { wasmThreads }) and what came of it. */
export async function probeWasmThreads(wasmThreads: number): Promise<ThreadsProbe> {
  const hardwareConcurrencyBefore = navigator.hardwareConcurrency;
  const report = await initBackend('wasm', { wasmPaths: WASM_PATHS, wasmThreads });
  const hardwareConcurrencyAfter = navigator.hardwareConcurrency;
  const binaries = [
    ...new Set(
      performance
        .getEntriesByType('resource')
        .map((e) => new URL(e.name))
        .filter((u) => u.pathname.endsWith('.wasm') && !u.searchParams.has('import'))
        .map((u) => u.pathname.split('/').pop()!),
    ),
  ];
  const [m, k, n] = [96, 80, 64];
  const a = Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
  const b = Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.11));
  const product = tf.tidy(() => tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])));
  const got = await product.data();
  product.dispose();
  let matMulError = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += a[i * k + q]! * b[q * n + j]!;
      const e = Math.abs(s - got[i * n + j]!);
      if (!(e <= matMulError)) matMulError = Number.isNaN(e) ? Infinity : e;
    }
  }
  const simdKernels = simdKernelsFor(tfjsWasmMemory(tf.backend())) !== null;
  const hostKernels = () =>
    tf.tidy(() => {
      const x = tf.tensor2d(a.slice(0, 50 * 64), [50, 64]);
      const [y] = runKernel('WildttaLayerNorm', { x, gamma: tf.ones([64]), beta: tf.zeros([64]) }, { eps: 1e-6, save: false });
      const [g] = runKernel('WildttaGelu', { a: tf.mul(x, 3) });
      return tf.concat([tf.reshape(y!, [-1]), tf.reshape(g!, [-1])]).dataSync();
    });
  const withSimd = hostKernels();
  useSimdKernels(false);
  const withLoops = hostKernels();
  useSimdKernels(true);
  let simdError = 0;
  withSimd.forEach((v, i) => (simdError = Math.max(simdError, Math.abs(v - withLoops[i]!))));
  return {
    simdKernels,
    simdError,
    isolated: globalThis.crossOriginIsolated === true,
    hardwareConcurrencyBefore,
    hardwareConcurrencyAfter,
    ownHardwareConcurrency: Object.prototype.hasOwnProperty.call(navigator, 'hardwareConcurrency'),
    report,
    binaries,
    matMulError,
  };
}
