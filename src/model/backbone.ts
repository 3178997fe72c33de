// What the methods (src/methods) and the engine need of a model, whatever its
// family: a forward over named norm parameters, the gradient of a loss with
// respect to the adapted ones, and which norms a method adapts. A family
// with a hand-written backward (the ViT, vit-backward.ts) answers `gradient`
// with it; any other gets tf.grads through its forward (`AutodiffTape`), so
// it can adapt before anyone writes a backward for it.
import * as tf from '@tensorflow/tfjs-core';
import { concatByLayout, type GradientLayout } from '../kernels';
import type { DecodedTensor } from './safetensors';
import { hashWeights } from './fingerprint';

export type { GradientLayout };

/**
 * A weight by its timm name: the model's own, or (for the norms) values a
 * method tries, such as SAM's θ + ε.
 */
export type ParamLookup = (name: string) => tf.Tensor;

/** What a forward keeps for its gradient. Made inside tf.tidy; keep() holds it past it, then dispose(). */
export interface BackboneTape {
  keep(): void;
  dispose(): void;
}

/** dLoss/dlogits (and dLoss/dfeatures) of a loss, from a forward's logits and features. */
export type LossGradient = (logits: tf.Tensor2D, features: tf.Tensor2D) => { dLogits: tf.Tensor2D; dFeatures?: tf.Tensor2D | undefined };

/** What `forwardGradient` gives: the forward's outputs, the loss's gradient, and the forward's tape. */
export interface ForwardGradient {
  logits: tf.Tensor2D;
  features: tf.Tensor2D;
  gradient: tf.Tensor1D;
  tape: BackboneTape;
}

/** Which norm parameters a method adapts (the family's "skip the top" rule where unset). */
export interface NormSelection {
  /**
   * How many of the last units keep their norms frozen: ViT blocks, ResNet
   * and ConvNeXt stages. Default: the family's rule (ViT: the last quarter
   * of the blocks, as SAR's reference skips blocks 9-11 of ViT-B; ResNet:
   * the last stage, as it skips layer4; ConvNeXt: the last stage likewise).
   */
  skipLastBlocks?: number;
  /** Whether a final norm after the last unit adapts (the ViT's norm / fc_norm, the ConvNeXt's head.norm). SAR: no. Tent/EATA: yes. */
  includeFinalNorm?: boolean;
}

export interface BackboneConfig {
  imageSize: number;
  inChannels: number;
  numClasses: number;
  classNames: string[];
  /** The side of a ViT's patches; absent for a family without them. */
  patchSize?: number;
}

