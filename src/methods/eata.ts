import * as tf from '@tensorflow/tfjs-core';
import type { Backbone, BackboneTape } from '../model/backbone';
import type { CommonOptions } from './adapter';
import { entropyBelow, keptSamples, type MarginOptions } from './filters';
import { MARGIN_OPTIONS } from './options';
import { WeightedEntropyAdapter } from './weighted-entropy';
import { MovingAverage } from './moving-average';
import { FlatLayout } from './flat';
import { REF, TUNED, TUNING_LRS, type Default } from './defaults';
import { defineMethod } from './method';
import { selectNormParams } from './params';

export const EATA_DEFAULTS = {
  lr: { value: 1e-4, from: TUNED },
  marginFraction: { value: 0.4, from: REF('EATA: e_margin = 0.4 · ln C') },
  dMargin: { value: 0.05, from: `${TUNED}; also the reference's d_margin` },
  fisherAlpha: { value: 2000, from: REF('EATA: α = 2000') },
} as const satisfies Record<string, Default>;

const EATA = EATA_DEFAULTS;

export interface EataOptions extends CommonOptions, MarginOptions {
  /** Redundancy filter: keep a sample when |cos(m, p)| < dMargin (reference: 0.05). */
  dMargin?: number;
  /** Weight α of the anti-forgetting Fisher term (reference: 2000). */
  fisherAlpha?: number;
  /** Diagonal Fisher per adapted tensor, from `estimateFisher`; without it there is no Fisher term. */
  fisher?: ReadonlyMap<string, tf.Tensor>;
}

/**
 * EATA (Niu et al., ICML 2022): reliable filter E < e_margin; redundancy filter
 * against a moving average m of predicted probabilities; each kept sample's
 * entropy weighted by 1/exp(E − e_margin); plus Σ α·F·(θ − θ0)² against
 * forgetting. Backward and step only when some sample survives both filters.
 */
export class EataAdapter extends WeightedEntropyAdapter {
  readonly method = 'eata';
  readonly dMargin: number;
  readonly fisherAlpha: number;
  /** Diagonal Fisher in the flat layout (flat.ts), when given. */
  private readonly fisher: tf.Tensor1D | undefined;
  /** m, the moving average of the kept samples' probabilities. */
  private readonly probsEma: MovingAverage;

  constructor(model: Backbone, opts: EataOptions = {}) {
    super(model, opts, { lr: EATA.lr.value, marginFraction: EATA.marginFraction.value, includeFinalNorm: true, skipLastBlocks: 0 });
    this.dMargin = opts.dMargin ?? EATA.dMargin.value;
    this.fisherAlpha = opts.fisherAlpha ?? EATA.fisherAlpha.value;
    this.probsEma = new MovingAverage([this.numClasses], 0.9);
    if (opts.fisher) {
      const given = opts.fisher;
      for (const [name, p] of this.params) {
        const f = given.get(name);
        if (!f) throw new RangeError(`fisher lacks ${name}`);
        if (f.size !== p.size) throw new RangeError(`fisher ${name} has ${f.size} values, the parameter ${p.size}`);
      }
      this.fisher = tf.tidy(() => this.layout.concat(given));
    }
  }

  protected firstFilter(entropies: Float32Array): boolean[] {
    return entropyBelow(entropies, this.margin);
  }

  protected override adapt(x: tf.Tensor4D, logits: tf.Tensor2D, keep: number[], tape: BackboneTape): tf.Tensor {
    const { probs, entropies } = keptSamples(x, logits, keep);

    // Redundancy filter, once m exists: |cos(m, p)| < d_margin (cosine as torch: x·y / max(‖x‖‖y‖, 1e-8)).
    const m = this.probsEma.value;
    const hasM = tf.cast(this.probsEma.has, 'bool');
    const dots = tf.sum(tf.mul(probs, m), 1);
    const norms = tf.mul(tf.norm(probs, 'euclidean', 1), tf.norm(m));
    const cosine = tf.div(dots, tf.maximum(norms, 1e-8));
    const nonRedundant = tf.logicalOr(tf.logicalNot(hasM), tf.less(tf.abs(cosine), this.dMargin));
    const mask = tf.cast(nonRedundant, 'float32');
    const kept = tf.sum(mask);
    const anyKept = tf.greater(kept, 0);

    // m ← 0.9·m + 0.1·mean(p of the samples that passed both filters); the first time, m = that mean.
    const meanP = tf.div(tf.sum(tf.mul(probs, tf.expandDims(mask, 1)), 0), tf.maximum(kept, 1));
    this.probsEma.update(meanP, anyKept);

    // Sample weights 1/exp(E − e_margin) come from the first forward, so no gradient flows through them.
    const weights = tf.mul(tf.exp(tf.sub(this.margin, entropies)), mask) as tf.Tensor1D;
    // Σ α·F·(θ − θ0)², gradient 2α·F·(θ − θ0).
    const fisher = this.fisher;
    const fisherPenalty = fisher
      ? (theta: tf.Tensor1D) => {
          const drift = tf.sub(theta, this.sourceFlat);
          const weighted = tf.mul(fisher, drift);
          return { value: tf.mul(this.fisherAlpha, tf.sum(tf.mul(weighted, drift))), grad: tf.mul(weighted, 2 * this.fisherAlpha) as tf.Tensor1D };
        }
      : undefined;
    return this.weightedEntropyStep(logits, tape, keep, weights, kept, fisherPenalty);
  }

