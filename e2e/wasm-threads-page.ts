// In-page half of e2e/wasm-threads.e2e.ts, imported into the harness page with
// import('/e2e/wasm-threads-page.ts') (Vite resolves its imports to the same
// tfjs the harness uses).
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendReport } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import '../src/kernels';
import { groupNorm, groupNormGrad } from '../src/kernels';
import { runKernel } from '../src/kernels/calls';
import { hostOf, product, useSimdKernels } from '../src/kernels/host/glue';
import { packColumns, packedBackward, packedForward } from '../src/kernels/host/packed';
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
  /** Threads gemm.wat's products use right after the backend started (glue's Host.gemmThreads). */
  gemmThreads: number;
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
    gemmThreads: hostOf(tf.backend(), tf.getBackend()).gemmThreads(),
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

export interface ThreadedGemmProbe {
  /** hostOf(...).gemmThreads() right after the backend started, and once it reached 2 (or 10 s passed). */
  threadsAtStart: number;
  threadsLater: number;
  msToStart: number;
  /** Largest |difference| from XNNPACK's product, and the columns our worker computed, per case. */
  cases: { name: string; error: number; workerColumns: number }[];
  /** The errors thrown by products with pointers outside the memory: every thread's, then only the worker's. */
  trapped: string[];
  /** Largest |difference| from XNNPACK's product of the next product on the pool. */
  errorAfterTraps: number;
  /** An MLP block of ViT-S/16's size, forward and backward, through packed weights against the unpacked path. */
  mlpError: number;
  /** GroupNorm forward and backward at ResNet-50's first stage (norm.wat, shared with the worker) against the JavaScript loops, relative; and the channels the worker did (in one of up to 5 tries). */
  groupNormError: number;
  groupNormWorkerChannels: number;
  tensorsBefore: number;
  tensorsAfter: number;
}

