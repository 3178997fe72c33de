import type { Backbone } from '../model/backbone';
import { Adapter, type CommonOptions } from './adapter';
import { entropyBelow } from './filters';
import { defineMethod } from './method';

export type SourceOptions = Pick<CommonOptions, 'recenter' | 'inputAlign' | 'sourceStats'>;

/**
 * No adaptation: the source model as it was trained (with `recenter`, its
 * features re-centred before the head, still forward only). `reliable` uses
 * SAR's E0 for comparison only.
 */
export class SourceAdapter extends Adapter {
  readonly method = 'source';
  readonly margin = 0.4 * this.lnC;

  constructor(model: Backbone, opts: SourceOptions = {}) {
    super(model, { skipLastBlocks: model.normUnits, includeFinalNorm: false }, 0, 0.9, opts);
  }

  protected firstFilter(entropies: Float32Array): boolean[] {
    return entropyBelow(entropies, this.margin);
  }
}

export const source = defineMethod({
  name: 'source',
  label: 'no adaptation',
  defaults: {},
  needsSourceStats: false,
  usesCleanImages: false,
  create: (model, o: SourceOptions) => new SourceAdapter(model, o),
  searchSpace: [],
});
