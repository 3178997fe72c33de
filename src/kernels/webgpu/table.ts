// WebGPU's table: the ops it runs as WGSL kernels (kernels.ts, fused.ts). Everything
// else (the products, attention's forward, the convs) runs as tfjs ops on the GPU.
import { kernelCalls } from '../calls';
import { normOps } from '../ops/norm';
import { registerTable } from '../registry';
import type { Kernels } from '../types';
import { groupNormFits, MAX_THREADS, registerGpuKernels } from './kernels';
import { fusedCalls, registerFused } from './fused';

// GroupNorm as WGSL where its kernels fit the image (groupNormFits), else as tfjs ops.
const convFamilyCalls = {
  groupNorm: (x, ...rest) => (groupNormFits(x.shape) ? kernelCalls : normOps).groupNorm(x, ...rest),
  groupNormGrad: (dy, ...rest) => (groupNormFits(dy.shape) ? kernelCalls : normOps).groupNormGrad(dy, ...rest),
  // One WGSL dispatch up to stride 2 (as many phases as a shader binds here) and one dispatch's reach.
  interleavePhases(phases, stride, height, width) {
    const fits = stride <= 2 && phases[0]!.shape[0] * height * width * phases[0]!.shape[3] <= MAX_THREADS;
    return (fits ? kernelCalls : normOps).interleavePhases(phases, stride, height, width);
  },
} satisfies Partial<Kernels>;

/** Registers the WGSL kernels with tfjs and the table with the registry. */
export function installWebgpu(): void {
  registerGpuKernels();
  registerFused();
  registerTable(['webgpu'], { ...kernelCalls, ...fusedCalls, ...convFamilyCalls });
}
