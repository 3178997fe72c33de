import * as tf from '@tensorflow/tfjs';

/**
 * SGD with momentum as in torch.optim.SGD (no dampening, no weight decay, no
 * Nesterov): buf ← μ·buf + g; θ ← θ − lr·buf. The buffers start at zero, which
 * gives buf = g on the first step, as torch does.
 *
 * `gate` is a boolean scalar tensor: where it is false (no sample survived a
 * filter, or the gradient is not finite) parameters and buffers stay exactly
 * as they were. Gating on the device keeps the step free of GPU→CPU reads.
 */
export class SgdMomentum {
  readonly buffers = new Map<string, tf.Variable>();

  constructor(
    params: ReadonlyMap<string, tf.Variable>,
    public lr: number,
    readonly momentum = 0.9,
  ) {
    // tidy frees the zeros the variable was made from (tidy never disposes variables themselves).
    for (const [name, p] of params) this.buffers.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
  }

  /** Call inside tf.tidy. */
  step(params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, gate: tf.Tensor): void {
    for (const [name, p] of params) {
      const buf = this.buffers.get(name)!;
      const g = grads.get(name)!;
      const cond = tf.broadcastTo(gate, p.shape);
      const nextBuf = tf.add(tf.mul(buf, this.momentum), g);
      buf.assign(tf.where(cond, nextBuf, buf));
      p.assign(tf.where(cond, tf.sub(p, tf.mul(nextBuf, this.lr)), p));
    }
  }

  /** Zeroes the momentum where `when` (boolean scalar) holds. */
  clear(when?: tf.Tensor): void {
    tf.tidy(() => {
      for (const buf of this.buffers.values()) {
        buf.assign(when === undefined ? tf.zerosLike(buf) : tf.where(tf.broadcastTo(when, buf.shape), tf.zerosLike(buf), buf));
      }
    });
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
