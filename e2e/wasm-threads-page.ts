// In-page half of e2e/wasm-threads.e2e.ts, imported into the harness page with
// import('/e2e/wasm-threads-page.ts') (Vite resolves its imports to the same
// tfjs the harness uses).
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendReport } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';

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
  return {
    isolated: globalThis.crossOriginIsolated === true,
    hardwareConcurrencyBefore,
    hardwareConcurrencyAfter,
    ownHardwareConcurrency: Object.prototype.hasOwnProperty.call(navigator, 'hardwareConcurrency'),
    report,
    binaries,
    matMulError,
  };
}
