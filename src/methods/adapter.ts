import * as tf from '@tensorflow/tfjs-core';
import type { Backbone, BackboneTape, NormSelection, ParamLookup } from '../model/backbone';
import { finiteFlag, pick, softmaxAndEntropy } from '../kernels';
import { InvalidInputError, NonFiniteOutputError } from './errors';
import { LastFinite } from './last-finite';
import type { MarginOptions } from './filters';
import { selectNormParams } from './params';
import { SgdMomentum } from './sgd';
import { FlatLayout } from './flat';
import { decodeStats, STATS_LENGTH } from './stats';
import { fingerprintOf, readState, writeState } from './state';
import type { StepResult, UpdateReport } from './types';
import { FeatureRecentering, type RecenterOptions } from './recenter';
import { InputAlignment, type InputAlignOptions } from './input-align';
import type { SourceStats } from '../model/source-stats';

export interface CommonOptions extends NormSelection {
  /** SGD learning rate. */
  lr?: number;
  /** SGD momentum (0.9 in every reference). */
  momentum?: number;
  /**
   * Class-balanced feature re-centering before the head (recenter.ts), for
   * any method; needs `sourceStats`.
   */
  recenter?: boolean | RecenterOptions;
  /**
   * Per-frame input alignment (input-align.ts): each frame's pixel mean and
   * spread clamped to the source's range before the model, for any method;
   * needs `sourceStats`.
   */
  inputAlign?: boolean | InputAlignOptions;
  /** The model's source statistics (model/source-stats.ts), for `recenter`, `inputAlign` and alignment. */
  sourceStats?: SourceStats;
}

/** A method's own defaults for the options every method takes: what a caller's options fall back to. */
export interface MethodBase {
  lr: number;
  /** 0.9 unless the method says otherwise. */
  momentum?: number;
  includeFinalNorm: boolean;
  /** Unset: the family's rule for which top blocks to leave alone. */
  skipLastBlocks?: number;
  /** The reliable filter's margin as a fraction of ln C; a method without a filter leaves it unset and shows SAR's 0.4. */
  marginFraction?: number;
}

/**
 * What every method shares: input checks, the one GPU→CPU read per step, the
 * source snapshot for resets, SGD-momentum, and export/import of the adapted state.
 *
 * A step is: (1) forward at the current weights, giving the prediction that is
 * returned for the input; (2) one read of the probabilities, entropies and the
 * previous update's stats; (3) the method's first filter on the CPU; (4) if any
 * sample passed, the method's update, queued on the device with every further
 * decision (later filters, non-finite guards, EMA, reset) made there, so no
 * other read is needed. An input with no reliable sample costs one forward.
 *
 * The first forward keeps what its backward needs (model/vit.ts), so the
 * update's first gradient reuses the prediction's forward; the update
 * arithmetic runs on the adapted values as one flat vector (flat.ts) and is
 * written back to the model's variables once per update.
 */
export abstract class Adapter {
  /** The method's name (its registry entry's). */
  abstract readonly method: string;
  /** The adapted LayerNorm scale/shift variables, by timm name. */
  readonly params: Map<string, tf.Variable>;
  readonly numClasses: number;
  readonly lnC: number;
  stepCount = 0;
  updateCount = 0;
  resetCount = 0;
  /** Called with every update report as it reaches the CPU. */
  onUpdate?: (report: UpdateReport) => void;
  protected readonly source = new Map<string, tf.Tensor>();
  /** The adapted tensors' layout as one vector, and the source values in it. */
  protected readonly layout: FlatLayout;
  protected readonly sourceFlat: tf.Tensor1D;
  protected readonly sgd: SgdMomentum;
  /** Feature re-centering before the head, when the options ask for it. */
  protected readonly recentering: FeatureRecentering | undefined;
  /** Per-frame input alignment, when the options ask for it. */
  protected readonly inputAlignment: InputAlignment | undefined;
  private pending: { step: number; stats: tf.Tensor } | null = null;
  /** The adapted state that last gave finite outputs, to go back to when a frame's are not. */
  private readonly lastFinite = new LastFinite();
  private undelivered: UpdateReport | undefined;
  private disposed = false;
  /** Scalars the update reads every step, made once (constant()). */
  private readonly constants = new Map<number, tf.Scalar>();