export interface Backbone {
  /** 'vit', 'resnet-gn'… */
  readonly family: string;
  readonly config: BackboneConfig;
  /** Width of `features`, the pooled vector the head reads. */
  readonly featureWidth: number;
  /** The head's weight [classes, featureWidth] (timm's name), for methods that move features (re-centering). */
  readonly headWeightName: string;
  /** Units (blocks, stages) the selection's skipLastBlocks counts. */
  readonly normUnits: number;
  /** The norm layers' scale/shift variables in forward order: what any method may adapt. */
  readonly variables: ReadonlyMap<string, tf.Variable>;
  /** Every weight by timm name (the variables among them). */
  readonly params: ReadonlyMap<string, tf.Tensor>;
  /** A hash of the weights as loaded (fingerprint.ts): what a saved adaptation state checks it belongs to. */
  readonly weightsHash: string;
  /** One weight by timm name; throws for a name the model lacks. */
  param(name: string): tf.Tensor;
  /** Names of the norm parameters `selection` adapts, in forward order. */
  selectNorms(selection: NormSelection): string[];
  /**
   * Logits and pooled features for images [B, H, W, C] in [0, 1], the norms'
   * values from `norm`; with `save`, the tape `gradient` needs. `sameImages`:
   * the tape of an earlier forward on the same images, which a family may
   * reuse (the ViT's patch embedding). Inside tf.tidy.
   */
  forward(
    images: tf.Tensor4D,
    norm: ParamLookup,
    save?: boolean,
    sameImages?: BackboneTape,
  ): { logits: tf.Tensor2D; features: tf.Tensor2D; tape?: BackboneTape };
  /**
   * dLoss/d(adapted norms) laid out as `layout`, from dLoss/dlogits (and
   * dLoss/dfeatures) of the forward that made `tape`. Inside tf.tidy.
   */
  gradient(tape: BackboneTape, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D;
  /**
   * A forward and, in the same pass, the gradient (laid out as `layout`) of
   * a loss whose dLoss/dlogits (and dLoss/dfeatures) `loss` computes from
   * this forward's own outputs, taken as constants. Autodiff families have
   * it: their `gradient` re-runs the forward, this does not. A family with a
   * saved-activation backward (the ViT) leaves it out. The tape is the
   * forward's, for a `gradient` of another loss. `withFeatures`: the loss
   * has a term on the features (`loss` gives dFeatures). Inside tf.tidy.
   */
  forwardGradient?(images: tf.Tensor4D, norm: ParamLookup, layout: GradientLayout, loss: LossGradient, withFeatures?: boolean): ForwardGradient;
  /**
   * Widths of the per-block summaries `summaries` gives, in forward order
   * (ViT: each block's class token, all of the model's width; ResNet: each
   * residual block's output, average-pooled, its channel count).
   */
  readonly summaryWidths: readonly number[];
  /**
   * The plain (autodiff-able) forward with what source statistics keep:
   * logits, the pooled features the head reads, and each block's summary
   * [B, summaryWidths[l]]. Norm values from `norm` (default the model's own).
   * Inside tf.tidy.
   */
  summaries(images: tf.Tensor4D, norm?: ParamLookup): { logits: tf.Tensor2D; features: tf.Tensor2D; layers: tf.Tensor2D[] };
  /** Plain logits at the model's own parameters (evaluation). The caller owns the result. */
  logits(images: tf.Tensor4D): tf.Tensor2D;
  dispose(): void;
}

/** One piece of a written-out backward: dy at its output to dy at its input (none when `needInput` is false), recording its norms' gradients. */
export type BackStep = (dy: tf.Tensor, needInput: boolean, record: (norm: string, dScale: tf.Tensor, dShift: tf.Tensor) => void) => tf.Tensor | undefined;

/**
 * The tape of a SteppedBackbone (the ResNet, the ConvNeXt): its forward's
 * pieces' backward steps (of the family's kind S) in forward order, each
 * with the norms (timm prefixes) it holds; the tensors those steps read,
 * which it owns; and the stem's output, a function of the images alone that
 * a later forward on the same images may borrow (`sameImages`).
 */
export class SteppedTape<S = BackStep> implements BackboneTape {
  readonly steps: Array<TapeStep<S>> = [];
  /** The stem's output (the tape's own, or lent by an earlier tape of the same images). */
  stem?: tf.Tensor4D;
  private readonly own: tf.Tensor[] = [];

  constructor(readonly batch: number) {}

  step(norms: string[], back: S): void {
    this.steps.push({ norms: norms.flatMap((n) => [`${n}.weight`, `${n}.bias`]), back });
  }

  /** The steps a gradient of `names` runs: from the lowest that holds one of them up. Throws where none does. */
  from(names: readonly string[]): Array<TapeStep<S>> {
    const wanted = new Set(names);
    const lowest = this.steps.findIndex((s) => s.norms.some((n) => wanted.has(n)));
    if (lowest < 0) throw new RangeError(`no step of this forward holds ${names[0]} (nor any other of the ${names.length} names asked for)`);
    return this.steps.slice(lowest);
  }

  /** Makes `t` the tape's: kept with it, disposed with it. */
  hold<T extends tf.Tensor>(t: T): T {
    this.own.push(t);
    return t;
  }

  /** The stem output an earlier tape of these images lends (its batch the same), if any. */
  static lends(sameImages: BackboneTape | undefined, batch: number): tf.Tensor4D | undefined {
    return sameImages instanceof SteppedTape && sameImages.batch === batch ? sameImages.stem : undefined;
  }

  keep(): void {
    for (const t of this.own) tf.keep(t);
  }

  dispose(): void {
    tf.dispose(this.own);
  }
}

/** One step of a SteppedTape: its backward and the norm parameters it holds. */
export interface TapeStep<S> {
  norms: string[];
  back: S;
}

/**
 * The tape of a family without a hand-written backward: the images and the
 * norm lookup its forward saw, so that `autodiffGradient` can run the
 * forward again under tf.grads (a forward and a backward per gradient;
 * nothing is saved from the first forward). It owns no tensor: the images
 * and the lookup's values are the caller's, alive until the gradient is
 * taken (the adapter's frame and variables last the whole step), so keep()
 * and dispose() have nothing to do.
 */
export class AutodiffTape implements BackboneTape {
  constructor(
    readonly images: tf.Tensor4D,
    readonly norm: ParamLookup,
  ) {}

