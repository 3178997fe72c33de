import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../model/backbone';
import { allFinite, entropyLoss, l2Norm } from '../kernels';
import { Adapter, type CommonOptions } from './adapter';
import { packStats } from './stats';
import { TUNED, TUNING_LRS, type Default } from './defaults';
import { defineMethod } from './method';

export const TENT_DEFAULTS = {
  lr: { value: 1e-4, from: TUNED },
} as const satisfies Record<string, Default>;

/**
 * Tent (Wang et al., ICLR 2021): one forward, loss = mean entropy of the
 * batch, one SGD-momentum step. The prediction comes from that same forward,
 * made before the update. As in the SAR paper's Tent for LayerNorm models,
 * every norm's scale/shift adapts (no skipped blocks), no filter, no reset.
 */
export interface TentOptions extends CommonOptions {
  /**
   * Clip the gradient to this global L2 norm before the step (not part of
   * Tent; the SAR paper's ablation tries it as a cheaper defence than SAR's).
   */
  clipNorm?: number;
}

export class TentAdapter extends Adapter {
  readonly method = 'tent';
  readonly clipNorm: number;

  constructor(model: Backbone, opts: TentOptions = {}) {
    super(model, opts, { lr: TENT_DEFAULTS.lr.value, includeFinalNorm: true, skipLastBlocks: 0 });
    this.clipNorm = opts.clipNorm ?? Infinity;
  }

  protected firstFilter(entropies: Float32Array): boolean[] {
    return Array.from(entropies, () => true);
  }

  protected override firstForward(x: tf.Tensor4D): { logits: tf.Tensor2D; stats: tf.Tensor } {
    const { logits, features, gradient } = this.forwardAndGradient(x);
    this.recentering?.observe(features, logits);
    const { loss } = entropyLoss(logits, { mean: true });
    let g = gradient;
    const gradNorm = l2Norm(g);
    const finite = allFinite(loss, gradNorm);
    if (Number.isFinite(this.clipNorm)) g = tf.mul(g, tf.minimum(1, tf.div(this.clipNorm, tf.add(gradNorm, 1e-12)))) as tf.Tensor1D;
    this.writeParams(this.sgd.step(this.theta(), g, finite));
    const stats = packStats({ updated: finite, kept: tf.scalar(x.shape[0]), loss, gradNorm, nonFinite: tf.logicalNot(finite) });
    return { logits, stats };
  }

  /** The (re-centred) logits, features and the gradient of the mean entropy: in one pass where the family has one (autodiff), else forward then backward. */
  private forwardAndGradient(x: tf.Tensor4D): { logits: tf.Tensor2D; features: tf.Tensor2D; gradient: tf.Tensor1D } {
    const recentering = this.recentering;
    const centred = (raw: tf.Tensor2D) => (recentering ? recentering.apply(raw) : raw);
    if (this.model.forwardGradient) {
      const out = this.model.forwardGradient(x, this.model.param, this.layout, (raw) => ({ dLogits: entropyLoss(centred(raw), { mean: true }).dLogits }));
      return { logits: centred(out.logits), features: out.features, gradient: out.gradient };
    }
    const { logits, features, tape } = this.forwardAt(x, this.model.param, true);
    return { logits, features, gradient: this.flatGrad(tape!, entropyLoss(logits, { mean: true }).dLogits) };
  }
}

export const tent = defineMethod({
  name: 'tent',
  label: 'Tent',
  defaults: TENT_DEFAULTS,
  // Infinity: no clipping.
  options: { clipNorm: { type: 'number', above: 0, infinite: true } },
  create: (model, o: TentOptions) => new TentAdapter(model, o),
  searchSpace: TUNING_LRS.map((lr): TentOptions => ({ lr })),
});
