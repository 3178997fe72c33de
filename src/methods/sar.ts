import * as tf from '@tensorflow/tfjs-core';
import type { Backbone, BackboneTape } from '../model/backbone';
import { allFinite, entropyLoss, l2Norm, pick, samAscent } from '../kernels';
import { Adapter, type CommonOptions } from './adapter';
import { entropyBelow, keptRows, scatterKept, type MarginOptions } from './filters';
import { float32Margin, ReliableRate, reliableShare, SpeculatedTape } from './speculate';
import { MARGIN_OPTIONS } from './options';
import { packStats } from './stats';
import { MovingAverage } from './moving-average';
import { REF, TUNED, TUNING_LRS, type Default } from './defaults';
import { defineMethod } from './method';

/** SAR's defaults: the reference's, but the learning rate, chosen on the extra corruptions. */
export const SAR_DEFAULTS = {
  lr: { value: 1e-4, from: TUNED },
  marginFraction: { value: 0.4, shown: '0.4 (E0 = 0.4 · ln C)', from: REF('SAR: E0 = 0.4 · ln C') },
  rho: { value: 0.05, from: REF('SAR: non-adaptive SAM, ρ = 0.05') },
  // A function of C: the paper's 0.2 is an entropy for 1,000 classes; for 10 classes 0.067, which the tuning also chose.
  resetThresholdAt1000: {
    value: 0.2,
    option: 'resetThreshold',
    shown: '0.2 · ln C / ln 1000 (0.067 for 10 classes)',
    from: `${REF('SAR: e_m = 0.2 for 1,000 classes')}, scaled like E0; the tuning chose the same 0.067`,
  },
  emaDecay: { value: 0.9, from: REF('SAR: EMA 0.9 / 0.1') },
} as const satisfies Record<string, Default>;

const SAR = SAR_DEFAULTS;

export interface SarOptions extends CommonOptions, MarginOptions {
  /** SAM radius ρ (reference: 0.05, non-adaptive SAM). */
  rho?: number;
  /**
   * Reset threshold e_m for the EMA of Loss2. The reference's 0.2 is an
   * absolute entropy chosen for 1,000 classes; the default scales it like E0:
   * 0.2 · ln C / ln 1000 (≈ 0.067 for 10 classes).
   */
  resetThreshold?: number;
  /** EMA decay for Loss2 (reference: 0.9). */
  emaDecay?: number;
}

/**
 * SAR (Niu et al., ICLR 2023), steps as numbered in docs/methods.md#sar:
 * 1 forward → prediction; 2 reliable filter E < E0; 3 Loss1, g; 4 SAM ascent;
 * 5 second forward at θ+ε, second filter, Loss2, EMA; 6 g2 at θ+ε, restore θ,
 * SGD-momentum step with g2; 7 reset to the source when the EMA < e_m.
 */
export class SarAdapter extends Adapter {
  readonly method: string = 'sar';
  readonly rho: number;
  readonly resetThreshold: number;
  readonly emaDecay: number;
  private readonly ema: MovingAverage;
  /** When to take the first gradient with the prediction's forward (speculate.ts); only for a model with forwardGradient. */
  private readonly reliableRate = new ReliableRate();

  constructor(model: Backbone, opts: SarOptions = {}) {
    super(model, opts, { lr: SAR.lr.value, marginFraction: SAR.marginFraction.value, includeFinalNorm: false });
    this.rho = opts.rho ?? SAR.rho.value;
    this.resetThreshold = opts.resetThreshold ?? (SAR.resetThresholdAt1000.value * this.lnC) / Math.log(1000);
    this.emaDecay = opts.emaDecay ?? SAR.emaDecay.value;
    this.ema = new MovingAverage([], this.emaDecay);
  }

  // Step 2: the reliable filter, E < E0.
  protected firstFilter(entropies: Float32Array): boolean[] {
    const reliable = entropyBelow(entropies, this.margin);
    this.reliableRate.observe(reliable.includes(true));
    return reliable;
  }

  /**
   * Step 1, and for a family whose gradient would re-run the forward
   * (Backbone.forwardGradient: autodiff), step 3's g taken in the same pass
   * while recent frames were mostly reliable (speculate.ts): the reliable
   * filter and Loss1's weights on the device, so g is the one step 3 would
   * compute after the read, and wasted if no sample passes.
   */
  protected override firstForward(x: tf.Tensor4D): { logits: tf.Tensor2D; tape?: BackboneTape } {
    if (!this.adaptReadsFirstTape || !this.model.forwardGradient || !this.reliableRate.speculate) return super.firstForward(x);
    const recentering = this.recentering;
    // The prediction is re-centred with the estimate before this frame; the observation of it comes before the loss, as in step 3.
    const offset = recentering ? tf.clone(recentering.offset) : undefined;
    const margin32 = float32Margin(this.margin);
    const out = this.model.forwardGradient(
      x,
      this.model.param,
      this.layout,
      (raw, features) => {
        const logits = recentering ? recentering.apply(raw) : raw;
        recentering?.observe(features, logits);
        const share = reliableShare(logits, margin32);
        return { dLogits: entropyLoss(logits, { weights: share }).dLogits, dFeatures: this.featureGrad(share) };
      },
      this.hasFeatureLoss,
    );
    const tape = new SpeculatedTape(out.tape, out.gradient);
    tape.keep();
    return { logits: offset ? (tf.add(out.logits, offset) as tf.Tensor2D) : out.logits, tape };
  }

