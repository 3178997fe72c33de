// How the host kernels (vit-kernels.ts, update-kernels.ts, composites.ts)
// run on tfjs's CPU-side backends, wasm and cpu: the backend's memory as
// typed arrays, its own kernels on raw tensor infos, and registration with
// tfjs so that each kernel is one engine call like tfjs's own.
import * as tf from '@tensorflow/tfjs-core';
import { GemmPool, type NormOp } from './gemm-pool';
import { gemmFor, gemmModule, isShared, normFor, normModule, simdKernelsFor, tfjsWasmMemory, type NormKernels, type SimdKernels } from './simd';
import type { GradientLayout } from '../types';

export type Shape = number[];
export type Attrs = Record<string, unknown>;

/** A kernel written as loops over the tensors' memory (float64 arithmetic, stored as float32). */
export interface HostKernel {
  /** Input names, in the order `compute` receives them; a name ending in '?' may be absent. */
  inputs: string[];
  /** Output shapes from the input shapes (absent inputs have shape []). */
  outputs(shapes: Shape[], attrs: Attrs): Shape[];
  compute(ins: Float32Array[], outs: Float32Array[], shapes: Shape[], attrs: Attrs): void;
  /**
   * The same arithmetic with WebAssembly SIMD (simd-kernels.wat) on
   * tfjs-wasm's memory, given the tensors' byte offsets there (0 for an
   * absent one); returns false where it does not apply, and `compute` runs.
   */
  simd?(k: SimdKernels, ins: number[], outs: number[], shapes: Shape[], attrs: Attrs, scratch: number[], host: Host): boolean;
  /** Shapes of the working buffers `simd` gets (byte offsets, in `scratch`), freed once it returns. */
  scratch?(shapes: Shape[], attrs: Attrs): Shape[];
}

/** The backend calls the glue needs; both are public methods of tfjs's wasm and cpu backends. */
interface WasmLike {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  // Not declared public by tfjs-wasm, but what typedArrayFromHeap itself reads.
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined };
  // The module's own count of XNNPACK's threads (what getThreadsCount() returns).
  wasm?: { tfjs?: { getThreadsCount?(): number } };
}

/**
 * How gemm.wat runs on this memory. A memory of its own: on one thread. The
 * threaded build's shared memory, with one thread: on it. With more: on a
 * GemmPool of as many threads as XNNPACK has, counted only once its workers
 * have started, since one thread alone would be slower than XNNPACK's many.
 */
