import type * as tf from '@tensorflow/tfjs-core';
import type { Backbone, NormSelection } from '../model/backbone';

/** The norm scale/shift variables a method adapts, in forward order (the family's "skip the top" rule where the selection leaves it open). */
export function selectNormParams(model: Backbone, sel: NormSelection = {}): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const name of model.selectNorms(sel)) out.set(name, model.variables.get(name)!);
  return out;
}
