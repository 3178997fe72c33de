import * as tf from '@tensorflow/tfjs-core';
import type { SourceStats } from '../model/source-stats';
import { inputAlign, type InputRange } from '../kernels';
import { TUNED, type Default } from './defaults';

/** The input alignment's tail fraction, chosen with sar-align on the extra corruptions. */
export const INPUT_QUANTILE: Default = { value: 0.05, option: 'inputAlign.quantile', from: TUNED };

export interface InputAlignOptions {
  /**
   * Tail fraction q: an image's pixel mean and standard deviation are kept
   * between the q and 1 − q quantiles of the source images' (default:
   * INPUT_QUANTILE, chosen by bench:tune with sar-align).
   */
  quantile?: number;
}

/**
 * Input alignment: each frame's intensity statistics brought into the range
 * the model saw in training, per image, so it works on a stream whose shift
 * changes every frame (the mixed-shift scenario) where a running estimate
 * cannot. A frame with pixel mean m and standard deviation s becomes
 * (x − m)·s′/s + m′ (clipped to [0, 1]), where s′ and m′ are s and m
 * clamped to the source's [q, 1 − q] quantiles of the per-image values
 * (source-stats.ts). A frame already in range is left as it is, so clean
 * accuracy does not move; a washed-out frame (low contrast, fog) gets its
 * contrast back, an over-bright one is darkened toward the brightest the
 * source had. Forward only, no state, no read.
 *
 * This is the per-image analogue of what re-estimated batch statistics give
 * a BatchNorm model at its input; it is our own step (the FOA family aligns
 * features; docs/methods.md#sar-align), measured in BENCHMARKS.md.
 */
export class InputAlignment {
  readonly quantile: number;
  readonly meanRange: [number, number];
  readonly stdRange: [number, number];

  constructor(stats: SourceStats, o: InputAlignOptions = {}) {
    this.quantile = o.quantile ?? INPUT_QUANTILE.value;
    if (!(this.quantile >= 0 && this.quantile < 0.5)) throw new RangeError(`inputAlign quantile must be in [0, 0.5), got ${this.quantile}`);
    const at = (q: Float32Array, level: number) => q[Math.round(level * 100)]!;
    this.meanRange = [at(stats.inputMeanQuantiles, this.quantile), at(stats.inputMeanQuantiles, 1 - this.quantile)];
    this.stdRange = [at(stats.inputStdQuantiles, this.quantile), at(stats.inputStdQuantiles, 1 - this.quantile)];
  }

  /** The range each frame's pixel mean and standard deviation are clamped into. */
  get range(): InputRange {
    return { meanLo: this.meanRange[0], meanHi: this.meanRange[1], stdLo: this.stdRange[0], stdHi: this.stdRange[1] };
  }

  /** x [B, H, W, C] in [0, 1] → the aligned frames. Inside tf.tidy. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return inputAlign(x, this.range);
  }
}
