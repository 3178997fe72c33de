// WebGPU's table: the ops it runs as WGSL kernels (kernels.ts, fused.ts). Everything
// else (the products, attention's softmax, the convs) runs as tfjs ops on the GPU.
import * as tf from '@tensorflow/tfjs-core';
import { kernelCalls, runKernel } from '../calls';
import { normOps } from '../ops/norm';
import { vitOps } from '../ops/vit';
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

// Attention's forward from qkv as it lies: scores, tfjs's softmax, then P·v into the heads-side-by-side layout,
// three dispatches where the ops take eight (a transpose, three slices, two products, the softmax, a transpose).
const vitCalls = {
  attention(x, n, w, shape, save) {
    const { batch: B, tokens: N, heads: H } = shape;
    const D = w.proj.w.shape[0];
    // Past one dispatch's reach (the backward's dL/dqkv has a thread per value of qkv), the ops and their heads' tape.
    if (B * H * N * N > MAX_THREADS || (save ? 3 : 1) * B * N * D > MAX_THREADS) return vitOps.attention(x, n, w, shape);
    const qkv = vitOps.linear(n, w.qkv);
    const p = tf.softmax(runKernel('WildttaHeadsScores', { qkv }, { heads: H, tokens: N })[0]!) as tf.Tensor3D;
    const o = runKernel('WildttaHeadsMix', { p, qkv })[0] as tf.Tensor2D;
    const x1 = tf.add(x, vitOps.linear(o, w.proj)) as tf.Tensor2D;
    return save ? { x1, saved: { kind: 'qkv' as const, qkv, p } } : { x1 };
  },
} satisfies Partial<Kernels>;

/** Registers the WGSL kernels with tfjs and the table with the registry. */
export function installWebgpu(): void {
  registerGpuKernels();
  registerFused();
  registerTable(['webgpu'], { ...kernelCalls, ...fusedCalls, ...convFamilyCalls, ...vitCalls });
}
