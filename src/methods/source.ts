import type * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../model/backbone';
import { Adapter, type CommonOptions } from './adapter';
import { entropyBelow } from './filters';

/**
 * No adaptation: the source model as it was trained (with `recenter`, its
 * features re-centred before the head, still forward only). `reliable` uses
 * SAR's E0 for comparison only.
 */
export class SourceAdapter extends Adapter {
  readonly method = 'source';
  protected override readonly adaptsAfterForward = false;

  constructor(model: Backbone, opts: Pick<CommonOptions, 'recenter' | 'inputAlign' | 'sourceStats'> = {}) {
    super(model, { skipLastBlocks: model.normUnits, includeFinalNorm: false }, 0, 0.9, opts);
  }

  protected firstFilter(entropies: Float32Array): boolean[] {
    return entropyBelow(entropies, 0.4 * this.lnC);
  }

  protected override adapt(): tf.Tensor {
    throw new Error('source never adapts');
  }
}