  constructor(
    readonly model: Backbone,
    features: CommonOptions & MarginOptions,
    base: MethodBase,
  ) {
    if ((features.recenter || features.inputAlign) && !features.sourceStats) {
      throw new TypeError(
        `${features.recenter ? 'recenter' : 'inputAlign'} needs the model's source statistics (sourceStats: computeSourceStats or the source-stats.safetensors beside the model)`,
      );
    }
    const selection: NormSelection = {
      skipLastBlocks: features.skipLastBlocks ?? base.skipLastBlocks,
      includeFinalNorm: features.includeFinalNorm ?? base.includeFinalNorm,
    };
    const lr = features.lr ?? base.lr;
    const momentum = features.momentum ?? base.momentum ?? 0.9;
    this.params = selectNormParams(model, selection);
    for (const [name, p] of this.params) this.source.set(name, tf.clone(p));
    this.layout = new FlatLayout(this.params);
    this.sourceFlat = tf.tidy(() => this.layout.concat(this.source));
    this.sgd = new SgdMomentum(this.layout.total, lr, momentum);
    this.numClasses = model.config.numClasses;
    this.lnC = Math.log(this.numClasses);
    this.margin = (features.marginFraction ?? base.marginFraction ?? 0.4) * this.lnC;
    this.recentering = features.recenter
      ? new FeatureRecentering(model, features.sourceStats!, features.recenter === true ? {} : features.recenter)
      : undefined;
    this.inputAlignment = features.inputAlign ? new InputAlignment(features.sourceStats!, features.inputAlign === true ? {} : features.inputAlign) : undefined;
  }

  get lr(): number {
    return this.sgd.lr;
  }
  set lr(value: number) {
    if (!(value >= 0 && Number.isFinite(value))) throw new RangeError(`lr must be a finite number ≥ 0, got ${value}`);
    this.sgd.lr = value;
  }

  /** The entropy margin E0 of the method's reliable filter, nats (a method without one gives SAR's, for comparison). */
  readonly margin: number;

  /**
   * A scalar tensor of `value`, made once and kept until dispose(). An op
   * given a JS number makes a new tensor of it on every call: on WebGPU an
   * upload in the middle of the step, with a staging buffer of its own and a
   * break in the compute pass.
   */
  protected constant(value: number): tf.Scalar {
    let c = this.constants.get(value);
    if (c === undefined) {
      c = tf.keep(tf.scalar(value));
      this.constants.set(value, c);
    }
    return c;
  }

  /** Method-specific state tensors (EMA, moving probabilities...) that reset clears and export saves. */
  protected stateTensors(): Map<string, tf.Variable> {
    return new Map();
  }

  /** Clears the method-specific state where `when` holds (all of it when undefined). Inside tf.tidy. */
  protected clearState(_when?: tf.Tensor): void {}

  /** Per sample: does it pass the method's first filter? (CPU, from the first forward's entropies.) */
  protected abstract firstFilter(entropies: Float32Array, probabilities: Float32Array): boolean[];

  /**
   * Queues the update for the kept samples on the device and returns the
   * stats vector (stats.ts). Runs inside tf.tidy; `logits` and `tape` are
   * the first forward's (whole batch), `keep` the indices that passed the
   * first filter. A method without it never updates after the forward (no
   * adaptation; Tent, which updates in its forward).
   */
  protected adapt?(x: tf.Tensor4D, logits: tf.Tensor2D, keep: number[], tape: BackboneTape): tf.Tensor;

  /** Whether anything is queued after the forward. */
  private get adaptsAfterForward(): boolean {
    return this.adapt !== undefined;
  }

  /** Whether `adapt` reads the first forward's tape (a method that takes no gradient at θ says no, and its forward saves nothing). */
  protected get adaptReadsFirstTape(): boolean {
    return this.adaptsAfterForward;
  }

