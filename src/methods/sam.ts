import * as tf from '@tensorflow/tfjs-core';
import { hasFusedKernel, runFusedKernel } from '../model/host-kernels';

/** L2 norm of a flat gradient vector (a scalar tensor). */
export function flatNorm(g: tf.Tensor1D): tf.Scalar {
  return tf.sqrt(tf.sum(tf.square(g))) as tf.Scalar;
}

/**
 * SAM's ascent (non-adaptive): θ + ε with ε = ρ·g / (‖g‖₂ + 1e-12), ‖g‖₂ the
 * norm over all adapted tensors, on the flat vector; also returns ‖g‖₂. The
 * variables are not touched: the second forward reads θ + ε directly, so
 * restoring θ is exact and free. Inside tf.tidy.
 */
export function samAscent(theta: tf.Tensor1D, grad: tf.Tensor1D, rho: number): { ascended: tf.Tensor1D; gradNorm: tf.Scalar } {
  if (hasFusedKernel('WildttaSamAscent')) {
    const [ascended, norm] = runFusedKernel('WildttaSamAscent', { theta, grad }, { rho });
    return { ascended: ascended as tf.Tensor1D, gradNorm: tf.reshape(norm!, []) };
  }
  const gradNorm = flatNorm(grad);
  return { ascended: tf.add(theta, tf.mul(grad, tf.div(rho, tf.add(gradNorm, 1e-12)))) as tf.Tensor1D, gradNorm };
}
