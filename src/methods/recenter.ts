import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../model/backbone';
import type { SourceStats } from '../model/source-stats';
import { recenterObserve, recenterShift, type RecenterSource } from '../kernels';
import type { Default } from './defaults';

/** The decay of the class means' running averages. */
export const RECENTER_DECAY: Default = {
  value: 0.9,
  option: 'recenter.decay',
  from: 'the probe in issue 14 (never more than 1.1 points below no adaptation under label shift at 0.9)',
};

export interface RecenterOptions {
  /** Decay of each class's running feature mean (default: RECENTER_DECAY). */
  decay?: number;
  /**
   * Bias-corrected estimate: the shift is Σ_c (m_c − m_c^src) / Σ_c w_c,
   * w_c = 1 − decay^(frames predicted as c), so the first frames already give
   * a full-size estimate (the plain average over classes grows from zero as
   * classes are seen). Default false.
   */
  biasCorrected?: boolean;
}

/**
 * Class-balanced feature re-centering, a batch-size-1 stand-in for the batch
 * statistics a LayerNorm model lacks (the feature-shift step of FOA, ICML
 * 2024, and NEO's re-centring, 2025). The head reads f − μ̂ + μ_src instead of
 * the pooled feature f, where μ_src is the source's class-balanced feature
 * mean and μ̂ the test stream's: the average over classes of a running mean
 * per predicted class, each started at that class's source mean. Averaging
 * over classes keeps a one-class block of a label-shifted stream from
 * dragging μ̂ to that class (a plain running mean does: 80.3 → 24.1 in the
 * issue's probe).
 *
 * The head is linear, so the shift is a constant added to the logits:
 * W·(f − μ̂ + μ_src) + b = W·f + b + W·(μ_src − μ̂). It needs no gradient
 * (μ̂ is a statistic of past frames) and leaves dLoss/dlogits, and so every
 * backward, as it is: forward only, one small product per step.
 */
export class FeatureRecentering {
  readonly decay: number;
  /** Running feature mean per predicted class, [C, D]. */
  readonly classMeans: tf.Variable;
  /** W·(μ_src − μ̂) [1, C], the logit shift, kept in step with classMeans. */
  readonly offset: tf.Variable;
  /** μ̂ − μ_src [1, D], the stream's estimated feature shift (what the alignment term pulls against). */
  readonly shift: tf.Variable;
  /** w_c = 1 − decay^(frames of class c so far), [C]: how much of m_c is the stream's. */
  readonly classWeights: tf.Variable;
  readonly biasCorrected: boolean;
  /** The source's class means [C, D], their mean, and head.weight [C, D]. */
  private readonly source: RecenterSource;

  constructor(model: Backbone, stats: SourceStats, o: RecenterOptions = {}) {
    const C = model.config.numClasses;
    const D = model.featureWidth;
    if (stats.numClasses !== C || stats.width !== D) {
      throw new RangeError(`source statistics are for ${stats.numClasses} classes × width ${stats.width}, the model has ${C} × ${D}`);
    }
    this.decay = o.decay ?? RECENTER_DECAY.value;
    if (!(this.decay >= 0 && this.decay < 1)) throw new RangeError(`recenter decay must be in [0, 1), got ${this.decay}`);
    const classMeans = tf.tensor2d(stats.classMeans, [C, D]);
    this.source = { classMeans, mean: tf.tidy(() => tf.mean(classMeans, 0) as tf.Tensor1D), head: model.param(model.headWeightName) as tf.Tensor2D };
    this.classMeans = tf.variable(classMeans, false);
    this.classWeights = tf.tidy(() => tf.variable(tf.zeros([C]), false));
    this.biasCorrected = o.biasCorrected ?? false;
    this.offset = tf.tidy(() => tf.variable(tf.zeros([1, C]), false));
    this.shift = tf.tidy(() => tf.variable(tf.zeros([1, D]), false));
  }

  /** Logits as the head would give them for the re-centred feature. Inside tf.tidy. */
  apply(logits: tf.Tensor2D): tf.Tensor2D {
    return tf.add(logits, this.offset) as tf.Tensor2D;
  }

  /**
   * Folds this step's features [B, D] into the running mean of the class each
   * was predicted as (from the re-centred `logits`), after the prediction: a
   * frame is classified with what the frames before it said. Frames with a
   * non-finite feature change nothing. Inside tf.tidy.
   */
  observe(features: tf.Tensor2D, logits: tf.Tensor2D): void {
    const next = recenterObserve(this.state(), this.source, features, logits, { decay: this.decay, biasCorrected: this.biasCorrected });
    this.classMeans.assign(next.means);
    this.classWeights.assign(next.weights);
    this.offset.assign(next.offset);
    this.shift.assign(next.shift);
  }

  /** Back to the source class means (no shift). */
  clear(): void {
    tf.tidy(() => {
      this.classMeans.assign(this.source.classMeans);
      this.classWeights.assign(tf.zerosLike(this.classWeights));
      this.refreshOffset();
    });
  }

  /** Recomputes the logit shift from classMeans (after an import). Inside tf.tidy. */
  refreshOffset(): void {
    const { offset, shift } = recenterShift(
      this.classMeans as tf.Tensor as tf.Tensor2D,
      this.classWeights as tf.Tensor as tf.Tensor1D,
      this.source,
      this.biasCorrected,
    );
    this.shift.assign(shift);
    this.offset.assign(offset);
  }

  /** The running state as the kernels read it. */
  private state() {
    return {
      means: this.classMeans as tf.Tensor as tf.Tensor2D,
      weights: this.classWeights as tf.Tensor as tf.Tensor1D,
      offset: this.offset as tf.Tensor as tf.Tensor2D,
      shift: this.shift as tf.Tensor as tf.Tensor2D,
    };
  }

  dispose(): void {
    tf.dispose([this.classMeans, this.classWeights, this.offset, this.shift, this.source.classMeans, this.source.mean]);
  }
}
