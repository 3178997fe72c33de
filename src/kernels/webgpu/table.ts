// WebGPU's table: the ops it runs as WGSL kernels (kernels.ts, fused.ts). Everything
// else (the products, attention's forward, the convs) runs as tfjs ops on the GPU.
import { kernelCalls } from '../calls';
import { normOps } from '../ops/norm';
import { registerTable } from '../registry';
import type { Kernels } from '../types';
import { groupNormFits, registerGpuKernels } from './kernels';
import { fusedCalls, registerFused } from './fused';

// GroupNorm as WGSL where its kernels fit the image (groupNormFits), else as tfjs ops.
const groupNormCalls = {
  groupNorm: (x, ...rest) => (groupNormFits(x.shape) ? kernelCalls : normOps).groupNorm(x, ...rest),
  groupNormGrad: (dy, ...rest) => (groupNormFits(dy.shape) ? kernelCalls : normOps).groupNormGrad(dy, ...rest),
} satisfies Partial<Kernels>;

/** Registers the WGSL kernels with tfjs and the table with the registry. */
export function installWebgpu(): void {
  registerGpuKernels();
  registerFused();
  registerTable(['webgpu'], { ...kernelCalls, ...fusedCalls, ...groupNormCalls });
}