/** In a page whose backend probeWasmThreads(2) started: gemm.wat on two threads, against XNNPACK's products. */
export async function probeThreadedGemm(): Promise<ThreadedGemmProbe> {
  const host = hostOf(tf.backend(), tf.getBackend());
  const threadsAtStart = host.gemmThreads();
  const t0 = performance.now();
  while (host.gemmThreads() < 2 && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
  const threadsLater = host.gemmThreads();
  const msToStart = performance.now() - t0;
  const tensorsBefore = tf.memory().numTensors;
  const rnd = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, 'float32', seed);
  const pool = host.gemmPool;
  /** Largest |difference| of gemm.wat's [R, K]·[K, N] (+ bias) on packed weights from XNNPACK's. */
  const productError = (R: number, K: number, N: number, bias: boolean) =>
    tf.tidy(() => {
      const a = rnd([R, K], 1);
      const w = rnd([K, N], 2) as tf.Tensor2D;
      const b = bias ? rnd([N], 3) : undefined;
      const got = tf.engine().makeTensorFromTensorInfo(product(host, a, w, packColumns(w), b));
      const want = b ? tf.add(tf.matMul(a, w), b) : tf.matMul(a, w);
      return tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]!;
    });
  const cases: ThreadedGemmProbe['cases'] = [];
  // ViT-S/16's qkv product (197 rows: 32 tiles of 6 and 5 rows past them), one of 145 panels, which no count of
  // chunks divides evenly, and a product small enough to stay on the caller's thread.
  for (const [name, R, K, N, bias] of [
    ['197×384·384×1152 + bias', 197, 384, 1152, true],
    ['197×384·384×1160', 197, 384, 1160, false],
    ['13×16·16×24 (stays on one thread)', 13, 16, 24, true],
  ] as const) {
    // Who claims which chunk is a race: on a loaded machine one thread may take them all. Up to 5 tries for a
    // product the two shared (the largest error over every try); the small one stays on the caller every time.
    let error = 0;
    let workerColumns = 0;
    for (let attempt = 0; attempt < 5; attempt++) {
      const columnsBefore = pool?.workerColumns ?? 0;
      error = Math.max(error, productError(R, K, N, bias));
      workerColumns = (pool?.workerColumns ?? 0) - columnsBefore;
      if (workerColumns > 0 && workerColumns < N) break;
    }
    cases.push({ name, error, workerColumns });
  }
  // Hostile pointers. Every chunk outside the memory: the caller's own trap is what is thrown. Then only the later
  // chunks: B placed so that its first 72 panels are the memory's last bytes (read, never written) and the rest
  // lie past its end.
  const trapped: string[] = [];
  try {
    pool!.run(0x7ffffff0, 0x7ffffff0, 0, 0x7ffffff0, 197, 1152, 384);
  } catch (e) {
    trapped.push((e as Error).message);
  }
  tf.tidy(() => {
    const a = rnd([1, 1024], 11);
    const c = tf.zeros([1, 1152]);
    const end = tfjsWasmMemory(tf.backend())!.buffer.byteLength;
    try {
      pool!.run(host.offset(a), end - 72 * 1024 * 32, 0, host.offset(c), 1, 1152, 1024);
    } catch (e) {
      trapped.push((e as Error).message);
    }
  });
  // And the pool still computes right after both.
  const after = productError(197, 384, 1152, false);
  const linear = (w: tf.Tensor2D, b: tf.Tensor1D) => ({ w, b, derived: new Map<string, tf.Tensor>() });
  const fc1 = linear(rnd([1536, 384], 4) as tf.Tensor2D, rnd([1536], 5) as tf.Tensor1D);
  const fc2 = linear(rnd([384, 1536], 6) as tf.Tensor2D, rnd([384], 7) as tf.Tensor1D);
  const mlpError = tf.tidy(() => {
    const x = rnd([197, 384], 8);
    const n = rnd([197, 384], 9);
    const dy = rnd([197, 384], 10);
    const weights = { w1: tf.expandDims(tf.transpose(fc1.w), 0), b1: fc1.b, w2: tf.expandDims(tf.transpose(fc2.w), 0), b2: fc2.b };
    const packed = { p1: packedForward(fc1)!, p2: packedForward(fc2)! };
    const backward = { p2: packedBackward(fc2)!, p1: packedBackward(fc1)! };
    const [plain, a, cdf] = runKernel('WildttaMlp', { x, n, ...weights }, { save: true });
    const [viaGemm] = runKernel('WildttaMlp', { x, n, ...weights, ...packed }, { save: false });
    const [gradPlain] = runKernel('WildttaMlpGrad', { dy, w2: fc2.w, a: a!, cdf: cdf!, w1: fc1.w });
    const [gradGemm] = runKernel('WildttaMlpGrad', { dy, w2: fc2.w, a: a!, cdf: cdf!, w1: fc1.w, ...backward });
    const scale = (t: tf.Tensor) => tf.max(tf.abs(t)).dataSync()[0]!;
    const rel = (u: tf.Tensor, v: tf.Tensor) => tf.max(tf.abs(tf.sub(u, v))).dataSync()[0]! / Math.max(1, scale(v));
    return Math.max(rel(viaGemm!, plain!), rel(gradGemm!, gradPlain!));
  });
  tf.dispose([fc1.w, fc1.b, fc2.w, fc2.b, ...fc1.derived.values(), ...fc2.derived.values()]);
  const groupNormOutputs = () =>
    tf.tidy(() => {
      const x = tf.add(tf.mul(rnd([1, 56, 56, 64], 12), 2), 0.5) as tf.Tensor4D;
      const dy = rnd([1, 56, 56, 64], 13) as tf.Tensor4D;
      const scale = tf.add(rnd([64], 14), 1);
      const f = groupNorm(x, scale, rnd([64], 15), { groups: 32, eps: 1e-5, epsTensor: tf.scalar(1e-5), relu: true });
      const g = groupNormGrad(dy, f.xhat, f.inv, scale, f.y, { groups: 32, inputGrad: true });
      return [f.y, f.inv, g.dx!, g.dScale, g.dShift].map((t) => t.dataSync());
    });
  let groupNormError = 0;
  let groupNormWorkerChannels = 0;
  for (let attempt = 0; attempt < 5 && groupNormWorkerChannels === 0; attempt++) {
    const before = pool?.workerChannels ?? 0;
    const shared = groupNormOutputs();
    groupNormWorkerChannels = (pool?.workerChannels ?? 0) - before;
    useSimdKernels(false);
    const loops = groupNormOutputs();
    useSimdKernels(true);
    shared.forEach((v, i) =>
      v.forEach((u, j) => (groupNormError = Math.max(groupNormError, Math.abs(u - loops[i]![j]!) / Math.max(1, Math.abs(loops[i]![j]!))))),
    );
  }
  return {
    threadsAtStart,
    threadsLater,
    msToStart,
    cases,
    trapped,
    errorAfterTraps: after,
    mlpError,
    groupNormError,
    groupNormWorkerChannels,
    tensorsBefore,
    tensorsAfter: tf.memory().numTensors,
  };
}
