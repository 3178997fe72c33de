/** What happened to the model because of one step's samples. */
export interface UpdateReport {
  /** The step whose samples drove this update. */
  step: number;
  /** The adapted parameters changed. */
  updated: boolean;
  /** Samples that entered the final loss (after every filter). */
  kept: number;
  /** The method's loss on the kept samples (SAR: Loss1 at θ). NaN when nothing was kept. */
  loss: number;
  /** SAR: Loss2, the mean entropy at θ+ε of the samples kept by the second filter. */
  lossSecond: number;
  /** Global L2 norm of the (first) gradient over the adapted tensors. */
  gradNorm: number;
  /** SAR's moving average of Loss2 after this step; NaN when there is none (start, after a reset). */
  ema: number;
  /** The model was restored to its source weights after this update. */
  reset: boolean;
  /** A loss or gradient was NaN/Infinite, so the update was skipped and nothing changed. */
  nonFinite: boolean;
}

export interface StepResult {
  step: number;
  batchSize: number;
  numClasses: number;
  /** Arg-max classes of the forward made before this step's update. */
  classes: Int32Array;
  /** Softmax probabilities [batch × classes], row-major, before the update. */
  probabilities: Float32Array;
  /** Prediction entropies per sample, before the update. */
  entropies: Float32Array;
  /** Per sample: passed the method's first (entropy) filter. */
  reliable: boolean[];
  /** An update was queued for this step (some sample passed the first filter). */
  adapting: boolean;
  /** The values of step()'s `alongside` tensor, brought back in the same read. */
  alongside?: Float32Array;
  /**
   * The most recent update outcome that reached the CPU with this step. The
   * engine pays one GPU→CPU read per step, so an update that runs after the
   * prediction is reported with the next step (or by `flush()`); `update.step`
   * says which step it belongs to. Tent's update, computed with the prediction,
   * is reported with its own step.
   */
  update?: UpdateReport;
}
