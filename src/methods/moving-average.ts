import * as tf from '@tensorflow/tfjs-core';
import { movingAverage, pick, truthy } from '../kernels';

/**
 * A moving average kept on the device, as SAR keeps Loss2's (for its reset)
 * and EATA the kept samples' mean probabilities (for its redundancy filter):
 * m ← x the first time, then decay·m + (1 − decay)·x, and only where a gate
 * holds, so that a skipped update leaves it as it was without a GPU→CPU read.
 */
export class MovingAverage {
  readonly value: tf.Variable;
  /** 1 once the average holds a value, else 0 (float32, as saved states store it). */
  readonly has: tf.Variable;

  constructor(
    shape: number[],
    readonly decay: number,
  ) {
    // tidy frees the zeros the variables are made from (tidy never disposes variables themselves).
    this.value = tf.tidy(() => tf.variable(tf.zeros(shape), false));
    this.has = tf.tidy(() => tf.variable(tf.scalar(0), false));
  }

  /** Folds x in where the boolean scalar `gate` holds; returns the average and whether it has a value (boolean). Inside tf.tidy. */
  update(x: tf.Tensor, gate: tf.Tensor): { value: tf.Tensor; has: tf.Tensor } {
    const { value, has } = movingAverage(this.value, this.has, x, gate, this.decay);
    this.value.assign(value);
    this.has.assign(has);
    return { value, has: truthy(has) };
  }

  /** Forgets the average where `when` (boolean scalar) holds, always when undefined. */
  clear(when?: tf.Tensor): void {
    // zerosLike, not tf.scalar(0): a fill on the device rather than an upload on every step (SAR clears where its reset holds).
    tf.tidy(() => this.has.assign(when === undefined ? tf.zerosLike(this.has) : pick(when, tf.zerosLike(this.has) as tf.Tensor, this.has as tf.Tensor)));
  }
}
