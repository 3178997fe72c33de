// Which implementation of an op runs: the current backend's table where it
// has the op, else the tfjs-ops one (ops/), which every backend can run.
// index.ts installs the tables: host/table.ts for wasm and cpu,
// webgpu/table.ts for webgpu, and ops/table.ts for every backend.
import * as tf from '@tensorflow/tfjs-core';
import type { Kernels, OpName } from './types';

const tables = new Map<string, Partial<Kernels>>();
let everywhere: Kernels | undefined;

/** Adds a backend's own implementations of some ops (later entries win for the same op). */
export function registerTable(backends: readonly string[], table: Partial<Kernels>): void {
  for (const name of backends) tables.set(name, { ...tables.get(name), ...table });
}

/** The implementations any backend can run (tfjs ops); set once by ops/table.ts. */
export function registerFallbacks(table: Kernels): void {
  everywhere = table;
}

/** The implementation of `op` on the current backend. */
export function kernelFor<K extends OpName>(op: K): Kernels[K] {
  const own = tables.get(tf.getBackend())?.[op];
  if (own !== undefined) return own as Kernels[K];
  if (everywhere === undefined) throw new Error('src/kernels: import the ops through src/kernels/index.ts, which registers them');
  return everywhere[op];
}

/** Whether the current backend has its own implementation of `op` (else the tfjs-ops one runs). */
export function hasOwnKernel(op: OpName): boolean {
  return tables.get(tf.getBackend())?.[op] !== undefined;
}

/** The entry point of `op`: a function that runs the current backend's implementation. */
export function entry<K extends OpName>(op: K): Kernels[K] {
  return ((...args: unknown[]) => (kernelFor(op) as (...a: unknown[]) => unknown)(...args)) as Kernels[K];
}
