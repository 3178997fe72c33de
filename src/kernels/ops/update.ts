// The methods' arithmetic in tfjs ops: what runs on a backend without its
// own kernel for an op (webgl), and the reference the kernels are tested
// against. Ops that use other ops call them through their entry points, so a
// backend's own kernel for the inner op still runs.
import * as tf from '@tensorflow/tfjs-core';
import { entry } from '../registry';
import type { Kernels, RecenterSource, RecenterState } from '../types';

const pick = entry('pick');
const entropyWithGradEntry = entry('entropyWithGrad');

/** ‖g‖₂ of a flat vector, as a scalar tensor. */
export function l2Norm(g: tf.Tensor1D): tf.Scalar {
  return tf.sqrt(tf.sum(tf.square(g))) as tf.Scalar;
}

/** Shannon entropy −Σ p log p of softmax(logits), per row: [B, C] → [B]. Differentiable (tfjs ops only). */
export function softmaxEntropy(logits: tf.Tensor2D): tf.Tensor1D {
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
}

/**
 * The logit offset W·(μ_src − μ̂) [1, C] and the feature shift μ̂ − μ_src
 * [1, D] of feature re-centering, μ̂ the class-balanced test mean: the plain
 * average of the class means, or with `biasCorrected` μ_src + Σ_c (m_c −
 * m_c^src) / Σ_c w_c.
 */
export function recenterShift(
  means: tf.Tensor2D,
  weights: tf.Tensor1D,
  source: RecenterSource,
  biasCorrected: boolean,
): { offset: tf.Tensor2D; shift: tf.Tensor2D } {
  const testMean = biasCorrected
    ? tf.add(source.mean, tf.div(tf.sum(tf.sub(means, source.classMeans), 0), tf.maximum(tf.sum(weights), 1e-6)))
    : tf.mean(means, 0);
  const shift = tf.reshape(tf.sub(testMean, source.mean), [1, -1]) as tf.Tensor2D;
  return { shift, offset: tf.neg(tf.matMul(shift, source.head, false, true)) };
}

export const updateOps = {
  samAscent(theta, grad, rho) {
    const gradNorm = l2Norm(grad);
    return { ascended: tf.add(theta, tf.mul(grad, tf.div(rho, tf.add(gradNorm, 1e-12)))) as tf.Tensor1D, gradNorm };
  },

  sgdMomentum(theta, grad, buffer, gate, lr, momentum) {
    const next = tf.add(tf.mul(buffer, momentum), grad) as tf.Tensor1D;
    return { buffer: pick(gate, next, buffer), theta: pick(gate, tf.sub(theta, tf.mul(next, lr)) as tf.Tensor1D, theta) };
  },

  movingAverage(value, has, x, gate, decay) {
    const blended = tf.add(tf.mul(value, decay), tf.mul(x, 1 - decay));
    return { value: pick(gate, pick(tf.cast(has, 'bool'), blended, x), value), has: pick(gate, tf.onesLike(has), has) };
  },

  pick<T extends tf.Tensor>(when: tf.Tensor, a: T, b: T): T {
    return tf.where(a.rank === 0 ? when : tf.broadcastTo(when, a.shape), a, b) as T;
  },

  packScalars(values, fallback) {
    return tf.concat(
      values.map((t, i) => (t ? tf.reshape(t.dtype === 'float32' ? t : tf.cast(t, 'float32'), [1]) : tf.tensor1d([fallback[i]!]))),
    ) as tf.Tensor1D;
  },

  truthy: (x) => tf.cast(x, 'bool'),

  allFinite(...scalars) {
    return tf.all(tf.isFinite(tf.stack(scalars.map((s) => tf.reshape(s, [])))));
  },

  finiteFlag(x) {
    return tf.reshape(tf.cast(tf.all(tf.isFinite(x)), 'float32'), [1]) as tf.Tensor1D;
  },

  splitFlat(flat, sizes) {
    return tf.split(flat, [...sizes]);
  },

  softmaxAndEntropy(logits) {
    return { probabilities: tf.softmax(logits), entropies: softmaxEntropy(logits) };
  },

  entropyWithGrad(logits) {
    const logp = tf.logSoftmax(logits);
    const p = tf.exp(logp);
    const entropies = tf.neg(tf.sum(tf.mul(p, logp), 1)) as tf.Tensor1D;
    const grad = tf.mul(p, tf.neg(tf.add(logp, tf.expandDims(entropies, 1)))) as tf.Tensor2D;
    return { entropies, grad };
  },

  entropyLoss(logits, { weights, margin, mean = false }) {
    const { entropies, grad } = entropyWithGradEntry(logits);
    const below: tf.Tensor1D = margin === undefined ? tf.onesLike(entropies) : tf.cast(tf.less(entropies, margin), 'float32');
    const count = tf.sum(below) as tf.Scalar;
    let w: tf.Tensor1D = weights ? tf.mul(below, weights) : below;
    if (mean) w = tf.div(w, tf.maximum(count, 1)) as tf.Tensor1D;
    return { loss: tf.sum(tf.mul(entropies, w)) as tf.Scalar, count, dLogits: tf.mul(grad, tf.expandDims(w, 1)) as tf.Tensor2D };
  },

  inputAlign(x, { meanLo, meanHi, stdLo, stdHi }) {
    const { mean, variance } = tf.moments(x, [1, 2, 3], true);
    const std = tf.sqrt(variance);
    const targetMean = tf.clipByValue(mean, meanLo, meanHi);
    const targetStd = tf.clipByValue(std, stdLo, stdHi);
    // s′/s, guarded for a flat frame (s = 0: nothing to stretch).
    const gain = tf.where(tf.greater(std, 1e-6), tf.div(targetStd, tf.maximum(std, 1e-6)), tf.onesLike(std));
    return tf.clipByValue(tf.add(tf.mul(tf.sub(x, mean), gain), targetMean), 0, 1) as tf.Tensor4D;
  },

  recenterObserve(
    state: RecenterState,
    source: RecenterSource,
    features: tf.Tensor2D,
    logits: tf.Tensor2D,
    { decay, biasCorrected }: { decay: number; biasCorrected: boolean },
  ) {
    const C = state.means.shape[0]!;
    const onehot = tf.cast(tf.oneHot(tf.argMax(logits, 1), C), 'float32') as tf.Tensor2D;
    const counts = tf.sum(onehot, 0);
    const present = tf.greater(counts, 0);
    const batchMeans = tf.div(tf.matMul(onehot, features, true, false), tf.expandDims(tf.maximum(counts, 1), 1));
    const moved = tf.add(tf.mul(state.means, decay), tf.mul(batchMeans, 1 - decay));
    const updated = tf.where(tf.broadcastTo(tf.expandDims(present, 1), state.means.shape), moved, state.means) as tf.Tensor2D;
    const finite = tf.all(tf.isFinite(features));
    const means = pick(finite, updated, state.means);
    const weights = pick(finite, tf.where(present, tf.add(tf.mul(state.weights, decay), 1 - decay), state.weights) as tf.Tensor1D, state.weights);
    return { means, weights, ...recenterShift(means, weights, source, biasCorrected) };
  },
} satisfies Partial<Kernels>;
