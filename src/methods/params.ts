import type * as tf from '@tensorflow/tfjs-core';
import type { Backbone, NormSelection } from '../model/backbone';

/** Which norms a method adapts: the backbone family's "skip the top" rule where unset (model/backbone.ts). */
export type ParamSelection = NormSelection;

/** The norm scale/shift variables a method adapts, in forward order. */
export function selectNormParams(model: Backbone, sel: ParamSelection = {}): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const name of model.selectNorms(sel)) out.set(name, model.variables.get(name)!);
  return out;
}
