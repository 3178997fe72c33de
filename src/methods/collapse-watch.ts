import type { Default } from './defaults';

/** The watch's thresholds: our choices, not tuned (sar-align's table in docs/methods.md). */
export const COLLAPSE_WATCH_DEFAULTS = {
  oneClassShare: { value: 0.9, from: 'our choice, not tuned (the collapse watch did not fire in the ablation runs)' },
  highEntropyFraction: { value: 0.8, from: 'our choice, not tuned' },
  collapseDecay: { value: 0.99, from: 'our choice, not tuned (a horizon of about 100 frames)' },
  collapseWarmup: { value: 200, from: 'our choice, not tuned' },
  agreementFloor: {
    value: 0.8,
    from: 'npm run bench:agreement on the 4 extra corruptions, both shipped models, 3 seeds, 250 images a corruption: below the lowest moving agreement seen there (0.85), so that the rule never fired on them; on 1,000-image label-shift streams of the same corruptions (seed 100) it fires, and scores +1.6 points (ViT) and a tie (ResNet) against the rule off (bench/results/agreement-ls1000-*.json)',
  },
} as const satisfies Record<string, Default>;

const W = COLLAPSE_WATCH_DEFAULTS;

export interface CollapseWatchOptions {
  /**
   * Reset when the moving share of the most-predicted class exceeds this
   * (default: COLLAPSE_WATCH_DEFAULTS; 1 turns it off). A label-shifted stream changes its
   * majority class every block; a collapsed model keeps one for hundreds of
   * frames.
   */
  oneClassShare?: number;
  /**
   * Reset when the moving mean of the prediction entropy exceeds this
   * fraction of ln C (default: COLLAPSE_WATCH_DEFAULTS; 1 turns it off): a model that has
   * become unsure of everything passes no reliable filter, so without this
   * it would never update its way out again.
   */
  highEntropyFraction?: number;
  /**
   * Reset when the moving share of frames on which the adapted model
   * predicts the same class as the source model falls below this (default:
   * COLLAPSE_WATCH_DEFAULTS; 0 turns it off). The collapse it catches (issue
   * 25 item 7, frames turned by 90° under label shift) keeps its entropy
   * ordinary and its classes spread, so neither rule above sees it: only the
   * predictions drifting away from the source's on the very same frames do.
   */
  agreementFloor?: number;
  /** Decay of the moving averages (default: COLLAPSE_WATCH_DEFAULTS). */
  collapseDecay?: number;
  /** Frames after a start or reset before any rule may fire (default: COLLAPSE_WATCH_DEFAULTS). */
  collapseWarmup?: number;
}

/**
 * Watches the predictions for the collapses SAR's recovery does not see
 * (SAR resets on a *low*-entropy EMA): one class for everything, high
 * entropy everywhere, or, given the source model's classes on the same
 * frames, predictions that have drifted away from the source's. CPU only,
 * from the values a step reads anyway.
 */
export class CollapseWatch {
  readonly oneClassShare: number;
  readonly highEntropy: number;
  readonly decay: number;
  readonly warmup: number;
  readonly agreementFloor: number;
  private share: Float64Array;
  private entropy = 0;
  /** Moving share of frames whose class is the source's (unnormalized, like the others). */
  private agreement = 0;
  private frames = 0;

  constructor(
    readonly numClasses: number,
    o: CollapseWatchOptions = {},
  ) {
    this.oneClassShare = o.oneClassShare ?? W.oneClassShare.value;
    this.highEntropy = (o.highEntropyFraction ?? W.highEntropyFraction.value) * Math.log(numClasses);
    this.decay = o.collapseDecay ?? W.collapseDecay.value;
    this.warmup = o.collapseWarmup ?? W.collapseWarmup.value;
    this.agreementFloor = o.agreementFloor ?? W.agreementFloor.value;
    this.share = new Float64Array(numClasses);
  }

  /** Whether the agreement rule is on: then observe() needs the source's classes. */
  get watchesAgreement(): boolean {
    return this.agreementFloor > 0;
  }

  /**
   * Folds one step's predictions in; true when the model looks collapsed
   * (and the watch restarts). `sourceClasses`: the source model's class for
   * each frame, needed when the agreement rule is on.
   */
  observe(classes: ArrayLike<number>, entropies: ArrayLike<number>, sourceClasses?: ArrayLike<number>): boolean {
    if (this.watchesAgreement && !sourceClasses) throw new TypeError("the collapse watch's agreement rule needs the source model's classes");
    const d = this.decay;
    for (let b = 0; b < classes.length; b++) {
      const e = entropies[b]!;
      if (!Number.isFinite(e)) continue;
      for (let c = 0; c < this.numClasses; c++) this.share[c]! *= d;
      this.share[classes[b]!]! += 1 - d;
      this.entropy = d * this.entropy + (1 - d) * e;
      if (sourceClasses) this.agreement = d * this.agreement + (1 - d) * (sourceClasses[b] === classes[b] ? 1 : 0);
      this.frames++;
    }
    if (this.frames < this.warmup) return false;
    // Bias-corrected: the averages start at zero.
    const norm = 1 - d ** this.frames;
    const top = Math.max(...this.share) / norm;
    const collapsed =
      (this.oneClassShare < 1 && top > this.oneClassShare) ||
      (this.highEntropy < Math.log(this.numClasses) && this.entropy / norm > this.highEntropy) ||
      (this.watchesAgreement && this.agreement / norm < this.agreementFloor);
    if (collapsed) this.clear();
    return collapsed;
  }

  clear(): void {
    this.share.fill(0);
    this.entropy = 0;
    this.agreement = 0;
    this.frames = 0;
  }

  /** The moving agreement with the source (bias-corrected; NaN before the first frame): for probes and tests. */
  get sourceAgreement(): number {
    return this.frames === 0 ? NaN : this.agreement / (1 - this.decay ** this.frames);
  }
}
