// The tensor-level face of the kernels that the host (wasm, cpu) and WebGPU
// both register under one name, with the same inputs, attributes and
// outputs: a backend table takes these entries for the ops it has kernels for.
import * as tf from '@tensorflow/tfjs-core';
import { vitOps } from './ops/vit';
import { entry } from './registry';
import type { Kernels } from './types';

/** Runs a registered kernel by name on the current backend; always returns the outputs as a list. */
export function runKernel(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}): tf.Tensor[] {
  const out = tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as tf.NamedAttrMap);
  return Array.isArray(out) ? out : [out as tf.Tensor];
}

export const one = (name: string, inputs: Record<string, tf.Tensor>, attrs?: Record<string, unknown>) => runKernel(name, inputs, attrs)[0]!;

// The backend's own float → bool: on WebGPU a kernel, where tf.cast would upload a 0.
const truthy = entry('truthy');

/** Inputs named x, x1, x2… (WildttaAllFinite's). */
const numbered = (ts: readonly tf.Tensor[]) => Object.fromEntries(ts.map((t, i) => [i === 0 ? 'x' : `x${i}`, t]));

export const kernelCalls = {
  samAscent(theta, grad, rho) {
    const [ascended, norm] = runKernel('WildttaSamAscent', { theta, grad }, { rho });
    return { ascended: ascended as tf.Tensor1D, gradNorm: tf.reshape(norm!, []) as tf.Scalar };
  },

  sgdMomentum(theta, grad, buffer, gate, lr, momentum) {
    const [stepped, next] = runKernel('WildttaSgdMomentum', { theta, grad, buffer, gate }, { lr, momentum });
    return { theta: stepped as tf.Tensor1D, buffer: next as tf.Tensor1D };
  },

  movingAverage(value, has, x, gate, decay) {
    const [v, h] = runKernel('WildttaMovingAverage', { value, has, x, gate }, { decay });
    return { value: v!, has: h! };
  },

  pick: <T extends tf.Tensor>(when: tf.Tensor, a: T, b: T) => one('WildttaPick', { when, a, b }) as T,

  packScalars(values, fallback) {
    const inputs: Record<string, tf.Tensor> = {};
    values.forEach((t, i) => {
      if (t) inputs[`s${i}`] = t;
    });
    return one('WildttaScalars', inputs, { fallback }) as tf.Tensor1D;
  },

  allFinite: (...scalars) => truthy(tf.reshape(one('WildttaAllFinite', numbered(scalars)), [])),

  entropyLoss(logits, { weights, margin, mean = false }) {
    const [, loss, count, dLogits] = runKernel(
      'WildttaEntropyLoss',
      weights ? { logits, weights } : { logits },
      margin === undefined ? { mean } : { mean, margin },
    );
    return { loss: tf.reshape(loss!, []) as tf.Scalar, count: tf.reshape(count!, []) as tf.Scalar, dLogits: dLogits as tf.Tensor2D };
  },

  layerNorm(x, gamma, beta, eps, save) {
    const [y, stats] = runKernel('WildttaLayerNorm', { x, gamma, beta }, { eps, save });
    return save ? { y: y as tf.Tensor2D, saved: { kind: 'stats', x, stats: stats as tf.Tensor2D, gamma } } : { y: y as tf.Tensor2D };
  },

  layerNormGrad(dy, s, needInput, residual) {
    if (s.kind !== 'stats') return vitOps.layerNormGrad(dy, s, needInput, residual);
    const inputs: Record<string, tf.Tensor> = { dy, x: s.x, stats: s.stats, gamma: s.gamma };
    if (residual) inputs.residual = residual;
    const [dGamma, dBeta, dx] = runKernel('WildttaLayerNormGrad', inputs, { needInput });
    return { dGamma: dGamma as tf.Tensor1D, dBeta: dBeta as tf.Tensor1D, dx: dx as tf.Tensor2D | undefined };
  },

  geluGrad: (dy, a, cdf) => one('WildttaGeluGrad', { dy, a, cdf }) as tf.Tensor2D,

  softmaxBackward: (dP, p) => one('WildttaSoftmaxBackward', { dP, p }),

  headsMerge: (dq, dk, dv, batch) => one('WildttaHeadsMerge', { dq, dk, dv }, { batch }) as tf.Tensor2D,

  headsGrad: (dO, s) => one('WildttaHeadsGrad', s.kind === 'qkv' ? { dO, qkv: s.qkv, p: s.p } : { dO, q: s.q, k: s.k, v: s.v, p: s.p }) as tf.Tensor2D,

  groupNorm(x, scale, shift, { groups, eps, relu }) {
    const [y, xhat, inv] = runKernel('WildttaGroupNorm', { x, scale, shift }, { groups, eps, relu });
    return { y: y as tf.Tensor4D, xhat: xhat as tf.Tensor4D, inv: inv as tf.Tensor2D };
  },

  groupNormGrad(dy, xhat, inv, scale, y, { groups, inputGrad }) {
    const [dScale, dShift, dx] = runKernel('WildttaGroupNormGrad', { dy, xhat, inv, scale, ...(y ? { y } : {}) }, { groups, inputGrad });
    return { dScale: dScale as tf.Tensor1D, dShift: dShift as tf.Tensor1D, dx: dx as tf.Tensor4D | undefined };
  },

  interleavePhases: (phases, stride, height, width) =>
    one('WildttaInterleave', Object.fromEntries(phases.flatMap((p, i) => (p ? [[`p${i}`, p]] : []))), { stride, height, width }) as tf.Tensor4D,
} satisfies Partial<Kernels>;