  protected override stateTensors(): Map<string, tf.Variable> {
    return new Map([
      ['probs_ema', this.probsEma.value],
      ['has_probs_ema', this.probsEma.has],
    ]);
  }

  protected override clearState(when?: tf.Tensor): void {
    this.probsEma.clear(when);
  }

  override dispose(): void {
    super.dispose();
    this.fisher?.dispose();
  }
}

/**
 * Diagonal Fisher of the given parameters on clean in-distribution images, as
 * EATA's reference estimates it: for each batch, cross-entropy against the
 * model's own arg-max, squared gradient; averaged over batches.
 *
 * `batchSize` defaults to 1 because the reference builds its Fisher loader
 * with the run's batch size, and every stream here runs at batch size 1: F is
 * then the mean of per-image squared gradients. From batch means (batch B) it
 * would be up to B times smaller, and α = 2000 that much weaker.
 *
 * The gradients come from the fast path's hand-written backward (the one the
 * methods use), not autodiff: a few ms an image instead of tens.
 */
export async function estimateFisher(
  model: Backbone,
  params: ReadonlyMap<string, tf.Variable>,
  images: tf.Tensor4D,
  batchSize = 1,
): Promise<Map<string, tf.Tensor>> {
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new RangeError(`fisher batch size must be a whole number ≥ 1, got ${batchSize}`);
  const layout = new FlatLayout(params);
  let sum: tf.Tensor1D = tf.zeros([layout.total]);
  const n = images.shape[0];
  let batches = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const next = tf.tidy(() => {
      const xb = tf.slice(images, [start, 0, 0, 0], [size, -1, -1, -1]);
      const { logits, tape } = model.forward(xb, model.param, true);
      // d(mean cross-entropy against the arg-max)/d(logits) = (softmax − one-hot) / B.
      const target = tf.oneHot(tf.argMax(logits, 1), logits.shape[1]);
      const dLogits = tf.div(tf.sub(tf.softmax(logits), target), size) as tf.Tensor2D;
      return tf.add(sum, tf.square(model.gradient(tape!, dLogits, layout))) as tf.Tensor1D;
    });
    sum.dispose();
    sum = next;
    batches++;
    // Let the page breathe between batches of a long estimate.
    if (batches % 32 === 0) await tf.nextFrame();
  }
  // tf.tidy keeps the tensors of an array it returns (not of a Map).
  const pieces = tf.tidy(() => [...layout.split(tf.div(sum, batches) as tf.Tensor1D).values()]);
  sum.dispose();
  return new Map(layout.names.map((name, i) => [name, pieces[i]!]));
}

export interface EataCreateOptions extends EataOptions {
  /** Clean in-distribution images to estimate the Fisher from (when `fisher` is not given). */
  fisherImages?: tf.Tensor4D;
  /** Images per Fisher batch (default 1: see estimateFisher). */
  fisherBatchSize?: number;
}

/** The adapter, with the Fisher estimated from `fisherImages` unless a precomputed `fisher` is given. */
async function createEata(model: Backbone, options: EataCreateOptions): Promise<EataAdapter> {
  let fisher = options.fisher;
  let owned: Map<string, tf.Tensor> | undefined;
  if (!fisher && options.fisherImages) {
    const params = selectNormParams(model, { skipLastBlocks: options.skipLastBlocks ?? 0, includeFinalNorm: options.includeFinalNorm ?? true });
    owned = await estimateFisher(model, params, options.fisherImages, options.fisherBatchSize);
    fisher = owned;
  }
  try {
    return new EataAdapter(model, { ...options, fisher });
  } finally {
    if (owned) for (const t of owned.values()) t.dispose();
  }
}

export const eata = defineMethod({
  name: 'eata',
  label: 'EATA',
  defaults: EATA_DEFAULTS,
  options: {
    ...MARGIN_OPTIONS,
    dMargin: { type: 'number', min: 0 },
    fisherAlpha: { type: 'number', min: 0 },
    fisher: { type: 'code', what: 'Fisher tensors' },
    fisherImages: { type: 'code', what: 'a tensor of clean images' },
    fisherBatchSize: { type: 'number', min: 1, integer: true },
  },
  usesCleanImages: true,
  create: createEata,
  searchSpace: TUNING_LRS.flatMap((lr) => [0.05, 0.4].map((dMargin): EataCreateOptions => ({ lr, dMargin }))),
});
