import * as tf from '@tensorflow/tfjs-core';
import { pick, sgdMomentum } from '../kernels';

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
  private readonly zeros: tf.Tensor1D;

  constructor(
    size: number,
    public lr: number,
    readonly momentum = 0.9,
  ) {
    // tidy frees the zeros the variable was made from (tidy never disposes variables themselves).
    this.buffer = tf.tidy(() => tf.variable(tf.zeros([size]) as tf.Tensor1D, false));
    this.zeros = tf.keep(tf.zeros([size]));
  }

  /** Returns the stepped θ (θ itself where the gate is false) and updates the buffer. Inside tf.tidy. */
  step(theta: tf.Tensor1D, grad: tf.Tensor1D, gate: tf.Tensor): tf.Tensor1D {
    const stepped = sgdMomentum(theta, grad, this.buffer, gate, this.lr, this.momentum);
    this.buffer.assign(stepped.buffer);
    return stepped.theta;
  }

  /** Zeroes the momentum where `when` (boolean scalar) holds, everywhere when undefined. */
  clear(when?: tf.Tensor): void {
    tf.tidy(() => this.buffer.assign(when === undefined ? this.zeros : pick(when, this.zeros, this.buffer)));
  }

  dispose(): void {
    this.buffer.dispose();
    this.zeros.dispose();
  }
}
