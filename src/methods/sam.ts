import * as tf from '@tensorflow/tfjs';

/** L2 norm of a flat gradient vector (a scalar tensor). */
export function flatNorm(g: tf.Tensor1D): tf.Scalar {
  return tf.sqrt(tf.sum(tf.square(g))) as tf.Scalar;
}

/**
 * SAM's ascent (non-adaptive): θ + ε with ε = ρ·g / (‖g‖₂ + 1e-12), ‖g‖₂ the
 * norm over all adapted tensors, on the flat vector. The variables are not
 * touched: the second forward reads θ + ε directly, so restoring θ is exact
 * and free. Inside tf.tidy.
 */
export function samPerturb(theta: tf.Tensor1D, grad: tf.Tensor1D, gradNorm: tf.Scalar, rho: number): tf.Tensor1D {
  return tf.add(theta, tf.mul(grad, tf.div(rho, tf.add(gradNorm, 1e-12)))) as tf.Tensor1D;
}
