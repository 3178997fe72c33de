// What tf.profile says of a step, summed per kernel name: the two profiling
// scripts (profile-step.ts, profile-autodiff.ts) read a step's cost this way.
import type * as tf from '@tensorflow/tfjs';

export interface KernelTotal {
  n: number;
  ms: number;
}

/** Count and total time per kernel name, the most expensive first. */
export function kernelTotals(profile: Awaited<ReturnType<typeof tf.profile>>): Array<[string, KernelTotal]> {
  const byName = new Map<string, KernelTotal>();
  for (const k of profile.kernels) {
    const e = byName.get(k.name) ?? { n: 0, ms: 0 };
    e.n++;
    e.ms += Number(k.kernelTimeMs) || 0;
    byName.set(k.name, e);
  }
  return [...byName].sort((a, b) => b[1].ms - a[1].ms);
}