  keep(): void {}

  dispose(): void {}
}

/**
 * Σ dLogits·logits (+ Σ dFeatures·features) as one op, with dLogits (and
 * dFeatures) from `loss` on the op's own inputs: constants to the tape, as
 * a hand-written backward's dLogits are, since what runs inside a custom
 * gradient's forward is not recorded. (A stop-gradient on the logits alone
 * would leave the loss's own ops on the tape, for the engine to push zeros
 * back through.) Its gradient is dLogits (and dFeatures) times the incoming
 * dy, 1 here: the same numbers tf.grads gives for the sum of products.
 */
function lossSurrogate(loss: LossGradient, withFeatures: boolean): (logits: tf.Tensor2D, features: tf.Tensor2D) => tf.Scalar {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const logits = args[0] as tf.Tensor2D;
    const features = (withFeatures ? args[1] : undefined) as tf.Tensor2D | undefined;
    const save = args.at(-1) as tf.GradSaveFunc;
    const { dLogits, dFeatures } = loss(logits, features!);
    if (dFeatures && !withFeatures) throw new Error('forwardGradient: the loss gave dFeatures, but withFeatures was not set');
    const grads = withFeatures ? [dLogits, dFeatures ?? tf.zerosLike(features!)] : [dLogits];
    save(grads);
    const value = grads.map((d, i) => tf.sum(tf.mul(args[i] as tf.Tensor, d))).reduce((a, b) => tf.add(a, b)) as tf.Scalar;
    return { value, gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) => saved.map((d) => tf.mul(dy, d)) };
  });
  return (logits, features) => (withFeatures ? op(logits, features) : op(logits)) as tf.Scalar;
}

type PlainForward = (images: tf.Tensor4D, norm: ParamLookup) => { logits: tf.Tensor2D; features: tf.Tensor2D };

/**
 * The forward at `images` and `norm`, and dLoss/d(norms in `layout`) by
 * tf.grads of Σ dLogits·logits (+ Σ dFeatures·features), where `loss` makes
 * dLogits (and dFeatures) from the same forward's outputs (lossSurrogate):
 * one forward and one backward, the same numbers as a forward followed by
 * `autodiffGradient` with those dLogits. `withFeatures` false: the loss
 * gives no dFeatures, and the features get none of it.
 */
export function autodiffForwardGradient(
  forward: PlainForward,
  images: tf.Tensor4D,
  norm: ParamLookup,
  layout: GradientLayout,
  loss: LossGradient,
  withFeatures = false,
): ForwardGradient {
  const tape = new AutodiffTape(images, norm);
  const names = layout.names;
  if (names.length === 0) {
    const out = forward(images, norm);
    const { dLogits, dFeatures } = loss(out.logits, out.features);
    tf.dispose([dLogits, dFeatures ?? []]);
    return { ...out, gradient: tf.zeros([0]), tape };
  }
  const index = new Map(names.map((n, i) => [n, i]));
  const surrogate = lossSurrogate(loss, withFeatures);
  // tf.grads disposes everything its function made but the loss; the outputs are kept through it, then handed to the caller's scope.
  let kept: tf.Tensor[] = [];
  try {
    const grads = tf.grads((...values: tf.Tensor[]) => {
      const out = forward(images, (n) => {
        const i = index.get(n);
        return i === undefined ? norm(n) : values[i]!;
      });
      kept = [tf.keep(out.logits), tf.keep(out.features)];
      return surrogate(out.logits, out.features);
    })(names.map((n) => norm(n)));
    const gradient = concatByLayout(new Map(names.map((n, i) => [n, grads[i]!])), layout);
    return { logits: tf.clone(kept[0]!) as tf.Tensor2D, features: tf.clone(kept[1]!) as tf.Tensor2D, gradient, tape };
  } finally {
    tf.dispose(kept);
  }
}

/**
 * dLoss/d(norms in `layout`) by autodiff: Σ dLogits·logits (+ Σ dFeatures·features)
 * differentiated through `forward` at the tape's images and norm values.
 */
