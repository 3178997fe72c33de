import * as tf from '@tensorflow/tfjs';
import type { ViT } from '../model/vit';
import { Adapter, allFinite, gradsByName, keptRows, packStats, type CommonOptions } from './adapter';
import { softmaxEntropy } from './entropy';
import { entropyBelow } from './filters';
import { globalNorm, samAscend, samRestore } from './sam';

export interface SarOptions extends CommonOptions {
  /** E0 as a fraction of ln C (reference: 0.4). */
  marginFraction?: number;
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
 * SAR (Niu et al., ICLR 2023), steps as numbered in REFERENCE.md:
 * 1 forward → prediction; 2 reliable filter E < E0; 3 Loss1, g; 4 SAM ascent;
 * 5 second forward at θ+ε, second filter, Loss2, EMA; 6 g2 at θ+ε, restore θ,
 * SGD-momentum step with g2; 7 reset to the source when the EMA < e_m.
 */
export class SarAdapter extends Adapter {
  readonly method = 'sar';
  readonly margin: number;
  readonly rho: number;
  readonly resetThreshold: number;
  readonly emaDecay: number;
  private readonly ema = tf.tidy(() => tf.variable(tf.scalar(0), false));
  private readonly hasEma = tf.tidy(() => tf.variable(tf.scalar(0), false));

  constructor(model: ViT, opts: SarOptions = {}) {
    super(model, { skipLastBlocks: opts.skipLastBlocks, includeFinalNorm: opts.includeFinalNorm ?? false }, opts.lr ?? 1e-3, opts.momentum);
    this.margin = (opts.marginFraction ?? 0.4) * this.lnC;
    this.rho = opts.rho ?? 0.05;
    this.resetThreshold = opts.resetThreshold ?? (0.2 * this.lnC) / Math.log(1000);
    this.emaDecay = opts.emaDecay ?? 0.9;
  }

  // Step 2: the reliable filter, E < E0.
  protected firstFilter(entropies: Float32Array): boolean[] {
    return entropyBelow(entropies, this.margin);
  }

  protected adapt(x: tf.Tensor4D, _logits: tf.Tensor2D, keep: number[]): tf.Tensor {
    const xs = keptRows(x, keep);
    const vars = [...this.params.values()];

    // Step 3: Loss1 = mean entropy of the kept samples; g = ∇θ Loss1.
    const first = tf.variableGrads(() => tf.mean(softmaxEntropy(this.model.logits(xs))) as tf.Scalar, vars);
    const g1 = gradsByName(this.params, first.grads);
    const gradNorm = globalNorm(g1.values());

    // Step 4: SAM ascent θ ← θ + ρ·g/(‖g‖ + 1e-12).
    const theta = samAscend(this.params, g1, gradNorm, this.rho);

    // Step 5: second forward at θ+ε; keep E2 < E0; Loss2 = mean of those.
    let count2!: tf.Tensor;
    let meanKept2!: tf.Tensor;
    const second = tf.variableGrads(() => {
      const e2 = softmaxEntropy(this.model.logits(xs));
      // step(E0 − E2) is 1 where E2 < E0; unlike a comparison it has a (zero) gradient, so it may sit on the tape.
      const mask2 = tf.step(tf.sub(this.margin, e2));
      count2 = tf.keep(tf.sum(mask2));
      const loss2 = tf.div(tf.sum(tf.mul(e2, mask2)), tf.maximum(count2, 1)) as tf.Scalar;
      meanKept2 = tf.keep(tf.div(tf.sum(tf.mul(e2, mask2)), count2)); // NaN when nothing is kept
      return loss2;
    }, vars);
    const g2 = gradsByName(this.params, second.grads);

    // Step 6: restore θ, then SGD-momentum with g2, only if something was kept and all is finite.
    samRestore(this.params, theta);
    const finite = allFinite(first.value, gradNorm, second.value, globalNorm(g2.values()));
    const gate = tf.logicalAnd(finite, tf.greater(count2, 0));
    this.sgd.step(this.params, g2, gate);

    // Step 5 (cont.): ema ← Loss2 the first time, then 0.9·ema + 0.1·Loss2.
    const blended = tf.add(tf.mul(this.ema, this.emaDecay), tf.mul(second.value, 1 - this.emaDecay));
    this.ema.assign(tf.where(gate, tf.where(tf.cast(this.hasEma, 'bool'), blended, second.value), this.ema) as tf.Scalar);
    this.hasEma.assign(tf.where(gate, tf.scalar(1), this.hasEma) as tf.Scalar);
    const emaNow = tf.where(tf.cast(this.hasEma, 'bool'), this.ema, tf.scalar(NaN));

    // Step 7: model recovery when the EMA says the model is collapsing.
    const reset = tf.logicalAnd(tf.cast(this.hasEma, 'bool'), tf.less(this.ema, this.resetThreshold));
    this.resetWhere(reset);

    const stats = packStats({
      updated: gate,
      kept: count2,
      loss: first.value,
      lossSecond: meanKept2,
      gradNorm,
      ema: emaNow,
      reset,
      nonFinite: tf.logicalNot(finite),
    });
    tf.dispose([count2, meanKept2]); // kept out of variableGrads' scope above
    return stats;
  }

  protected override stateTensors(): Map<string, tf.Variable> {
    return new Map([
      ['ema', this.ema],
      ['has_ema', this.hasEma],
    ]);
  }

  protected override clearState(when?: tf.Tensor): void {
    this.hasEma.assign(when === undefined ? tf.scalar(0) : tf.where(when, tf.scalar(0), this.hasEma as tf.Scalar));
  }
}
