import { SIMD_KERNELS_WASM } from './simd-kernels.wasm';

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
  copy_block(src: number, srcStride: number, dst: number, dstStride: number, rows: number, w: number): void;
  transpose_block(src: number, srcStride: number, dst: number, rows: number, w: number): void;
}

/**
 * Chromium refuses to compile a module over 4 KB synchronously on the main
 * thread; under that size the kernels can be made on first use, with no
 * asynchronous start-up step. (A test holds the module under it.)
 */
export const SYNC_COMPILE_LIMIT = 4096;

let compiled: WebAssembly.Module | null | undefined;
const byMemory = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

function compile(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  try {
    const bytes = Uint8Array.from(atob(SIMD_KERNELS_WASM), (c) => c.charCodeAt(0));
    compiled = new WebAssembly.Module(bytes);
  } catch {
    compiled = null; // no WebAssembly SIMD here: the JavaScript kernels serve
  }
  return compiled;
}

/**
 * The kernels on this memory, or null where they cannot run: no SIMD, or a
 * shared memory (tfjs-wasm's threaded build), which this module's import does
 * not declare.
 */
export function simdKernelsFor(memory: WebAssembly.Memory | undefined): SimdKernels | null {
  if (!memory || (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer)) return null;
  const known = byMemory.get(memory);
  if (known !== undefined) return known;
  const module = compile();
  let kernels: SimdKernels | null = null;
  if (module) {
    try {
      kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as SimdKernels;
    } catch {
      kernels = null;
    }
  }
  byMemory.set(memory, kernels);
  return kernels;
}