  /**
   * The first forward, keeping its tape for `adapt` when `adapt` reads it.
   * Methods that update from this very forward (Tent) override it to return
   * their stats too. Runs inside tf.tidy.
   */
  protected firstForward(x: tf.Tensor4D): { logits: tf.Tensor2D; stats?: tf.Tensor; tape?: BackboneTape } {
    const { logits, features, tape } = this.forwardAt(x, this.model.param, this.adaptReadsFirstTape);
    this.recentering?.observe(features, logits);
    tape?.keep();
    return tape ? { logits, tape } : { logits };
  }

  /**
   * The model's forward with the norms' values from `norm`, its logits
   * re-centred when the method re-centres, with the estimate as it stands
   * (the prediction's forward uses the frames before this one; forwards after
   * it, SAR's second or DeYO's shuffled one, also this frame). Inside tf.tidy.
   */
  protected forwardAt(x: tf.Tensor4D, norm: ParamLookup, save = false, sameImages?: BackboneTape) {
    const out = this.model.forward(x, norm, save, sameImages);
    return this.recentering ? { ...out, logits: this.recentering.apply(out.logits) } : out;
  }

  /**
   * θ as one vector, made once while the variables hold the data it was made
   * from: a tfjs tensor's data never changes, and assigning a variable gives
   * it new data (so a reset, an import or any other write is seen). A step
   * reads θ twice (the last-finite copy, SAM's ascent); the concatenation of
   * every adapted tensor is an engine call on the host and several
   * dispatches on WebGPU. Kept by the adapter: callers must not dispose it.
   */
  private thetaFlat: { ids: readonly object[]; flat: tf.Tensor1D } | undefined;

  /** The adapted values as one vector (the adapter's; do not dispose it). Inside tf.tidy. */
  protected theta(): tf.Tensor1D {
    const ids = this.paramData();
    const c = this.thetaFlat;
    if (c && c.ids.every((id, i) => id === ids[i])) return c.flat;
    return this.rememberTheta(this.layout.concat(this.params), ids);
  }

  /** Keeps `flat` (or a tensor sharing its data) as θ for the variables' data `ids`. Inside tf.tidy. */
  private rememberTheta(flat: tf.Tensor1D, ids: readonly object[]): tf.Tensor1D {
    this.thetaFlat?.flat.dispose();
    // A clone shares flat's data: no copy, and no tie to a caller's tensor (a variable of lastFinite's, say) that may be assigned later.
    const kept = tf.keep(tf.clone(flat));
    this.thetaFlat = { ids, flat: kept };
    return kept;
  }

  /** The data each adapted variable holds now (a new object after every assign). */
  private paramData(): object[] {
    return [...this.params.values()].map((p) => p.dataId);
  }

  /**
   * Flat gradient of a loss given dLoss/dlogits of the forward that made
   * `tape` (and dLoss/dfeatures, for a loss on the pooled feature too).
   * Inside tf.tidy.
   */
  protected flatGrad(tape: BackboneTape, dLogits: tf.Tensor2D, dFeatures?: tf.Tensor2D): tf.Tensor1D {
    return this.model.gradient(tape, dLogits, this.layout, dFeatures);
  }

  /** Writes a flat vector back into the model's variables. Inside tf.tidy. */
  protected writeParams(flat: tf.Tensor1D): void {
    this.moved = true;
    const pieces = this.layout.split(flat);
    for (const [name, p] of this.params) p.assign(pieces.get(name)!);
    // The next θ is this very vector: no concatenation at the next step.
    this.rememberTheta(flat, this.paramData());
  }

  /**
   * Adapts on `input` ([B, H, W, C] or [H, W, C], values in [0, 1]) and returns the pre-update prediction.
   * `alongside`: any float32 tensor of the caller's (the engine's reference forward and preview), read
   * back in the step's one read and returned as `result.alongside`; the caller keeps and disposes it.
   */
  step(input: tf.Tensor, alongside?: tf.Tensor): Promise<StepResult> {
    return this.inTurn(() => this.stepNow(input, alongside));
  }

  /**
   * Runs `fn` after every step and flush called before it has finished. A
   * step reads what the previous one left (its queued update, the counters),
   * so two that overlap (a caller that does not await) would each deliver the
   * same update and leave a tensor behind.
   */
  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  private turn: Promise<unknown> = Promise.resolve();

