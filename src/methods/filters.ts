// Which samples a method keeps, and the kept samples' rows.
import * as tf from '@tensorflow/tfjs-core';
import { softmaxAndEntropy } from '../kernels';

/** The option of the methods whose first filter is on entropy; each method's defaults say its value and where it came from. */
export interface MarginOptions {
  /** The entropy filter's margin (SAR's E0, EATA's e_margin, DeYO's filter) as a fraction of ln C. */
  marginFraction?: number;
}

/** Per sample: entropy strictly below the margin (the reliable-sample filter of SAR, EATA and DeYO). */
export function entropyBelow(entropies: Float32Array, margin: number): boolean[] {
  return Array.from(entropies, (e) => e < margin);
}

/**
 * The kept samples and what the first forward said about them: inputs,
 * logits, probabilities and entropies. Inside tf.tidy; nothing here is on a
 * gradient tape, so weights computed from it get no gradient.
 */
export function keptSamples(x: tf.Tensor4D, logits: tf.Tensor2D, keep: number[]) {
  const kept = keptRows(logits, keep);
  const { probabilities, entropies } = softmaxAndEntropy(kept);
  return { x: keptRows(x, keep), logits: kept, probs: probabilities, entropies };
}

/** A value per kept sample spread to the whole batch of `batch` rows, 0 for the others. Inside tf.tidy. */
export function scatterKept(values: tf.Tensor1D, keep: number[], batch: number): tf.Tensor1D {
  if (keep.length === batch) return values;
  const at = new Int32Array(batch).fill(keep.length);
  keep.forEach((row, i) => (at[row] = i));
  return tf.gather(tf.concat([values, tf.zeros([1])]), tf.tensor1d(at, 'int32')) as tf.Tensor1D;
}

/** Gathers the kept rows (or returns x itself when every row is kept). Inside tf.tidy. */
export function keptRows<T extends tf.Tensor>(x: T, keep: number[]): T {
  return keep.length === x.shape[0] ? x : (tf.gather(x, tf.tensor1d(keep, 'int32')) as T);
}
