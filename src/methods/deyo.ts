import * as tf from '@tensorflow/tfjs-core';
import type { Backbone, BackboneTape } from '../model/backbone';
import { mulberry32 } from '../data/random';
import type { CommonOptions } from './adapter';
import { entropyBelow, keptSamples, type MarginOptions } from './filters';
import { MARGIN_OPTIONS } from './options';
import { WeightedEntropyAdapter } from './weighted-entropy';
import { REF, TUNED, TUNING_LRS, type Default } from './defaults';
import { defineMethod } from './method';

export const DEYO_DEFAULTS = {
  lr: { value: 1e-4, from: TUNED },
  marginFraction: { value: 0.5, from: REF('DeYO: entropy filter 0.5 · ln C') },
  weightMarginFraction: { value: 0.4, from: REF('DeYO: E0 = 0.4 · ln C in the weight') },
  plpdThreshold: { value: 0.2, from: REF('DeYO: τ = 0.2 in wild settings') },
} as const satisfies Record<string, Default>;

const DEYO = DEYO_DEFAULTS;

/** Gives, for each of `count` samples, a permutation p of `patches` grid cells: output cell j shows input cell p[j]. */
export type PatchPermutation = (count: number, patches: number) => number[][];

export interface DeyoOptions extends CommonOptions, MarginOptions {
  /** E0 of the entropy weight exp(E0 − E), as a fraction of ln C (reference: 0.4). */
  weightMarginFraction?: number;
  /** PLPD threshold τ (0.2 in wild settings, 0.3 in mild ones). */
  plpdThreshold?: number;
  /** Grid side of the patch shuffle (reference: 4, i.e. 4×4 patches). */
  grid?: number;
  /** Source of the random patch orders (default: seeded, uniform). */
  patchPermutation?: PatchPermutation;
  seed?: number;
}

/**
 * DeYO (Lee et al., ICLR 2024): entropy filter E < 0.5·ln C; PLPD = p(ŷ|x) −
 * p(ŷ|x′) with x′ the patch-shuffled input, keep PLPD > τ; loss = mean of
 * E·(exp(E0 − E) + exp(PLPD)) over the kept samples. No SAM, no reset.
 */
export class DeyoAdapter extends WeightedEntropyAdapter {
  readonly method = 'deyo';
  readonly weightMargin: number;
  readonly plpdThreshold: number;
  readonly grid: number;
  private readonly permutation: PatchPermutation;

  constructor(model: Backbone, opts: DeyoOptions = {}) {
    super(model, opts, { lr: DEYO.lr.value, marginFraction: DEYO.marginFraction.value, includeFinalNorm: false });
    this.weightMargin = (opts.weightMarginFraction ?? DEYO.weightMarginFraction.value) * this.lnC;
    this.plpdThreshold = opts.plpdThreshold ?? DEYO.plpdThreshold.value;
    this.grid = opts.grid ?? 4;
    this.permutation = opts.patchPermutation ?? randomPermutations(mulberry32(opts.seed ?? 0));
  }

  protected firstFilter(entropies: Float32Array): boolean[] {
    return entropyBelow(entropies, this.margin);
  }

  protected override adapt(x: tf.Tensor4D, logits: tf.Tensor2D, keep: number[], tape: BackboneTape): tf.Tensor {
    const { x: xs, logits: firstLogits, probs, entropies } = keptSamples(x, logits, keep);
    const predicted = tf.oneHot(tf.argMax(firstLogits, 1), this.numClasses);

    // PLPD: how much the predicted class's probability drops when the object's shape is destroyed.
    // Warm-up must not draw from the stream of patch orders (the run would then differ from one without it).
    const cells = this.grid * this.grid;
    const perms = this.warmingUp ? keep.map(() => Array.from({ length: cells }, (_, j) => j)) : this.permutation(keep.length, cells);
    const shuffled = patchShuffle(xs, this.grid, perms);
    const shuffledProbs = tf.softmax(this.forwardAt(shuffled, this.model.param).logits);
    const plpd = tf.sum(tf.mul(tf.sub(probs, shuffledProbs), predicted), 1);
    const mask = tf.cast(tf.greater(plpd, this.plpdThreshold), 'float32');
    const kept = tf.sum(mask);
    // Weights from the first forward (no gradient through them): exp(E0 − E) + exp(PLPD).
    const weights = tf.mul(tf.add(tf.exp(tf.sub(this.weightMargin, entropies)), tf.exp(plpd)), mask) as tf.Tensor1D;
    return this.weightedEntropyStep(logits, tape, keep, weights, kept);
  }
}

export const deyo = defineMethod({
  name: 'deyo',
  label: 'DeYO',
  defaults: DEYO_DEFAULTS,
  options: {
    ...MARGIN_OPTIONS,
    weightMarginFraction: { type: 'number', min: 0 },
    // Any number: a negative one keeps every sample (an ablation).
    plpdThreshold: { type: 'number' },
    grid: { type: 'number', min: 1, integer: true },
    patchPermutation: { type: 'code', what: 'a function' },
    seed: { type: 'number', integer: true },
  },
  create: (model, o: DeyoOptions) => new DeyoAdapter(model, o),
  searchSpace: TUNING_LRS.map((lr): DeyoOptions => ({ lr })),
});

/** Uniform random permutations, drawn like the reference (arg-sort of uniform noise). */
export function randomPermutations(rand: () => number): PatchPermutation {
  return (count, patches) =>
    Array.from({ length: count }, () => {
      const keys = Array.from({ length: patches }, () => rand());
      return keys.map((_, i) => i).sort((a, b) => keys[a]! - keys[b]!);
    });
}

/**
 * Cuts each image into a grid×grid mosaic and rearranges the cells: output cell
 * j (row-major) shows input cell perms[b][j]. Sizes not divisible by the grid
 * are resized to the nearest smaller multiple and back, as the reference does.
 * Inside tf.tidy.
 */
export function patchShuffle(x: tf.Tensor4D, grid: number, perms: number[][]): tf.Tensor4D {
  const [n, H0, W0, C] = x.shape;
  const H = Math.floor(H0 / grid) * grid;
  const W = Math.floor(W0 / grid) * grid;
  const src = H === H0 && W === W0 ? x : tf.image.resizeBilinear(x, [H, W]);
  const ph = H / grid;
  const pw = W / grid;
  const index = new Int32Array(n * H * W);
  for (let b = 0; b < n; b++) {
    const perm = perms[b]!;
    for (let y = 0; y < H; y++) {
      for (let xx = 0; xx < W; xx++) {
        const cell = perm[Math.floor(y / ph) * grid + Math.floor(xx / pw)]!;
        const sy = Math.floor(cell / grid) * ph + (y % ph);
        const sx = (cell % grid) * pw + (xx % pw);
        index[b * H * W + y * W + xx] = b * H * W + sy * W + sx;
      }
    }
  }
  const out = tf.reshape(tf.gather(tf.reshape(src, [n * H * W, C]), tf.tensor1d(index, 'int32')), [n, H, W, C]) as tf.Tensor4D;
  return H === H0 && W === W0 ? out : tf.image.resizeBilinear(out, [H0, W0]);
}
