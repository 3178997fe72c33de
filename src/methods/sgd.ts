import * as tf from '@tensorflow/tfjs';

/**
 * SGD with momentum as in torch.optim.SGD (no dampening, no weight decay, no
 * Nesterov): buf ← μ·buf + g; θ ← θ − lr·buf, on the flat vector of adapted
 * values (flat.ts). The buffer starts at zero, which gives buf = g on the
 * first step, as torch does.
 *
 * `gate` is a boolean scalar tensor: where it is false (no sample survived a
 * filter, or the gradient is not finite) parameters and buffer stay exactly
 * as they were. Gating on the device keeps the step free of GPU→CPU reads.
 */
export class SgdMomentum {
  readonly buffer: tf.Variable<tf.Rank.R1>;
  /** All-true [P]: a scalar gate widened by logicalAnd with it is one cheap kernel (broadcastTo is a slow Tile on wasm). */
  private readonly trues: tf.Tensor1D;

  constructor(
    size: number,
    public lr: number,
    readonly momentum = 0.9,
  ) {
    // tidy frees the zeros the variable was made from (tidy never disposes variables themselves).
    this.buffer = tf.tidy(() => tf.variable(tf.zeros([size]) as tf.Tensor1D, false));
    this.trues = tf.tidy(() => tf.cast(tf.ones([size]), 'bool') as tf.Tensor1D);
  }

  /** A boolean scalar as a [P] mask. Inside tf.tidy. */
  widen(gate: tf.Tensor): tf.Tensor1D {
    return tf.logicalAnd(this.trues, gate) as tf.Tensor1D;
  }

  /** Returns the stepped θ (θ itself where the gate is false) and updates the buffer. Inside tf.tidy. */
  step(theta: tf.Tensor1D, grad: tf.Tensor1D, gate: tf.Tensor): tf.Tensor1D {
    const cond = this.widen(gate);
    const nextBuf = tf.add(tf.mul(this.buffer, this.momentum), grad);
    this.buffer.assign(tf.where(cond, nextBuf, this.buffer) as tf.Tensor1D);
    return tf.where(cond, tf.sub(theta, tf.mul(nextBuf, this.lr)), theta) as tf.Tensor1D;
  }

  /** Zeroes the momentum where `when` (boolean scalar) holds, everywhere when undefined. */
  clear(when?: tf.Tensor): void {
    tf.tidy(() => {
      const zero = tf.zerosLike(this.buffer);
      this.buffer.assign((when === undefined ? zero : tf.where(this.widen(when), zero, this.buffer)) as tf.Tensor1D);
    });
  }

  dispose(): void {
    this.buffer.dispose();
    this.trues.dispose();
  }
}
