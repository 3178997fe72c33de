// The stats vector: an update's outcome as a few floats, packed on the device
// and read back with the next step's one GPU→CPU read.
import type * as tf from '@tensorflow/tfjs-core';
import { packScalars } from '../kernels';
import type { UpdateReport } from './types';

export const STATS_LENGTH = 8;
/** Index of each field in the device-side stats vector. */
export const S = { updated: 0, kept: 1, loss: 2, lossSecond: 3, gradNorm: 4, ema: 5, reset: 6, nonFinite: 7 } as const;

export function decodeStats(step: number, v: ArrayLike<number>, offset = 0): UpdateReport {
  const at = (i: number) => v[offset + i]!;
  return {
    step,
    updated: at(S.updated) > 0.5,
    kept: Math.round(at(S.kept)),
    loss: at(S.loss),
    lossSecond: at(S.lossSecond),
    gradNorm: at(S.gradNorm),
    ema: at(S.ema),
    reset: at(S.reset) > 0.5,
    nonFinite: at(S.nonFinite) > 0.5,
  };
}

/** What the stats vector holds where a field is missing. */
const STATS_FALLBACK: Record<keyof typeof S, number> = { updated: 0, kept: 0, loss: NaN, lossSecond: NaN, gradNorm: NaN, ema: NaN, reset: 0, nonFinite: 0 };
const STATS_FIELDS = (Object.keys(S) as Array<keyof typeof S>).sort((a, b) => S[a] - S[b]);

/** Packs device scalars into the stats vector (S; a missing field NaN, or 0 for a flag or a count). */
export function packStats(fields: {
  updated: tf.Tensor;
  kept: tf.Tensor;
  loss: tf.Tensor;
  lossSecond?: tf.Tensor;
  gradNorm: tf.Tensor;
  ema?: tf.Tensor;
  reset?: tf.Tensor;
  nonFinite: tf.Tensor;
}): tf.Tensor {
  return packScalars(
    STATS_FIELDS.map((name) => fields[name]),
    STATS_FIELDS.map((name) => STATS_FALLBACK[name]),
  );
}
