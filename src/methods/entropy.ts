import * as tf from '@tensorflow/tfjs';

/** Shannon entropy -Σ p log p of softmax(logits), per row: [B, C] → [B]. */
export function softmaxEntropy(logits: tf.Tensor2D): tf.Tensor1D {
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
}
