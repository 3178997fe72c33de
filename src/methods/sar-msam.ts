import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../model/backbone';
import { entropyLoss, samAscent } from '../kernels';
import { scatterKept } from './filters';
import { sar, SAR_DEFAULTS, SarAdapter, type SarOptions } from './sar';
import { TUNED, TUNING_LRS, type Default } from './defaults';
import { defineMethod } from './method';

/** sar-msam's defaults: SAR's, but the learning rate and ρ, chosen on the extra corruptions for this perturbation. */
export const SAR_MSAM_DEFAULTS = {
  ...SAR_DEFAULTS,
  lr: { value: 1e-4, from: TUNED },
  rho: { value: 0.05, from: TUNED },
} as const satisfies Record<string, Default>;

/**
 * SAR with the perturbation of Momentum-SAM (Becker et al., 2024) in place
 * of SAM's, steps as numbered in docs/methods.md#sar-msam:
 * 1 forward → prediction, keeping nothing for a backward; 2 reliable filter
 * E < E0; 3 Loss1, reported only; 4 ε = −ρ·v/‖v‖ from the SGD momentum v,
 * no gradient at θ; 5-7 as SAR's (second forward and filter at θ+ε, g2,
 * SGD-momentum step from θ, EMA, reset).
 *
 * A reliable frame costs two forwards and one backward where SAR's costs
 * two of each. v is zero on the first step and after a reset: that step
 * is plain reliable entropy minimization.
 */
export class SarMsamAdapter extends SarAdapter {
  override readonly method: string = 'sar-msam';

  constructor(model: Backbone, opts: SarOptions = {}) {
    super(model, { ...opts, lr: opts.lr ?? SAR_MSAM_DEFAULTS.lr.value, rho: opts.rho ?? SAR_MSAM_DEFAULTS.rho.value });
  }

  // Step 1: no gradient is ever taken at θ, so the prediction's forward keeps nothing for a backward (nor takes a speculated one).
  protected override get adaptReadsFirstTape(): boolean {
    return false;
  }

  protected override adapt(x: tf.Tensor4D, logits: tf.Tensor2D, keep: number[]): tf.Tensor {
    // Step 3: Loss1 = mean entropy of the kept samples at θ, for the stats and the finiteness check; no gradient.
    const share = scatterKept(tf.fill([keep.length], 1 / keep.length) as tf.Tensor1D, keep, logits.shape[0]);
    const { loss: loss1 } = entropyLoss(logits, { weights: share });

    // Step 4: θ + ε, ε = −ρ·v/(‖v‖ + 1e-12), v the momentum buffer: the step the optimizer is already taking, at radius ρ.
    const theta = this.theta();
    const { ascended } = samAscent(theta, this.sgd.buffer, -this.rho);

    // Steps 5-7 as SAR's; the stats' gradient norm is ‖g2‖, the gradient the step uses.
    return this.descend(x, keep, { theta, ascended, loss1 });
  }
}

export const sarMsam = defineMethod({
  name: 'sar-msam',
  label: 'SAR (MSAM)',
  defaults: SAR_MSAM_DEFAULTS,
  options: {},
  extends: sar,
  create: (model, o: SarOptions) => new SarMsamAdapter(model, o),
  // ρ is a distance along the momentum's direction here, not along this frame's gradient: tried at SAR's 0.05 and ten times it.
  searchSpace: TUNING_LRS.flatMap((lr) => [0.05, 0.5].map((rho): SarOptions => ({ lr, rho }))),
});