export function autodiffGradient(
  forward: (images: tf.Tensor4D, norm: ParamLookup) => { logits: tf.Tensor2D; features: tf.Tensor2D },
  tape: BackboneTape,
  dLogits: tf.Tensor2D,
  layout: GradientLayout,
  dFeatures?: tf.Tensor2D,
): tf.Tensor1D {
  if (!(tape instanceof AutodiffTape)) throw new TypeError('autodiffGradient needs the tape of an autodiff forward');
  if (layout.names.length === 0) return tf.zeros([0]);
  const names = layout.names;
  const index = new Map(names.map((n, i) => [n, i]));
  const at = names.map((n) => tape.norm(n));
  const grads = tf.grads((...values: tf.Tensor[]) => {
    const lookup: ParamLookup = (n) => {
      const i = index.get(n);
      return i === undefined ? tape.norm(n) : values[i]!;
    };
    const out = forward(tape.images, lookup);
    const loss = tf.sum(tf.mul(out.logits, dLogits));
    return dFeatures ? tf.add(loss, tf.sum(tf.mul(out.features, dFeatures))) : loss;
  })(at);
  return concatByLayout(new Map(names.map((n, i) => [n, grads[i]!])), layout);
}

/**
 * Each decoded weight as a tfjs tensor into `params`: a tf.Variable (also put
 * in `variables`) where `trainable(name)` holds, a constant elsewhere.
 * Returns the weights' hash (fingerprint.ts), taken while their values are
 * still on the CPU.
 */
export function makeParams(
  entries: Iterable<readonly [string, DecodedTensor]>,
  trainable: (name: string) => boolean,
  params: Map<string, tf.Tensor>,
  variables: Map<string, tf.Variable>,
): string {
  const all = [...entries];
  for (const [name, t] of all) {
    const value = tf.tensor(t.values, t.shape, 'float32');
    if (trainable(name)) {
      const v = tf.variable(value, true);
      value.dispose();
      params.set(name, v);
      variables.set(name, v);
    } else {
      params.set(name, value);
    }
  }
  return hashWeights(all);
}

/**
 * What a family written as one plain forward shares, whatever its backward:
 * its weights (frozen ones constants, the norms' scale/shift variables),
 * `param`, source-statistics summaries, evaluation and disposal. It writes
 * its forward once (`run`) and says which norms its methods adapt
 * (`selectNorms`); the adaptation forward and gradient are its own, or
 * AutodiffBackbone's.
 */
export abstract class PlainBackbone<C extends BackboneConfig = BackboneConfig> {
  abstract readonly family: string;
  abstract readonly headWeightName: string;
  abstract readonly featureWidth: number;
  abstract readonly normUnits: number;
  abstract readonly summaryWidths: readonly number[];
  readonly params = new Map<string, tf.Tensor>();
  readonly variables = new Map<string, tf.Variable>();
  readonly weightsHash: string;
  private disposed = false;

  /** `isNorm` tells the norm scale/shift tensors (the variables) from the frozen weights. */
  constructor(
    readonly config: C,
    weights: Iterable<readonly [string, DecodedTensor]>,
    isNorm: (name: string) => boolean,
  ) {
    this.weightsHash = makeParams(weights, isNorm, this.params, this.variables);
  }

  readonly param: ParamLookup = (name) => {
    const t = this.params.get(name);
    if (t === undefined) throw new Error(`${this.family} has no weight ${name}`);
    return t;
  };

  abstract selectNorms(selection: NormSelection): string[];

  /**
   * Logits and the pooled feature the head reads, the norms' scale/shift
   * from `norm`; `afterBlock` (when given) gets each block's summary
   * [B, summaryWidths[l]]. Plain differentiable tfjs ops. Inside tf.tidy.
   */
  protected abstract run(images: tf.Tensor4D, norm: ParamLookup, afterBlock?: (summary: tf.Tensor2D) => void): { logits: tf.Tensor2D; features: tf.Tensor2D };

  summaries(images: tf.Tensor4D, norm: ParamLookup = this.param): { logits: tf.Tensor2D; features: tf.Tensor2D; layers: tf.Tensor2D[] } {
    const layers: tf.Tensor2D[] = [];
    const out = this.checked().run(images, norm, (s) => layers.push(s));
    return { ...out, layers };
  }

  logits(images: tf.Tensor4D): tf.Tensor2D {
    // In tidy: called outside one, the forward's intermediates would outlive it.
    return tf.tidy(() => this.checked().run(images, this.param).logits);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.release();
    for (const t of [...this.params.values(), ...this.poolScales.values()]) t.dispose();
    this.poolScales.clear();
    this.params.clear();
    this.variables.clear();
  }

  /** Frees the family's own tensors (derived weights); the params are freed by dispose. */
  protected release(): void {}

  private readonly poolScales = new Map<number, tf.Scalar>();

