// WebGPU's table: the ops it runs as WGSL kernels (kernels.ts), registered
// with tfjs and with the registry as this module is imported. Everything
// else (the products, attention's forward) runs as tfjs ops on the GPU.
import { kernelCalls } from '../calls';
import { registerTable } from '../registry';
import { registerGpuKernels } from './kernels';

registerGpuKernels();

registerTable(['webgpu'], kernelCalls);