  private async stepNow(input: tf.Tensor, alongside?: tf.Tensor): Promise<StepResult> {
    this.assertAlive();
    const checked = this.checkInput(input);
    // Every forward of the step (the prediction's, SAR's second, DeYO's shuffled one) sees the aligned frame.
    const x = this.inputAlignment ? tf.tidy(() => this.inputAlignment!.apply(checked)) : checked;
    let logits: tf.Tensor2D | undefined;
    let tape: BackboneTape | undefined;
    try {
      const B = x.shape[0];
      const C = this.numClasses;
      const pending = this.pending;
      let immediate = false;
      let readoutSize = 0;
      const packed = tf.tidy(() => {
        this.lastFinite.take({ theta: this.theta(), momentum: this.sgd.buffer, state: this.savedState() });
        // Before the first forward, so that it sees the frame as the prediction does (a re-centering estimate without it).
        const readout = this.readout?.(x);
        readoutSize = readout?.size ?? 0;
        const first = this.firstForward(x);
        tape = first.tape;
        logits = tf.keep(first.logits);
        immediate = first.stats !== undefined;
        const { probabilities, entropies } = softmaxAndEntropy(first.logits);
        const parts = [tf.reshape(probabilities, [-1]), entropies, finiteFlag(checked)];
        if (pending) parts.push(pending.stats);
        if (first.stats) parts.push(first.stats);
        if (readout) parts.push(tf.reshape(readout, [-1]));
        if (alongside) parts.push(tf.reshape(alongside, [-1]));
        return tf.concat(parts);
      });
      const host = (await packed.data()) as Float32Array;
      packed.dispose();
      let offset = B * C + B + 1;
      if (pending) {
        pending.stats.dispose();
        this.pending = null;
        this.deliver(decodeStats(pending.step, host, offset));
        offset += STATS_LENGTH;
      }
      // Tent's update was gated on finiteness on the device, so a bad input changed nothing.
      if (host[B * C + B]! < 0.5) throw new InvalidInputError('input contains NaN or infinite pixel values');
      this.checkOutputs(host, B, C);
      const step = this.stepCount++;
      if (immediate) this.deliver(decodeStats(step, host, offset));

      const probabilities = host.slice(0, B * C);
      const entropies = host.slice(B * C, B * C + B);
      const classes = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        let best = 0;
        for (let c = 1; c < C; c++) if (probabilities[b * C + c]! > probabilities[b * C + best]!) best = c;
        classes[b] = best;
      }
      const reliable = this.firstFilter(entropies, probabilities);
      // A method's CPU-side collapse check, from this very read. The frame's forward was the collapsed model's: after the reset it drives no update.
      const readoutEnd = host.length - (alongside?.size ?? 0);
      const readout = readoutSize > 0 ? host.slice(readoutEnd - readoutSize, readoutEnd) : undefined;
      const recovered = this.collapsed(classes, entropies, readout);
      if (recovered) this.recover(step);
      const keep = reliable.flatMap((r, i) => (r ? [i] : []));
      const adapting = this.adaptsAfterForward && keep.length > 0 && !immediate && !recovered;
      if (adapting) this.pending = { step, stats: tf.tidy(() => this.adapt!(x, logits!, keep, tape!)) };
      const result: StepResult = { step, batchSize: B, numClasses: C, classes, probabilities, entropies, reliable, adapting };
      if (alongside) result.alongside = host.slice(host.length - alongside.size);
      const update = this.takeUndelivered();
      if (update) result.update = update;
      return result;
    } finally {
      tape?.dispose();
      logits?.dispose();
      if (x !== checked) x.dispose();
      if (checked !== input) checked.dispose();
    }
  }

  /**
   * The step's read says whether the forward's outputs were finite: if so,
   * the state it ran at becomes the one to go back to; if not, that one is
   * put back (on the device, no read) and the frame fails with
   * NonFiniteOutputError. Tent's own update was already gated on finiteness.
   */
  private checkOutputs(host: Float32Array, B: number, C: number): void {
    let bad = 0;
    let first = -1;
    for (let i = 0; i < B * C + B; i++) {
      if (!Number.isFinite(host[i]!)) {
        bad++;
        if (first < 0) first = i;
      }
    }
    if (bad === 0) {
      this.lastFinite.confirm();
      return;
    }
    const last = this.lastFinite.last;
    if (last === undefined) this.putSourceBack();
    else {
      tf.tidy(() => {
        this.writeParams(last.theta as tf.Tensor as tf.Tensor1D);
        for (const [name, t] of this.savedState()) t.assign(last.state.get(name)!);
        this.recentering?.refreshOffset();
      });
      this.sgd.buffer.assign(last.momentum as tf.Tensor1D);
    }
    const what =
      first < B * C
        ? `probability of class ${first % C} (sample ${Math.floor(first / C)}) is ${host[first]}`
        : `entropy of sample ${first - B * C} is ${host[first]}`;
    const cause = `${bad} of the ${B * C + B} probabilities and entropies are not finite; the first: the ${what}`;
    throw new NonFiniteOutputError(
      `step ${this.stepCount}: the model's outputs are not finite (${cause}); the adapted state went back to ${last ? 'the last one with finite outputs' : "the source model's"}`,
      this.stepCount,
      cause,
    );
  }

  /**
   * A method's own collapse check on the CPU, from what the step's one read
   * brought back (predicted classes, entropies, and the method's `readout`
   * if it has one); true resets the model to the source before this step's
   * update. None by default.
   */
  protected collapsed(_classes: Int32Array, _entropies: Float32Array, _readout?: Float32Array): boolean {
    return false;
  }

  /**
   * Values a method wants back from each step for its collapse check (sar-align:
   * the source model's class for each frame), computed on the device from the
   * frame the forwards see and carried in the step's one read, not a read of
   * their own. Inside tf.tidy.
   */
  protected readout?(x: tf.Tensor4D): tf.Tensor | undefined;

  /**
   * False while θ is known to be the source's (from the start, and after each
   * reset) and true once anything may have written it (an update, even one
   * the device then skipped; an import). What lets sar-align skip its source
   * forward while the two models are the same model.
   */
  private moved = false;

  protected get movedFromSource(): boolean {
    return this.moved;
  }

  /** The source model's parameters: the adapted norms as they were when the adapter was made, every other weight the model's own. */
  protected readonly sourceParam: ParamLookup = (name) => this.source.get(name) ?? this.model.param(name);

  /**
   * Model recovery decided on the CPU: θ back to the source, momentum zeroed,
   * method state cleared (the re-centering's statistics of the stream stay:
   * they describe the data, not the collapse). Reported as a reset of `step`.
   */
  protected recover(step: number): void {
    this.restoreSource();
    const report: UpdateReport = { step, updated: false, kept: 0, loss: NaN, lossSecond: NaN, gradNorm: NaN, ema: NaN, reset: true, nonFinite: false };
    this.onUpdate?.(report);
    // The step's result carries the reset rather than the previous update (onUpdate has had both).
    this.undelivered = report;
  }

  /**
   * Runs this method's own step once on a blank image, the update included
   * (as if the image had passed every filter), then puts everything back as
   * it was, so that WebGPU/WebGL compile the pipelines the method will use
   * (seconds for a large model) at load rather than on the first frames.
   */
  warmup(): Promise<void> {
    return this.inTurn(() => this.warmupNow());
  }

  /** True while warmup runs the method's step: a method with a random source (DeYO's patch orders) leaves it untouched. */
  protected warmingUp = false;

  private async warmupNow(): Promise<void> {
    this.assertAlive();
    const saved = await this.exportStateNow();
    const { onUpdate, undelivered, moved } = this;
    this.onUpdate = undefined;
    const { imageSize: S, inChannels: C } = this.model.config;
    const blank = tf.zeros([1, S, S, C]) as tf.Tensor4D;
    let tape: BackboneTape | undefined;
    try {
      const out = tf.tidy(() => {
        this.lastFinite.take({ theta: this.theta(), momentum: this.sgd.buffer, state: this.savedState() });
        const x = this.inputAlignment ? this.inputAlignment.apply(blank) : blank;
        const first = this.firstForward(x);
        tape = first.tape;
        const { probabilities, entropies } = softmaxAndEntropy(first.logits);
        const parts = [tf.reshape(probabilities, [-1]), entropies, finiteFlag(x)];
        if (first.stats) parts.push(first.stats);
        // A method that updates in its forward (Tent) has done so already.
        if (this.adaptsAfterForward && !first.stats) {
          this.warmingUp = true;
          try {
            parts.push(this.adapt!(x, first.logits, [0], first.tape!));
          } finally {
            this.warmingUp = false;
          }
        }
        return tf.concat(parts);
      });
      await out.data();
      out.dispose();
    } finally {
      tape?.dispose();
      blank.dispose();
      this.importState(saved);
      // Everything is as it was, θ included.
      this.moved = moved;
      this.onUpdate = onUpdate;
      this.undelivered = undelivered;
    }
  }

  /** Reads the outcome of the last queued update, if any (one read), after any step still running. */
  flush(): Promise<UpdateReport | undefined> {
    return this.inTurn(() => this.flushNow());
  }

  private async flushNow(): Promise<UpdateReport | undefined> {
    this.assertAlive();
    const pending = this.pending;
    if (pending) {
      this.pending = null;
      const host = await pending.stats.data();
      pending.stats.dispose();
      this.deliver(decodeStats(pending.step, host));
    }
    return this.takeUndelivered();
  }

  /** Restores the source scale/shift, zeroes momentum and clears method state (EMA, re-centering…). */
  reset(): void {
    this.assertAlive();
    this.restoreSource();
    this.recentering?.clear();
  }

  /** θ back to the source values, momentum zeroed, method state cleared, counted as a reset: what both resets share. */
  private restoreSource(): void {
    this.lastFinite.forget();
    this.putSourceBack();
    this.resetCount++;
  }

  /** θ to the source values, momentum zeroed, method state cleared (a reset, or a non-finite frame with no finite state to go back to). */
  private putSourceBack(): void {
    tf.tidy(() => {
      for (const [name, p] of this.params) p.assign(this.source.get(name)!);
      this.clearState();
    });
    this.sgd.clear();
    this.moved = false;
  }

  /**
   * Device-side reset where `when` (boolean scalar) holds, used by SAR's
   * model recovery: returns θ or the source values, zeroes the momentum and
   * clears method state there. Inside tf.tidy.
   */
  protected resetWhere(when: tf.Tensor, theta: tf.Tensor1D): tf.Tensor1D {
    this.sgd.clear(when);
    this.clearState(when);
    return pick(when, this.sourceFlat, theta);
  }

  /** The adapted state (scale/shift, momentum, method state, counters) as a compact safetensors blob. */
  exportState(): Promise<Uint8Array> {
    return this.inTurn(() => this.exportStateNow());
  }

  private async exportStateNow(): Promise<Uint8Array> {
    this.assertAlive();
    await this.flushNow();
    // tf.tidy keeps the tensors of an array it returns (not of a Map).
    const momentum = tf.tidy(() => [...this.layout.split(this.sgd.buffer).values()]);
    try {
      const tensors: Array<[string, tf.Tensor]> = [
        ...[...this.params].map(([name, p]): [string, tf.Tensor] => [`param.${name}`, p]),
        ...this.layout.names.map((name, i): [string, tf.Tensor] => [`momentum.${name}`, momentum[i]!]),
        ...[...this.savedState()].map(([name, t]): [string, tf.Tensor] => [`state.${name}`, t]),
      ];
      return await writeState(tensors, this.method, { steps: this.stepCount, updates: this.updateCount, resets: this.resetCount }, fingerprintOf(this.model));
    } finally {
      tf.dispose(momentum);
    }
  }

  /**
   * Restores a state written by exportState (same method, same model, same
   * adapted tensors, finite values: state.ts); a bad one throws
   * StateFormatError and changes nothing.
   */
  importState(bytes: Uint8Array | ArrayBuffer): void {
    this.assertAlive();
    const expected = new Map<string, readonly number[]>();
    for (const [name, p] of this.params) expected.set(`param.${name}`, p.shape);
    this.layout.names.forEach((name, i) => expected.set(`momentum.${name}`, this.layout.shapes[i]!));
    for (const [name, t] of this.savedState()) expected.set(`state.${name}`, t.shape);
    const { tensors, counters } = readState(bytes, this.method, expected, fingerprintOf(this.model));
    this.pending?.stats.dispose();
    this.pending = null;
    const fromFile = (key: string) => {
      const t = tensors.get(key)!;
      return tf.tensor(t.values, t.shape);
    };
    tf.tidy(() => {
      for (const [name, p] of this.params) p.assign(fromFile(`param.${name}`));
      for (const [name, t] of this.savedState()) t.assign(fromFile(`state.${name}`));
      this.recentering?.refreshOffset();
      this.sgd.buffer.assign(this.layout.concat(new Map(this.layout.names.map((n) => [n, fromFile(`momentum.${n}`)]))));
    });
    this.lastFinite.forget();
    this.moved = true;
    this.stepCount = counters.steps;
    this.updateCount = counters.updates;
    this.resetCount = counters.resets;
  }

  /**
   * Frees the adapter's tensors and puts the model's scale/shift back to the
   * values it had when the adapter was created, so the next adapter (or plain
   * inference) starts from the source model. Export the state first to keep it.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pending?.stats.dispose();
    this.pending = null;
    tf.tidy(() => {
      for (const [name, p] of this.params) if (!p.isDisposed) p.assign(this.source.get(name)!);
    });
    for (const t of this.source.values()) t.dispose();
    this.source.clear();
    this.sourceFlat.dispose();
    this.thetaFlat?.flat.dispose();
    this.thetaFlat = undefined;
    this.sgd.dispose();
    this.lastFinite.dispose();
    for (const t of this.stateTensors().values()) t.dispose();
    for (const c of this.constants.values()) c.dispose();
    this.constants.clear();
    this.recentering?.dispose();
  }

  /** The method's state and the re-centering's class means: what a saved state holds beyond θ and momentum. */
  private savedState(): Map<string, tf.Variable> {
    const all = this.stateTensors();
    if (this.recentering) {
      all.set('recenter_class_means', this.recentering.classMeans);
      all.set('recenter_class_weights', this.recentering.classWeights);
    }
    return all;
  }

  private deliver(report: UpdateReport): void {
    if (report.updated) this.updateCount++;
    if (report.reset) this.resetCount++;
    this.undelivered = report;
    this.onUpdate?.(report);
  }

  private takeUndelivered(): UpdateReport | undefined {
    const r = this.undelivered;
    this.undelivered = undefined;
    return r;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error(`${this.method} adapter used after dispose()`);
  }

  /** Validates shape and dtype; returns x as [B, H, W, C] float32 (a new tensor if it had to reshape or cast). */
  private checkInput(input: tf.Tensor): tf.Tensor4D {
    if (!(input instanceof tf.Tensor)) throw new InvalidInputError('input must be a tf.Tensor of shape [batch, height, width, channels]');
    if (input.isDisposed) throw new InvalidInputError('input tensor is already disposed');
    const cfg = this.model.config;
    const shape = input.rank === 3 ? [1, ...input.shape] : input.shape;
    if (shape.length !== 4)
      throw new InvalidInputError(`input must have rank 4 [batch, height, width, channels] (or 3), got rank ${input.rank} [${input.shape.join(', ')}]`);
    const [B, H, W, C] = shape as [number, number, number, number];
    if (B < 1) throw new InvalidInputError('input batch is empty');
    if (H !== cfg.imageSize || W !== cfg.imageSize) throw new InvalidInputError(`input is ${H}×${W}, the model takes ${cfg.imageSize}×${cfg.imageSize}`);
    if (C !== cfg.inChannels) throw new InvalidInputError(`input has ${C} channels, the model takes ${cfg.inChannels}`);
    if (input.dtype !== 'float32' && input.dtype !== 'int32') throw new InvalidInputError(`input dtype ${input.dtype} is not numeric`);
    if (input.rank === 4 && input.dtype === 'float32') return input as tf.Tensor4D;
    return tf.tidy(() => tf.reshape(tf.cast(input, 'float32'), [B, H, W, C]) as tf.Tensor4D);
  }
}
