import * as tf from '@tensorflow/tfjs';
import type { ViT } from '../model/vit';
import { SarAdapter, type SarOptions } from './sar';
import type { MethodName } from './types';
import { meanAlignmentGrad } from './align';
import { CollapseWatch, type CollapseWatchOptions } from './collapse-watch';

export interface SarAlignOptions extends SarOptions, CollapseWatchOptions {
  /**
   * Weight λ of the feature-alignment term (align.ts) added to both SAR
   * losses; 0 turns it off. Default 10: `npm run bench:tune` at imagenet64
   * on the extra corruptions, 3 seeds (bench/results/tuning.json; with λ = 0
   * the mean is 0.7 lower, inside the spread: a tie).
   */
  alignWeight?: number;
}

/**
 * SAR with alignment to the source, our method for small LayerNorm models
 * (issue 14), in the order a frame meets it:
 * 1. input alignment (input-align.ts): the frame's pixel mean and spread
 *    clamped into the source's range; forward only;
 * 2. the prediction, with the pooled feature re-centred on the source's
 *    class-balanced mean (recenter.ts); forward only;
 * 3. SAR's reliable, sharpness-aware entropy minimization (sar.ts, steps
 *    2-7 unchanged), both of its losses plus a term that pulls the stream's
 *    feature mean toward the source's through the adapted norms (align.ts);
 * 4. recovery: SAR's low-entropy rule, and a watch for a one-class or a
 *    high-entropy collapse (collapse-watch.ts), which SAR's rule misses.
 * Defaults from `npm run bench:tune` on the extra corruptions (BENCHMARKS.md).
 */
export class SarAlignAdapter extends SarAdapter {
  override readonly method: MethodName = 'sar-align';
  readonly alignWeight: number;
  private readonly watch: CollapseWatch;
  /** Σ_d var_src,d: the source feature variance the alignment term is measured in. */
  private readonly sourceVariance: number;

  constructor(model: ViT, opts: SarAlignOptions = {}) {
    if (!opts.sourceStats) throw new TypeError("sar-align needs the model's source statistics (sourceStats)");
    super(model, { ...opts, recenter: opts.recenter ?? true, inputAlign: opts.inputAlign ?? true });
    this.alignWeight = opts.alignWeight ?? 10;
    this.sourceVariance = opts.sourceStats.featureVar.reduce((a, v) => a + v, 0);
    this.watch = new CollapseWatch(this.numClasses, opts);
  }

  protected override featureGrad(rowWeights: tf.Tensor1D | number): tf.Tensor2D | undefined {
    if (this.alignWeight === 0 || !this.recentering) return undefined;
    return meanAlignmentGrad(this.recentering, this.sourceVariance, this.alignWeight, rowWeights);
  }

  protected override collapsed(classes: Int32Array, entropies: Float32Array): boolean {
    return this.watch.observe(classes, entropies);
  }

  override reset(): void {
    super.reset();
    this.watch.clear();
  }
}