  /** 1/n as a kept scalar (an average pool's backward over n positions): a number given to tf.mul would be an upload on a GPU every backward. */
  protected poolScale(n: number): tf.Scalar {
    let s = this.poolScales.get(n);
    if (s === undefined) this.poolScales.set(n, (s = tf.keep(tf.scalar(1 / n))));
    return s;
  }

  protected checked(): this {
    if (this.disposed) throw new Error(`${this.family} model used after dispose()`);
    return this;
  }
}

/**
 * A family with a written-out backward (the ResNet, the ConvNeXt): its
 * adaptation forward records each piece's backward step (of kind S) on a
 * SteppedTape, and the gradient runs them from the head (whose weight is
 * `headWeightName`, [classes, featureWidth]) down to the lowest step that
 * holds an adapted norm (`backward`).
 */
export abstract class SteppedBackbone<C extends BackboneConfig = BackboneConfig, S = BackStep> extends PlainBackbone<C> implements Backbone {
  abstract forward(
    images: tf.Tensor4D,
    norm: ParamLookup,
    save?: boolean,
    sameImages?: BackboneTape,
  ): { logits: tf.Tensor2D; features: tf.Tensor2D; tape?: BackboneTape };

  /** dLoss/d(adapted norms) laid out as `layout`, from dLoss/dlogits (and dLoss/dfeatures) of the forward that made `tape`. Inside tf.tidy. */
  gradient(tape: BackboneTape, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D {
    if (!(tape instanceof SteppedTape)) throw new TypeError(`${this.family}: gradient needs the tape of its own forward`);
    this.checked();
    if (layout.names.length === 0) return tf.zeros([0]);
    return this.backward((tape as SteppedTape<S>).from(layout.names), dLogits, layout, dFeatures);
  }

  /** The steps' backward, the highest first, from the head's; the lowest step needs no input gradient. Inside tf.tidy. */
  protected abstract backward(steps: Array<TapeStep<S>>, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D;

  /** `backward` for steps on tensors (BackStep). */
  protected tensorBackward(steps: Array<TapeStep<BackStep>>, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D {
    const wanted = new Set(layout.names);
    const grads = new Map<string, tf.Tensor>();
    const record = (norm: string, dScale: tf.Tensor, dShift: tf.Tensor) => {
      if (wanted.has(`${norm}.weight`)) grads.set(`${norm}.weight`, dScale);
      if (wanted.has(`${norm}.bias`)) grads.set(`${norm}.bias`, dShift);
    };
    let dy: tf.Tensor | undefined = tf.matMul(dLogits, this.param(this.headWeightName));
    if (dFeatures) dy = tf.add(dy, dFeatures);
    for (let i = steps.length - 1; i >= 0 && dy; i--) dy = steps[i]!.back(dy, i > 0, record);
    return concatByLayout(grads, layout);
  }

  /** The backward of the average pool over x [B, H, W, D]'s positions: dy [B, D] spread evenly over them. */
  protected meanPoolBack(shape: readonly number[]): BackStep {
    const [B, H, W, D] = shape as [number, number, number, number];
    return (dy) => {
      const spread = tf.reshape(H * W === 1 ? dy : tf.mul(dy, this.poolScale(H * W)), [B, 1, 1, D]);
      return H * W === 1 ? spread : tf.broadcastTo(spread, [B, H, W, D]);
    };
  }
}

/**
 * A family adapted through autodiff: the adaptation forward is `run`, and
 * the gradient tf.grads through it, taken with the forward where the method
 * can (forwardGradient) or by running it again.
 */
export abstract class AutodiffBackbone<C extends BackboneConfig = BackboneConfig> extends PlainBackbone<C> implements Backbone {
  forward(images: tf.Tensor4D, norm: ParamLookup, save = false): { logits: tf.Tensor2D; features: tf.Tensor2D; tape?: BackboneTape } {
    const out = this.checked().run(images, norm);
    return save ? { ...out, tape: new AutodiffTape(images, norm) } : out;
  }

  forwardGradient(images: tf.Tensor4D, norm: ParamLookup, layout: GradientLayout, loss: LossGradient, withFeatures = false): ForwardGradient {
    return autodiffForwardGradient((x, n) => this.checked().run(x, n), images, norm, layout, loss, withFeatures);
  }

  gradient(tape: BackboneTape, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D {
    return autodiffGradient((x, n) => this.checked().run(x, n), tape, dLogits, layout, dFeatures);
  }
}
