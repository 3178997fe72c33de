import * as tf from '@tensorflow/tfjs';

/** Global L2 norm over a set of gradient tensors (a scalar tensor). */
export function globalNorm(grads: Iterable<tf.Tensor>): tf.Scalar {
  // A chain of adds, not tf.addN: WebGPU's AddN binds every input at once and
  // breaks past the device's storage-buffer limit (8 by default), which a
  // model with dozens of adapted tensors exceeds.
  let total: tf.Tensor = tf.scalar(0);
  for (const g of grads) total = tf.add(total, tf.sum(tf.square(g)));
  return tf.sqrt(total) as tf.Scalar;
}

/**
 * SAM's ascent step (non-adaptive): ε = ρ·g / (‖g‖₂ + 1e-12) over all adapted
 * tensors, θ ← θ + ε. Returns the values of θ before the ascent so that
 * `restore` can put them back exactly (subtracting ε again would not be exact
 * in float32). Call inside tf.tidy; keep the returned tensors alive until restore.
 */
export function samAscend(
  params: ReadonlyMap<string, tf.Variable>,
  grads: ReadonlyMap<string, tf.Tensor>,
  gradNorm: tf.Scalar,
  rho: number,
): Map<string, tf.Tensor> {
  const scale = tf.div(rho, tf.add(gradNorm, 1e-12));
  const saved = new Map<string, tf.Tensor>();
  for (const [name, p] of params) {
    saved.set(name, tf.clone(p));
    p.assign(tf.add(p, tf.mul(grads.get(name)!, scale)));
  }
  return saved;
}

/** Puts the pre-ascent values back. */
export function samRestore(params: ReadonlyMap<string, tf.Variable>, saved: ReadonlyMap<string, tf.Tensor>): void {
  for (const [name, p] of params) p.assign(saved.get(name)!);
}
