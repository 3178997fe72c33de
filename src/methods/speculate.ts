// SAR's first gradient computed with the prediction's forward, before the
// step's read says whether any sample is reliable: for the families adapted
// through autodiff (Backbone.forwardGradient), where a gradient taken after
// the read would run the whole forward again. A tfjs gradient tape cannot
// outlive the read (an await), so the gradient is either taken with the
// forward, before anyone knows whether it is needed, or the forward is paid
// twice. The filter runs on the device as it will on the CPU (the same
// entropies against the same margin), so a speculated gradient is the one
// the update would have computed; on a frame with no reliable sample it is
// wasted. ReliableRate decides when the bet is worth it.
import * as tf from '@tensorflow/tfjs-core';
import type { BackboneTape } from '../model/backbone';
import { softmaxAndEntropy } from '../kernels';

/**
 * The smallest float32 ≥ `margin`: for a float32 entropy e (what the read
 * brings back), e < margin on the CPU exactly when e < this on the device,
 * where the comparison is in float32. So the device's mask is the CPU's
 * filter, sample for sample.
 */
export function float32Margin(margin: number): number {
  const f = Math.fround(margin);
  if (f >= margin || Number.isNaN(f)) return f;
  if (f === 0) return 2 ** -149; // the smallest float32 above 0
  // The next float32 up: one more in the bits' magnitude above 0, one less below it.
  const bits = new Float32Array([f]);
  new Int32Array(bits.buffer)[0]! += f > 0 ? 1 : -1;
  return bits[0]!;
}

/**
 * Per row: 1/(rows below the margin) where the row's entropy is below
 * `margin32`, 0 elsewhere: SAR's Loss1 weights (the mean over the reliable
 * samples), on the device. All zeros when no row passes. Inside tf.tidy.
 */
export function reliableShare(logits: tf.Tensor2D, margin32: number): tf.Tensor1D {
  const { entropies } = softmaxAndEntropy(logits);
  const mask = tf.cast(tf.less(entropies, margin32), 'float32');
  return tf.div(mask, tf.maximum(tf.sum(mask), 1)) as tf.Tensor1D;
}

/** A first forward's tape with the gradient speculated with it: the step owns both until its end. */
export class SpeculatedTape implements BackboneTape {
  constructor(
    readonly inner: BackboneTape,
    readonly gradient: tf.Tensor1D,
  ) {}

  keep(): void {
    tf.keep(this.gradient);
    this.inner.keep();
  }

  dispose(): void {
    this.gradient.dispose();
    this.inner.dispose();
  }
}

/**
 * Whether to speculate on the next frame: a moving rate of frames with at
 * least one reliable sample, from the CPU's filter of each step.
 *
 * The bet, for a forward F and a backward K: speculating saves a forward on
 * a reliable frame and wastes a backward on an unreliable one, so it pays
 * while the rate p of reliable frames is above K/(F + K). For the GroupNorm
 * ResNet on wasm K ≈ 1.4·F (bench/profile-autodiff.ts), so p above about
 * 0.58. Frames come in runs (a scene, a corruption), so the recent rate
 * predicts the next frame: with decay 0.75 and threshold 0.6, a reliable
 * run's end wastes two backwards before speculation stops, and after a long
 * unreliable run it restarts on the fifth frame of a reliable one (rate
 * 0.68 after four): an odd reliable frame does not restart it. The rate
 * starts at 1: a stream starts as the source model sees it, mostly reliable
 * in every benchmark here. Decided on the CPU from the step's one read; a
 * mask on the device instead would pay the backward on every frame.
 */
export class ReliableRate {
  static readonly DECAY = 0.75;
  static readonly THRESHOLD = 0.6;
  private rate = 1;

  get speculate(): boolean {
    return this.rate >= ReliableRate.THRESHOLD;
  }

  observe(anyReliable: boolean): void {
    this.rate = ReliableRate.DECAY * this.rate + (1 - ReliableRate.DECAY) * (anyReliable ? 1 : 0);
  }
}
