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

  constructor(model: Backbone, opts: SourceOptions = {}) {
    // Only the feature options pass: nothing adapts, whatever else a caller sends.
    super(
      model,
      { recenter: opts.recenter, inputAlign: opts.inputAlign, sourceStats: opts.sourceStats },
      { lr: 0, includeFinalNorm: false, skipLastBlocks: model.normUnits },
    );
  }

  protected firstFilter(entropies: Float32Array): boolean[] {
    return entropyBelow(entropies, this.margin);
  }
}

export const source = defineMethod({
  name: 'source',
  label: 'no adaptation',
  defaults: {},
  options: {},
  create: (model, o: SourceOptions) => new SourceAdapter(model, o),
  searchSpace: [],
});
