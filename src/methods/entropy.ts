import * as tf from '@tensorflow/tfjs';

/** Shannon entropy -Σ p log p of softmax(logits), per row: [B, C] → [B]. */
export function softmaxEntropy(logits: tf.Tensor2D): tf.Tensor1D {
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
}

/**
 * Entropies [B] (the same arithmetic as softmaxEntropy) and their gradient
 * with respect to the logits, dE/dz = −p·(log p + E), [B, C]: the start of the
 * hand-written backward (model/fast-vit.ts).
 */
export function entropyWithGrad(logits: tf.Tensor2D): { entropies: tf.Tensor1D; grad: tf.Tensor2D } {
  const logp = tf.logSoftmax(logits);
  const p = tf.exp(logp);
  const entropies = tf.neg(tf.sum(tf.mul(p, logp), 1)) as tf.Tensor1D;
  const grad = tf.mul(p, tf.neg(tf.add(logp, tf.expandDims(entropies, 1)))) as tf.Tensor2D;
  return { entropies, grad };
}
