import * as tf from '@tensorflow/tfjs-core';
import type { FeatureRecentering } from './recenter';

/**
 * Feature alignment through the adapted norms (the mean part of FOA's
 * activation-statistics loss, ICML 2024, at batch size 1). FOA pulls a
 * batch's feature mean toward the source's; with one frame at a time the
 * test mean is a running estimate μ̂ (the class-balanced one of
 * recenter.ts), and each frame moves it by a = (1 − decay)/C of its own
 * feature. The loss
 *
 *   L = λ · ‖μ̂ − μ_src‖² / (a · V),   V = Σ_d var_src,d,
 *
 * measured in units of the source's feature variance, then has the gradient
 * dL/df = 2λ (μ̂ − μ_src) / V with respect to the frame's pooled feature f:
 * the same vector for every frame of a step, pushing the features that the
 * norms produce against the stream's mean shift. Re-centering undoes the
 * shift at the head; this term asks the norms to remove it, so that the
 * blocks' entropy signal comes from less-shifted features.
 *
 * Returns dL/df for each row [rows, D], row r weighted by rowWeights[r] (a
 * number n: n rows weighted 1/n), as the entropy loss weights its rows.
 * Inside tf.tidy.
 */
export function meanAlignmentGrad(recentering: FeatureRecentering, sourceVariance: number, weight: number, rowWeights: tf.Tensor1D | number): tf.Tensor2D {
  const scale = (2 * weight) / sourceVariance;
  // One row (batch size 1) needs no broadcast: the shift itself, scaled.
  if (rowWeights === 1) return tf.mul(recentering.shift, scale) as tf.Tensor2D;
  const weights = typeof rowWeights === 'number' ? tf.fill([rowWeights, 1], 1 / rowWeights) : tf.expandDims(rowWeights, 1);
  return tf.mul(tf.mul(weights, scale), recentering.shift) as tf.Tensor2D;
}
