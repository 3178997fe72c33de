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
 * SAR with feature alignment, our method for small LayerNorm models
 * (issue 14): SAR's reliable, sharpness-aware entropy minimization (sar.ts,
 * unchanged) on features re-centred to the source's class-balanced mean
 * (recenter.ts: forward only), each frame's intensity range first brought
 * into the source's (input-align.ts: forward only); optionally a term that pulls the stream's
 * feature mean toward the source's through the adapted LayerNorms
 * (align.ts); and a recovery that, beside SAR's low-entropy rule, also sees
 * a high-entropy or a one-class collapse (collapse-watch.ts).
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
