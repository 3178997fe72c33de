import * as tf from '@tensorflow/tfjs-core';
import { hasFusedKernel, onHostBackend as onHost, runFusedKernel } from '../model/host-kernels';

// On wasm and cpu one fused host kernel (model/host-kernels.ts) gives what needs no autodiff.

/** Shannon entropy -Σ p log p of softmax(logits), per row: [B, C] → [B]. Differentiable (tfjs ops only). */
export function softmaxEntropy(logits: tf.Tensor2D): tf.Tensor1D {
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
}

/** Probabilities [B, C] and entropies [B] of the logits, as softmax and softmaxEntropy give them (not for tf.grad). */
export function softmaxAndEntropy(logits: tf.Tensor2D): { probabilities: tf.Tensor2D; entropies: tf.Tensor1D } {
  if (onHost()) {
    const [probabilities, entropies] = runFusedKernel('WildttaSoftmaxEntropy', { logits });
    return { probabilities: probabilities as tf.Tensor2D, entropies: entropies as tf.Tensor1D };
  }
  return { probabilities: tf.softmax(logits), entropies: softmaxEntropy(logits) };
}

/**
 * Entropies [B] (the same arithmetic as softmaxEntropy) and their gradient
 * with respect to the logits, dE/dz = −p·(log p + E), [B, C]: the start of the
 * hand-written backward (model/fast-vit.ts).
 */
export function entropyWithGrad(logits: tf.Tensor2D): { entropies: tf.Tensor1D; grad: tf.Tensor2D } {
  if (onHost()) {
    const [, entropies, grad] = runFusedKernel('WildttaSoftmaxEntropy', { logits });
    return { entropies: entropies as tf.Tensor1D, grad: grad as tf.Tensor2D };
  }
  const logp = tf.logSoftmax(logits);
  const p = tf.exp(logp);
  const entropies = tf.neg(tf.sum(tf.mul(p, logp), 1)) as tf.Tensor1D;
  const grad = tf.mul(p, tf.neg(tf.add(logp, tf.expandDims(entropies, 1)))) as tf.Tensor2D;
  return { entropies, grad };
}

/**
 * An entropy loss and its gradient with respect to the logits (the start of
 * the hand-written backward): L = Σ_b w_b·E_b over the rows whose entropy is
 * below `margin` (every row without one), w_b the given `weights` or 1, and
 * with `mean` divided by how many rows are below the margin (at least 1).
 * Also returns that count. Inside tf.tidy.
 */
export function entropyLoss(
  logits: tf.Tensor2D,
  { weights, margin, mean = false }: { weights?: tf.Tensor1D; margin?: number; mean?: boolean },
): { loss: tf.Scalar; count: tf.Scalar; dLogits: tf.Tensor2D } {
  if (hasFusedKernel('WildttaEntropyLoss')) {
    const inputs: Record<string, tf.Tensor> = weights ? { logits, weights } : { logits };
    const attrs: { mean: boolean; margin?: number } = { mean };
    if (margin !== undefined) attrs.margin = margin;
    const [, loss, count, dLogits] = runFusedKernel('WildttaEntropyLoss', inputs, attrs);
    return { loss: tf.reshape(loss!, []), count: tf.reshape(count!, []), dLogits: dLogits as tf.Tensor2D };
  }
  const { entropies, grad } = entropyWithGrad(logits);
  const below: tf.Tensor1D = margin === undefined ? tf.onesLike(entropies) : tf.cast(tf.less(entropies, margin), 'float32');
  const count = tf.sum(below) as tf.Scalar;
  let w: tf.Tensor1D = weights ? tf.mul(below, weights) : below;
  if (mean) w = tf.div(w, tf.maximum(count, 1)) as tf.Tensor1D;
  return { loss: tf.sum(tf.mul(entropies, w)) as tf.Scalar, count, dLogits: tf.mul(grad, tf.expandDims(w, 1)) as tf.Tensor2D };
}
