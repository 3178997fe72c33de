// WebGPU's table: the ops it runs as WGSL kernels (kernels.ts, fused.ts). Everything
// else (the products, attention's forward) runs as tfjs ops on the GPU.
import { kernelCalls } from '../calls';
import { registerTable } from '../registry';
import { registerGpuKernels } from './kernels';
import { fusedCalls, registerFused } from './fused';

/** Registers the WGSL kernels with tfjs and the table with the registry. */
export function installWebgpu(): void {
  registerGpuKernels();
  registerFused();
  registerTable(['webgpu'], { ...kernelCalls, ...fusedCalls });
}
