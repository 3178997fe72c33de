import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../model/backbone';
import { sar, SarAdapter, type SarOptions } from './sar';
import { meanAlignmentGrad } from './align';
import { COLLAPSE_WATCH_DEFAULTS, CollapseWatch, type CollapseWatchOptions } from './collapse-watch';
import { TUNED, type Default } from './defaults';
import { INPUT_QUANTILE } from './input-align';
import { defineMethod } from './method';
import { RECENTER_DECAY } from './recenter';

export const SAR_ALIGN_DEFAULTS = {
  lr: { value: 1e-3, from: TUNED },
  alignWeight: { value: 10, from: TUNED },
  inputQuantile: INPUT_QUANTILE,
  recenterDecay: RECENTER_DECAY,
  ...COLLAPSE_WATCH_DEFAULTS,
} as const satisfies Record<string, Default>;

const ALIGN = SAR_ALIGN_DEFAULTS;

export interface SarAlignOptions extends SarOptions, CollapseWatchOptions {
  /**
   * Weight λ of the feature-alignment term (align.ts) added to both SAR
   * losses; 0 turns it off. Default: SAR_ALIGN_DEFAULTS.
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
 * 4. recovery: SAR's low-entropy rule, and a watch (collapse-watch.ts) for
 *    what that rule misses: a one-class or a high-entropy collapse, and
 *    predictions that drift away from the source model's on the same frames.
 * Defaults from `npm run bench:tune` on the extra corruptions (BENCHMARKS.md).
 */
export class SarAlignAdapter extends SarAdapter {
  override readonly method: string = 'sar-align';
  readonly alignWeight: number;
  private readonly watch: CollapseWatch;
  /** Σ_d var_src,d: the source feature variance the alignment term is measured in. */
  private readonly sourceVariance: number;

  constructor(model: Backbone, opts: SarAlignOptions = {}) {
    if (!opts.sourceStats) throw new TypeError("sar-align needs the model's source statistics (sourceStats)");
    super(model, {
      ...opts,
      lr: opts.lr ?? ALIGN.lr.value,
      recenter: opts.recenter ?? { decay: ALIGN.recenterDecay.value },
      inputAlign: opts.inputAlign ?? { quantile: ALIGN.inputQuantile.value },
    });
    this.alignWeight = opts.alignWeight ?? ALIGN.alignWeight.value;
    this.sourceVariance = opts.sourceStats.featureVar.reduce((a, v) => a + v, 0);
    this.watch = new CollapseWatch(this.numClasses, {
      oneClassShare: opts.oneClassShare ?? ALIGN.oneClassShare.value,
      highEntropyFraction: opts.highEntropyFraction ?? ALIGN.highEntropyFraction.value,
      collapseDecay: opts.collapseDecay ?? ALIGN.collapseDecay.value,
      collapseWarmup: opts.collapseWarmup ?? ALIGN.collapseWarmup.value,
      agreementFloor: opts.agreementFloor ?? ALIGN.agreementFloor.value,
    });
  }

  protected override featureGrad(rowWeights: tf.Tensor1D | number): tf.Tensor2D | undefined {
    if (this.alignWeight === 0 || !this.recentering) return undefined;
    return meanAlignmentGrad(this.recentering, this.sourceVariance, this.alignWeight, rowWeights);
  }

  protected override get hasFeatureLoss(): boolean {
    return this.alignWeight !== 0 && this.recentering !== undefined;
  }

  /**
   * The source model's class for each frame, for the watch's agreement rule:
   * the same aligned frame and the same re-centering as the prediction, only
   * the norms at their source values, so that the agreement measures what the
   * updates alone have done. One forward more per frame, with no tape; its B
   * numbers ride in the step's one read. None while θ is the source's (before
   * the first update and after each reset): the two forwards would be the
   * same, and collapsed() takes the prediction's own classes instead.
   */
  protected override readout(x: tf.Tensor4D): tf.Tensor | undefined {
    if (!this.watch.watchesAgreement || !this.movedFromSource) return undefined;
    return tf.cast(tf.argMax(this.forwardAt(x, this.sourceParam).logits, 1), 'float32');
  }

  protected override collapsed(classes: Int32Array, entropies: Float32Array, sourceClasses?: Float32Array): boolean {
    return this.watch.observe(classes, entropies, this.watch.watchesAgreement ? (sourceClasses ?? classes) : undefined);
  }

  /** The collapse watch's moving agreement with the source (NaN before the first frame or with the rule off). */
  get sourceAgreement(): number {
    return this.watch.watchesAgreement ? this.watch.sourceAgreement : NaN;
  }

  override reset(): void {
    super.reset();
    this.watch.clear();
  }

  /** A restored state starts the watch afresh (it holds no state worth saving: a few hundred frames' shares). */
  override importState(bytes: Uint8Array | ArrayBuffer): void {
    super.importState(bytes);
    this.watch.clear();
  }
}

export const sarAlign = defineMethod({
  name: 'sar-align',
  label: 'SAR + align',
  defaults: SAR_ALIGN_DEFAULTS,
  options: {
    alignWeight: { type: 'number', min: 0 },
    oneClassShare: { type: 'number', above: 0, max: 1 },
    highEntropyFraction: { type: 'number', above: 0, max: 1 },
    collapseDecay: { type: 'number', min: 0, below: 1 },
    collapseWarmup: { type: 'number', min: 0, integer: true },
    agreementFloor: { type: 'number', min: 0, below: 1 },
  },
  extends: sar,
  needsSourceStats: true,
  create: (model, o: SarAlignOptions) => new SarAlignAdapter(model, o),
  // SAR's reset threshold stays at its scaled default; the new knobs are lr, the alignment weight and the input
  // alignment's tail q, and at the middle point the bias-corrected re-centering (recenter.ts).
  searchSpace: [
    ...[3e-4, 1e-3, 3e-3].flatMap((lr) =>
      [0, 10].flatMap((alignWeight) => [0.01, 0.02, 0.05].map((quantile): SarAlignOptions => ({ lr, alignWeight, inputAlign: { quantile } }))),
    ),
    { lr: 1e-3, alignWeight: 10, inputAlign: { quantile: 0.02 }, recenter: { biasCorrected: true } },
    { lr: 1e-3, alignWeight: 0, inputAlign: { quantile: 0.02 }, recenter: { biasCorrected: true } },
  ],
});
