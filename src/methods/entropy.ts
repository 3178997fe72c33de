import * as tf from '@tensorflow/tfjs';
import { onHostBackend as onHost, runFusedKernel } from '../model/host-kernels';

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