  protected override adapt(x: tf.Tensor4D, logits: tf.Tensor2D, keep: number[], tape: BackboneTape): tf.Tensor {
    // Step 3: Loss1 = mean entropy of the kept samples; g = ∇θ Loss1, from the prediction's own forward (or taken with it).
    const share = scatterKept(tf.fill([keep.length], 1 / keep.length) as tf.Tensor1D, keep, logits.shape[0]);
    const { loss: loss1, dLogits: dLoss1 } = entropyLoss(logits, { weights: share });
    const g1 = tape instanceof SpeculatedTape ? tape.gradient : this.flatGrad(tape, dLoss1, this.featureGrad(share));
    const firstTape = tape instanceof SpeculatedTape ? tape.inner : tape;

    // Step 4: SAM ascent θ + ε, ε = ρ·g/(‖g‖ + 1e-12). θ itself stays in the variables.
    const theta = this.theta();
    const { ascended, gradNorm } = samAscent(theta, g1, this.rho);
    return this.descend(x, keep, { theta, ascended, loss1, gradNorm, firstTape });
  }

  /**
   * Steps 5-7 from θ+ε (`ascended`): the second forward and filter, g2 at
   * θ+ε, the SGD-momentum step from θ, the EMA and the reset. `gradNorm`
   * is the stats' gradient norm (‖g2‖ where it is not given);
   * `firstTape` lends the first forward's patch embedding when every
   * sample was kept. Inside tf.tidy.
   */
  protected descend(
    x: tf.Tensor4D,
    keep: number[],
    first: { theta: tf.Tensor1D; ascended: tf.Tensor1D; loss1: tf.Scalar; gradNorm?: tf.Scalar; firstTape?: BackboneTape },
  ): tf.Tensor {
    const { theta, loss1 } = first;
    const pieces = this.layout.split(first.ascended);
    const atAscent = (name: string) => pieces.get(name) ?? this.model.param(name);

    // Step 5: second forward at θ+ε; keep E2 < E0; Loss2 = mean of those. Step 6's g2 = ∇θ Loss2 at θ+ε with it, where the family takes both in one pass.
    const x2 = keptRows(x, keep);
    let second: { logits: tf.Tensor2D; tape?: BackboneTape };
    let g2: tf.Tensor1D | undefined;
    if (this.model.forwardGradient) {
      const recentering = this.recentering;
      const out = this.model.forwardGradient(
        x2,
        atAscent,
        this.layout,
        (raw) => ({
          dLogits: entropyLoss(recentering ? recentering.apply(raw) : raw, { margin: this.margin, mean: true }).dLogits,
          dFeatures: this.featureGrad(keep.length),
        }),
        this.hasFeatureLoss,
      );
      second = { logits: recentering ? recentering.apply(out.logits) : out.logits };
      g2 = out.gradient;
    } else {
      second = this.forwardAt(x2, atAscent, true, keep.length === x.shape[0] ? first.firstTape : undefined);
    }
    const { loss: loss2, count: count2, dLogits: dLoss2 } = entropyLoss(second.logits, { margin: this.margin, mean: true });
    const anyKept2 = tf.greater(count2, this.constant(0));
    const meanKept2 = pick(anyKept2, loss2, this.constant(NaN)); // NaN when nothing is kept

    // Step 6: back at θ, SGD-momentum with g2, only if something was kept and all is finite.
    g2 ??= this.flatGrad(second.tape!, dLoss2, this.featureGrad(keep.length));
    const g2Norm = l2Norm(g2);
    const gradNorm = first.gradNorm ?? g2Norm;
    const finite = allFinite(loss1, gradNorm, loss2, g2Norm);
    const gate = tf.logicalAnd(finite, anyKept2);
    const stepped = this.sgd.step(theta, g2, gate);

    // Step 5 (cont.): ema ← Loss2 the first time, then 0.9·ema + 0.1·Loss2 (when the update happens).
    const { value: ema, has: hasEma } = this.ema.update(loss2, gate);
    const emaNow = pick(hasEma, ema, this.constant(NaN));

    // Step 7: model recovery when the EMA says the model is collapsing.
    const reset = tf.logicalAnd(hasEma, tf.less(ema, this.constant(this.resetThreshold)));
    this.writeParams(this.resetWhere(reset, stepped));

    return packStats({
      updated: gate,
      kept: count2,
      loss: loss1,
      lossSecond: meanKept2,
      gradNorm,
      ema: emaNow,
      reset,
      nonFinite: tf.logicalNot(finite),
    });
  }

  /**
   * dLoss/dfeatures [rows, D] of a term on the pooled feature added to both
   * SAR losses, each row weighted by `rowWeights` (a number n: n rows
   * weighted 1/n); none in the paper's SAR. Inside tf.tidy.
   */
  protected featureGrad(_rowWeights: tf.Tensor1D | number): tf.Tensor2D | undefined {
    return undefined;
  }

  /** Whether featureGrad gives a term (what a one-pass forward and gradient must know before the loss is built). */
  protected get hasFeatureLoss(): boolean {
    return false;
  }

  protected override stateTensors(): Map<string, tf.Variable> {
    return new Map([
      ['ema', this.ema.value],
      ['has_ema', this.ema.has],
    ]);
  }

  protected override clearState(when?: tf.Tensor): void {
    this.ema.clear(when);
  }
}

export const sar = defineMethod({
  name: 'sar',
  label: 'SAR',
  defaults: SAR_DEFAULTS,
  options: {
    ...MARGIN_OPTIONS,
    // 0: no SAM (an ablation).
    rho: { type: 'number', min: 0 },
    // Any number: a negative one turns the recovery off (an ablation).
    resetThreshold: { type: 'number' },
    emaDecay: { type: 'number', min: 0, below: 1 },
  },
  create: (model, o: SarOptions) => new SarAdapter(model, o),
  // The reset threshold: its scaled default and the paper's absolute 0.2.
  searchSpace: TUNING_LRS.flatMap((lr) => [0.067, 0.2].map((resetThreshold): SarOptions => ({ lr, resetThreshold }))),
});
