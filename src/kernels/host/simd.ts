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

/**
 * The SIMD kernels of simd-kernels.wat, instantiated on tfjs-wasm's own
 * memory so that they read and write tensors where they lie (pointers are
 * byte offsets into that memory).
 */
export interface SimdKernels {
  layer_norm(x: number, g: number, b: number, y: number, stats: number, R: number, D: number, eps: number): void;
  layer_norm_grad(dy: number, x: number, stats: number, g: number, res: number, dg: number, db: number, dx: number, R: number, D: number): void;
  gelu(a: number, y: number, cdf: number, n: number): void;
  gelu_grad(dy: number, a: number, cdf: number, da: number, n: number): void;
  softmax_grad(dP: number, p: number, dS: number, dST: number, pT: number, N: number, M: number): void;
  attention_head_grad(dO: number, qkv: number, p: number, scratch: number, out: number, N: number, D: number, off: number, d: number): void;
  copy_block(src: number, srcStride: number, dst: number, dstStride: number, rows: number, w: number): void;
  transpose_block(src: number, srcStride: number, dst: number, rows: number, w: number): void;
}

/**
 * Chromium refuses to compile a module over 4 KB synchronously on the main
 * thread; under that size the kernels can be made on first use, with no
 * asynchronous start-up step. (A test holds the module under it.)
 */
export const SYNC_COMPILE_LIMIT = 4096;

const byMemory = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

/**
 * tfjs-wasm's memory, from its backend object: the module exports it in the
 * plain and SIMD builds, and the threaded build, which makes it (shared),
 * keeps it as `wasmMemory`.
 */
export function tfjsWasmMemory(backend: unknown): WebAssembly.Memory | undefined {
  const module = (backend as { wasm?: { asm?: { memory?: WebAssembly.Memory }; wasmMemory?: WebAssembly.Memory } }).wasm;
  return module?.asm?.memory ?? module?.wasmMemory;
}

/** Whether a memory is shared (tfjs-wasm's threaded build's). */
export const isShared = (memory: WebAssembly.Memory) => typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;

const compiled = new Map<string, WebAssembly.Module | null>();

function compile(base64: string): WebAssembly.Module | null {
  let module = compiled.get(base64);
  if (module !== undefined) return module;
  try {
    module = new WebAssembly.Module(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
  } catch {
    module = null; // no WebAssembly SIMD here: the JavaScript kernels serve
  }
  compiled.set(base64, module);
  return module;
}

/**
 * The kernels on this memory, or null where they cannot run (no SIMD). A
 * shared memory (tfjs-wasm's threaded build) gets the variant whose import
 * declares it shared.
 */
export function simdKernelsFor(memory: WebAssembly.Memory | undefined): SimdKernels | null {
  return onMemory(
    byMemory,
    memory,
    (shared) => compile(shared ? SIMD_KERNELS_WASM_SHARED : SIMD_KERNELS_WASM),
    (e) => e as unknown as SimdKernels,
  );
}

/**
 * A module's exports on this memory, made once per memory (`cache`), or
 * null where it cannot be (no memory, no SIMD, an instantiation that fails).
 */
function onMemory<T>(
  cache: WeakMap<WebAssembly.Memory, T | null>,
  memory: WebAssembly.Memory | undefined,
  module: (shared: boolean) => WebAssembly.Module | null,
  pick: (exports: WebAssembly.Exports) => T,
): T | null {
  if (!memory) return null;
  const known = cache.get(memory);
  if (known !== undefined) return known;
  const code = module(isShared(memory));
  let made: T | null = null;
  if (code) {
    try {
      made = pick(new WebAssembly.Instance(code, { env: { memory } }).exports);
    } catch {
      made = null;
    }
  }
  cache.set(memory, made);
  return made;
}

/**
 * gemm.wat's product: columns j0 ≤ j < j1 of c [M, N] = a [M, K]·b (+ bias),
 * b packed as [N/8, K, 8] (packColumns), bias 0 for none; N, j0, j1
 * multiples of 8.
 */
export type Gemm = (a: number, b: number, bias: number, c: number, M: number, N: number, K: number, j0: number, j1: number) => void;

const gemmByMemory = new WeakMap<WebAssembly.Memory, Gemm | null>();

/**
 * gemm.wat's compiled module for a memory of this kind (shared: tfjs-wasm's
 * threaded build), or null where there is no SIMD: the relaxed multiply-add
 * variant where the engine has relaxed SIMD (Chromium since 114; Node 20
 * only with --experimental-wasm-relaxed-simd), unless `plain`.
 */
export function gemmModule(shared: boolean, plain = false): WebAssembly.Module | null {
  const relaxed = plain ? null : compile(shared ? GEMM_RELAXED_WASM_SHARED : GEMM_RELAXED_WASM);
  return relaxed ?? compile(shared ? GEMM_WASM_SHARED : GEMM_WASM);
}

/** gemm.wat on this memory (shared or not), or null where there is no SIMD. */
export function gemmFor(memory: WebAssembly.Memory | undefined, plain = false): Gemm | null {
  // The plain variant is for tests and comparisons: made anew, never cached over the relaxed one.
  const pick = (e: WebAssembly.Exports) => e.gemm as Gemm;
  return onMemory(plain ? new WeakMap() : gemmByMemory, memory, (shared) => gemmModule(shared, plain), pick);
}

/** Whether this engine runs gemm.wat's relaxed multiply-add variant (where gemm.wat runs at all). */
export const relaxedGemm = (): boolean => compile(GEMM_RELAXED_WASM) !== null;

/**
 * norm.wat's GroupNorm loops, each over the channels c0 ≤ c < c1 (multiples
 * of 4) of one image [P, C]; pointers are byte offsets, float64 arrays
 * where the text says so.
 */
export interface NormKernels {
  channel_sums(x: number, mean: number, out: number, P: number, C: number, c0: number, c1: number): void;
  gn_apply(x: number, coef: number, xhat: number, y: number, P: number, C: number, relu: number, c0: number, c1: number): void;
  gn_grad_sums(dy: number, xhat: number, y: number, out: number, P: number, C: number, c0: number, c1: number): void;
  gn_grad_apply(dy: number, xhat: number, y: number, coef: number, dx: number, P: number, C: number, c0: number, c1: number): void;
}

/** norm.wat's compiled module for a memory of this kind (shared: tfjs-wasm's threaded build), or null where there is no SIMD. */
export const normModule = (shared: boolean): WebAssembly.Module | null => compile(shared ? NORM_WASM_SHARED : NORM_WASM);

const normByMemory = new WeakMap<WebAssembly.Memory, NormKernels | null>();

/** norm.wat on this memory, or null where there is no SIMD. */
export function normFor(memory: WebAssembly.Memory | undefined): NormKernels | null {
  return onMemory(normByMemory, memory, normModule, (e) => e as unknown as NormKernels);
}