function threadedGemm(
  memory: WebAssembly.Memory | undefined,
  g: ReturnType<typeof gemmFor>,
  xnnThreads: number,
  norm: NormKernels | null,
): { pool: GemmPool | null; threads: () => number } {
  if (!g || !memory || !isShared(memory) || xnnThreads <= 1) return { pool: null, threads: () => 1 };
  const module = gemmModule(true);
  const canSpawn = typeof Worker !== 'undefined' && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  if (!module || !canSpawn) return { pool: null, threads: () => 0 };
  const normCode = norm && normModule(true);
  const pool = new GemmPool(g, module, memory, xnnThreads - 1, norm && normCode ? { kernels: norm, module: normCode } : null);
  return { pool, threads: () => (pool.ready ? pool.threads : 0) };
}
interface CpuLike {
  data: { get(id: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

/** The backends these kernels serve. */
export const HOST_BACKENDS: readonly string[] = ['wasm', 'cpu'];

export const size = (s: Shape) => s.reduce((a, b) => a * b, 1);

// Shared stand-ins for absent optional inputs (WildttaConcatColumns has 48 of them).
const NO_SHAPE: Shape = [];
const NO_VALUES = new Float32Array(0);

let simdEnabled = true;

/** Whether the wasm backend may use the SIMD kernels where they exist (default yes; tests and the threaded build's check compare both). */
export function useSimdKernels(enabled: boolean): void {
  simdEnabled = enabled;
}

let gemmEnabled = true;

/** Whether gemm.wat may take the frozen weights' products where it runs (default yes; a benchmark compares both in one run). */
export function useGemm(enabled: boolean): void {
  gemmEnabled = enabled;
}

/** Whether the SIMD kernels may run on this host. */
export const simdOn = (host: Host): host is Host & { simd: SimdKernels } => simdEnabled && host.simd !== null;

/** The backend a host kernel runs on, with what the glue needs of it. */
export interface Host {
  backend: tf.KernelBackend;
  /** Present on wasm when the SIMD module loaded (simdOn also asks whether it is enabled). */
  simd: SimdKernels | null;
  make(shape: Shape): tf.TensorInfo;
  values(info: tf.TensorInfo): Float32Array;
  offset(info: tf.TensorInfo): number;
  /** The backend's own 2-D product a·b, as a tensor info (tfjs-wasm: XNNPACK). */
  matMul(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo;
  /** x·W + b for x [R, K], W as [1, K, out] (the host's kept layout of a Linear), b [out]: the backend's fused product. */
  linear(x: tf.TensorInfo, w: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo;
  /** Any of the backend's own kernels with one output, on tensor infos. */
  kernel(name: string, inputs: Record<string, tf.TensorInfo>, attrs?: Record<string, unknown>): tf.TensorInfo;
  /** gemm.wat's a·B (+ bias) for a [R, K] and B packed as [N/8, K, 8] (packColumns): on tfjs-wasm's SIMD builds, else null. */
  gemm: ((a: tf.TensorInfo, packed: tf.TensorInfo, bias?: tf.TensorInfo) => tf.TensorInfo) | null;
  /**
   * Threads gemm.wat runs on now: 1 on a single-threaded build; on the
   * threaded one, the caller's and our started workers (gemm-pool.ts), or
   * 0 while they cannot match XNNPACK's threads (not started, or not
   * possible here), when weights are not packed and XNNPACK serves.
   */
  gemmThreads(): number;
  /** The workers gemm.wat shares columns with on the threaded build, where there are any. */
  gemmPool: GemmPool | null;
  /**
   * norm.wat's `op` over the channels [0, C) of one image of P positions,
   * shared with gemmPool's workers where there are some: on tfjs-wasm's
   * SIMD builds, else null.
   */
  norm: ((op: NormOp, args: number[], P: number, C: number) => void) | null;
  /** tfjs-wasm's memory, where norm.wat's float64 sums are read (null off wasm). */
  memory: WebAssembly.Memory | null;
}

/**
 * a·B (+ bias) by gemm.wat where the host has it, SIMD is on and B comes
 * packed; else the backend's product of a and `b`, B in the layout it reads
 * ([K, N] for a plain product, [1, K, N] with a bias).
 */
export function product(host: Host, a: tf.TensorInfo, b: tf.TensorInfo, packed?: tf.TensorInfo, bias?: tf.TensorInfo): tf.TensorInfo {
  if (packed && host.gemm && simdEnabled && gemmEnabled) return host.gemm(a, packed, bias);
  return bias ? host.linear(a, b, bias) : host.matMul(a, b);
}

const PLAIN_PRODUCT = { transposeA: false, transposeB: false };

/** The attributes of tfjs's _FusedMatMul for x·W + b with no activation. */
export const FUSED_LINEAR = { transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0 } as unknown as tf.NamedAttrMap;

// One Host per backend instance: every kernel call reads it, so its kernel lookups and SIMD module are resolved once.
const hosts = new WeakMap<tf.KernelBackend, Host>();

export function hostOf(backend: tf.KernelBackend, backendName: string): Host {
  let host = hosts.get(backend);
  if (!host) {
    host = makeHost(backend, backendName);
    hosts.set(backend, host);
  }
  return host;
}

function makeHost(backend: tf.KernelBackend, backendName: string): Host {
  const funcs = new Map<string, tf.KernelFunc>();
  const kernel = (name: string, inputs: Record<string, tf.TensorInfo>, attrs: Record<string, unknown> = {}) => {
    let func = funcs.get(name);
    if (!func) {
      func = tf.getKernel(name, backendName)!.kernelFunc;
      funcs.set(name, func);
    }
    return func({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  };
  const matMul = (a: tf.TensorInfo, b: tf.TensorInfo) => kernel('BatchMatMul', { a, b }, PLAIN_PRODUCT);
  const linear = (x: tf.TensorInfo, w: tf.TensorInfo, bias: tf.TensorInfo) => {
    const [R, K] = x.shape as [number, number];
    const out = kernel('_FusedMatMul', { a: { ...x, shape: [1, R, K] }, b: w, bias }, FUSED_LINEAR);
    return { ...out, shape: [R, w.shape[2]!] };
  };
  const wasm = backend as unknown as WasmLike;
  if (typeof wasm.typedArrayFromHeap === 'function') {
    const memory = tfjsWasmMemory(backend);
    const make = (shape: Shape) => wasm.makeOutput(shape, 'float32');
    const offset = (info: tf.TensorInfo) => wasm.dataIdMap.get(info.dataId)!.memoryOffset;
    const g = gemmFor(memory);
    const normKernels = normFor(memory);
    const threaded = threadedGemm(memory, g, wasm.wasm?.tfjs?.getThreadsCount?.() ?? 1, normKernels);
    const pool = threaded.pool;
    const gemm = g
      ? (a: tf.TensorInfo, packed: tf.TensorInfo, bias?: tf.TensorInfo) => {
          const [R, K] = a.shape as [number, number];
          const N = packed.shape[0]! * packed.shape[2]!;
          if (packed.shape[1] !== K || packed.shape[2] !== 8)
            throw new Error(`gemm: a [${a.shape.join(', ')}] and a packed weight [${packed.shape.join(', ')}] do not fit`);
          const c = make([R, N]);
          const args = [offset(a), offset(packed), bias ? offset(bias) : 0, offset(c), R, N, K] as const;
          if (threaded.pool) threaded.pool.run(...args);
          else g(...args, 0, N);
          return c;
        }
      : null;
    return {
      backend,
      matMul,
      linear,
      kernel,
      gemm,
      gemmThreads: g ? threaded.threads : () => 0,
      gemmPool: pool,
      norm: normKernels
        ? (op, args, P, C) => {
            if (pool) pool.spread(op, args, P, C);
            else (normKernels[op] as (...a: number[]) => void)(...args, 0, C);
          }
        : null,
      memory: memory ?? null,
      simd: simdKernelsFor(memory),
      make,
      values: (info) => wasm.typedArrayFromHeap(info),
      offset,
    };
  }
  const cpu = backend as unknown as CpuLike;
  return {
    backend,
    matMul,
    linear,
    kernel,
    gemm: null,
    gemmThreads: () => 0,
    gemmPool: null,
    norm: null,
    memory: null,
    simd: null,
    make: (shape) => cpu.makeTensorInfo(shape, 'float32', new Float32Array(size(shape))),
    values: (info) => cpu.data.get(info.dataId).values as Float32Array,
    offset: () => 0,
  };
}

/** One host kernel on tensor infos: its SIMD version where there is one and it applies, else its JavaScript. */
function runOnHost(k: HostKernel, host: Host, infos: Array<tf.TensorInfo | undefined>, shapes: Shape[], attrs: Attrs): tf.TensorInfo[] {
  const outs = k.outputs(shapes, attrs).map((s) => host.make(s));
  const at = (i: tf.TensorInfo | undefined) => (i ? host.offset(i) : 0);
  if (simdOn(host) && k.simd) {
    const scratch = k.scratch?.(shapes, attrs).map((s) => host.make(s)) ?? [];
    try {
      if (k.simd(host.simd, infos.map(at), outs.map(at), shapes, attrs, scratch.map(at), host)) return outs;
    } finally {
      for (const t of scratch) host.backend.disposeData(t.dataId);
    }
  }
  // Views only after every allocation: a malloc may grow the wasm heap and detach older views.
  const ins = infos.map((i) => (i ? host.values(i) : NO_VALUES));
  k.compute(
    ins,
    outs.map((o) => host.values(o)),
    shapes,
    attrs,
  );
  return outs;
}

function hostKernel(k: HostKernel, backendName: string): tf.KernelFunc {
  const names = k.inputs.map((n) => n.replace('?', ''));
  return ({ inputs, backend, attrs }) => {
    const infos = names.map((n) => (inputs as Record<string, tf.TensorInfo | undefined>)[n]);
    return runOnHost(
      k,
      hostOf(backend as tf.KernelBackend, backendName),
      infos,
      infos.map((i) => i?.shape ?? NO_SHAPE),
      attrs as Attrs,
    );
  };
}

/** A host kernel on tensor infos inside a composite (shapes taken from the infos; undefined for an absent optional input). */
export function call(k: HostKernel, host: Host, infos: Array<tf.TensorInfo | undefined>, attrs: Attrs = {}): tf.TensorInfo[] {
  return runOnHost(
    k,
    host,
    infos,
    infos.map((i) => i?.shape ?? NO_SHAPE),
    attrs,
  );
}

/** What a composite allocates, passed through `made` so that the glue frees all of it but the outputs. */
export type Made = <T extends tf.TensorInfo | tf.TensorInfo[]>(t: T) => T;
/** A kernel made of other kernels, run on tensor infos inside one engine call. */
export type Composite = (host: Host, inputs: Record<string, tf.TensorInfo>, attrs: Attrs, made: Made) => tf.TensorInfo[];

/**
 * Runs a composite and frees all it allocated but what it returns, also when
 * it throws; what it returns goes on to `made`. As a registered kernel, that
 * is the engine's; inside another composite, the caller's, whose whole
 * backward would otherwise hold every block's intermediates until its end.
 */
export function runComposite(c: Composite, host: Host, inputs: Record<string, tf.TensorInfo>, attrs: Attrs, made: Made): tf.TensorInfo[] {
  const mine: tf.TensorInfo[] = [];
  const track: Made = (t) => {
    if (Array.isArray(t)) mine.push(...t);
    else mine.push(t as tf.TensorInfo);
    return t;
  };
  let outs: tf.TensorInfo[] = [];
  try {
    outs = made(c(host, inputs, attrs, track));
    return outs;
  } finally {
    // Also what the composite freed itself: disposeData of a freed id does nothing on wasm and cpu.
    const kept = new Set(outs.map((o) => o.dataId));
    for (const t of mine) if (!kept.has(t.dataId)) host.backend.disposeData(t.dataId);
  }
}

/** Frees tensor infos a composite is done with (undefined ones skipped). */
export function freeInfos(host: Host, ...ts: Array<tf.TensorInfo | undefined>): void {
  for (const t of ts) if (t) host.backend.disposeData(t.dataId);
}

/**
 * The vector a backward composite returns: laid out as `layout`, zero where
 * nothing is written. `put` copies a norm's scale and shift gradients into it
 * where the layout has them (the other norms' are dropped) and frees them.
 */
export function gradientVector(
  host: Host,
  made: Made,
  layout: GradientLayout,
): { out: tf.TensorInfo; put(norm: string, dScale: tf.TensorInfo, dShift: tf.TensorInfo): void } {
  const out = made(host.make([layout.total]));
  host.values(out).fill(0);
  const offsets = new Map(layout.names.map((n, i) => [n, layout.offsets[i]!]));
  return {
    out,
    put(norm, dScale, dShift) {
      const o = host.values(out); // a view taken after the last allocation
      const wAt = offsets.get(`${norm}.weight`);
      const bAt = offsets.get(`${norm}.bias`);
      if (wAt !== undefined) o.set(host.values(dScale), wAt);
      if (bAt !== undefined) o.set(host.values(dShift), bAt);
      freeInfos(host, dScale, dShift);
    },
  };
}

/** Registers plain host kernels and composites with tfjs for wasm and cpu (a name already registered is left alone). */
export function registerHostKernels(plain: Record<string, HostKernel>, composites: Record<string, Composite>): void {
  for (const backendName of HOST_BACKENDS) {
    for (const [name, k] of Object.entries(plain)) {
      if (!tf.getKernel(name, backendName)) tf.registerKernel({ kernelName: name, backendName, kernelFunc: hostKernel(k, backendName) });
    }
    for (const [name, c] of Object.entries(composites)) {
      if (tf.getKernel(name, backendName)) continue;
      const kernelFunc: tf.KernelFunc = ({ inputs, backend, attrs }) =>
        runComposite(c, hostOf(backend as tf.KernelBackend, backendName), inputs as Record<string, tf.TensorInfo>, attrs as Attrs, (t) => t);
      tf.registerKernel({ kernelName: name, backendName, kernelFunc });
    }
  }
}

/**
 * On the wasm backend now running, starts what gemm.wat needs (the threaded
 * build's workers) and waits up to `timeoutMs` for them; gemmThreadsNow()
 * then says how many threads its products run on.
 */
export async function startGemmThreads(timeoutMs = 3000): Promise<void> {
  const name = tf.getBackend();
  if (name !== 'wasm') return;
  const pool = hostOf(tf.backend(), name).gemmPool;
  const start = Date.now();
  while (pool && !pool.ready && pool.problem === null && Date.now() - start < timeoutMs) await new Promise((r) => setTimeout(r, 10));
}

/** The threads gemm.wat's products run on now, on the backend now running (0 off wasm, or while XNNPACK serves). */
export function gemmThreadsNow(): number {
  const name = tf.getBackend();
  return name === 'wasm' ? hostOf(tf.backend(), name).gemmThreads() : 0;
}
