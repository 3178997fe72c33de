import * as tf from '@tensorflow/tfjs';
import type { ViT } from '../model/vit';
import { readSafetensors, writeSafetensors } from '../model/safetensors';
import { ModelFormatError } from '../model/errors';
import { softmaxEntropy } from './entropy';
import { InvalidInputError, StateFormatError } from './errors';
import { selectNormParams, type ParamSelection } from './params';
import { SgdMomentum } from './sgd';
import { globalNorm } from './sam';
import { decodeStats, STATS_LENGTH, type MethodName, type StepResult, type UpdateReport } from './types';

export interface CommonOptions extends ParamSelection {
  /** SGD learning rate. */
  lr?: number;
  /** SGD momentum (0.9 in every reference). */
  momentum?: number;
}

const STATE_KEY = 'wildtta.state';

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
 */
export abstract class Adapter {
  abstract readonly method: MethodName;
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
  /** False for the no-adapt baseline: nothing is ever queued after the forward. */
  protected readonly adaptsAfterForward: boolean = true;
  protected readonly sgd: SgdMomentum;
  private pending: { step: number; stats: tf.Tensor } | null = null;
  private undelivered: UpdateReport | undefined;
  private disposed = false;

  constructor(
    readonly model: ViT,
    selection: ParamSelection,
    lr: number,
    momentum = 0.9,
  ) {
    this.params = selectNormParams(model, selection);
    for (const [name, p] of this.params) this.source.set(name, tf.clone(p));
    this.sgd = new SgdMomentum(this.params, lr, momentum);
    this.numClasses = model.config.numClasses;
    this.lnC = Math.log(this.numClasses);
  }

  get lr(): number {
    return this.sgd.lr;
  }
  set lr(value: number) {
    if (!(value >= 0 && Number.isFinite(value))) throw new RangeError(`lr must be a finite number ≥ 0, got ${value}`);
    this.sgd.lr = value;
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
   * stats vector (see types.ts S). Runs inside tf.tidy; `logits` are the first
   * forward's, `keep` the indices that passed the first filter.
   */
  protected abstract adapt(x: tf.Tensor4D, logits: tf.Tensor2D, keep: number[]): tf.Tensor;

  /**
   * The first forward. Methods that update from this very forward (Tent)
   * override it to return their stats too. Runs inside tf.tidy.
   */
  protected firstForward(x: tf.Tensor4D): { logits: tf.Tensor2D; stats?: tf.Tensor } {
    return { logits: this.model.logits(x) };
  }

  /** Adapts on `input` ([B, H, W, C] or [H, W, C], values in [0, 1]) and returns the pre-update prediction. */
  async step(input: tf.Tensor): Promise<StepResult> {
    this.assertAlive();
    const x = this.checkInput(input);
    let logits: tf.Tensor2D | undefined;
    try {
      const B = x.shape[0];
      const C = this.numClasses;
      const pending = this.pending;
      let immediate = false;
      const packed = tf.tidy(() => {
        const first = this.firstForward(x);
        logits = tf.keep(first.logits);
        immediate = first.stats !== undefined;
        const parts = [
          tf.reshape(tf.softmax(first.logits), [-1]),
          softmaxEntropy(first.logits),
          tf.reshape(tf.cast(tf.all(tf.isFinite(x)), 'float32'), [1]),
        ];
        if (pending) parts.push(pending.stats);
        if (first.stats) parts.push(first.stats);
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
      const keep = reliable.flatMap((r, i) => (r ? [i] : []));
      const adapting = this.adaptsAfterForward && keep.length > 0 && !immediate;
      if (adapting) this.pending = { step, stats: tf.tidy(() => this.adapt(x, logits!, keep)) };
      const result: StepResult = { step, batchSize: B, numClasses: C, classes, probabilities, entropies, reliable, adapting };
      const update = this.takeUndelivered();
      if (update) result.update = update;
      return result;
    } finally {
      logits?.dispose();
      if (x !== input) x.dispose();
    }
  }

  /** Reads the outcome of the last queued update, if any (one read). */
  async flush(): Promise<UpdateReport | undefined> {
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

  /** Restores the source scale/shift, zeroes momentum and clears method state (EMA etc.). */
  reset(): void {
    this.assertAlive();
    tf.tidy(() => {
      for (const [name, p] of this.params) p.assign(this.source.get(name)!);
      this.clearState();
    });
    this.sgd.clear();
    this.resetCount++;
  }

  /**
   * One gated SGD step on Σ w·E / max(kept, 1) (+ `extra()`), the loss of EATA
   * and DeYO: w are per-sample weights from the first forward (0 for samples a
   * later filter dropped), E the entropies at the current weights. Nothing
   * changes when no sample is kept or the loss or gradient is not finite.
   * Returns the stats vector. Inside tf.tidy.
   */
  protected weightedEntropyStep(xs: tf.Tensor4D, weights: tf.Tensor, kept: tf.Tensor, extra?: () => tf.Tensor): tf.Tensor {
    const anyKept = tf.greater(kept, 0);
    const { value: loss, grads } = tf.variableGrads(() => {
      const e = softmaxEntropy(this.model.logits(xs));
      const weighted = tf.div(tf.sum(tf.mul(e, weights)), tf.maximum(kept, 1));
      return (extra ? tf.add(weighted, extra()) : weighted) as tf.Scalar;
    }, [...this.params.values()]);
    const g = gradsByName(this.params, grads);
    const gradNorm = globalNorm(g.values());
    const finite = allFinite(loss, gradNorm);
    const gate = tf.logicalAnd(finite, anyKept);
    this.sgd.step(this.params, g, gate);
    return packStats({ updated: gate, kept, loss: tf.where(anyKept, loss, tf.scalar(NaN)), gradNorm, nonFinite: tf.logicalNot(finite) });
  }

  /** Device-side reset where `when` (boolean scalar) holds; used by SAR's model recovery. Inside tf.tidy. */
  protected resetWhere(when: tf.Tensor): void {
    for (const [name, p] of this.params) p.assign(tf.where(tf.broadcastTo(when, p.shape), this.source.get(name)!, p));
    this.sgd.clear(when);
    this.clearState(when);
  }

  /** The adapted state (scale/shift, momentum, method state, counters) as a compact safetensors blob. */
  async exportState(): Promise<Uint8Array> {
    this.assertAlive();
    await this.flush();
    const entries: Array<[string, { shape: number[]; values: Float32Array }]> = [];
    const add = async (key: string, t: tf.Tensor) => entries.push([key, { shape: t.shape, values: (await t.data()) as Float32Array }]);
    for (const [name, p] of this.params) await add(`param.${name}`, p);
    for (const [name, b] of this.sgd.buffers) await add(`momentum.${name}`, b);
    for (const [name, t] of this.stateTensors()) await add(`state.${name}`, t);
    const meta = { version: 1, method: this.method, steps: this.stepCount, updates: this.updateCount, resets: this.resetCount };
    return writeSafetensors(entries, { [STATE_KEY]: JSON.stringify(meta) });
  }

  /** Restores a state written by exportState (same method, same adapted tensors). */
  importState(bytes: Uint8Array | ArrayBuffer): void {
    this.assertAlive();
    let file: ReturnType<typeof readSafetensors>;
    try {
      file = readSafetensors(bytes);
    } catch (e) {
      if (e instanceof ModelFormatError) throw new StateFormatError(`not a saved adaptation state: ${e.message}`);
      throw e;
    }
    let meta: { version?: number; method?: string; steps?: number; updates?: number; resets?: number };
    try {
      meta = JSON.parse(file.metadata[STATE_KEY] ?? 'null') ?? {};
    } catch {
      throw new StateFormatError('state metadata is not valid JSON');
    }
    if (meta.version !== 1) throw new StateFormatError(`unsupported state version ${String(meta.version)}`);
    if (meta.method !== this.method) throw new StateFormatError(`state was saved by method ${String(meta.method)}, this adapter runs ${this.method}`);
    const targets = new Map<string, tf.Variable>();
    for (const [name, p] of this.params) targets.set(`param.${name}`, p);
    for (const [name, b] of this.sgd.buffers) targets.set(`momentum.${name}`, b);
    for (const [name, t] of this.stateTensors()) targets.set(`state.${name}`, t);
    // Check everything before assigning anything, so a bad blob changes nothing.
    for (const [key, v] of targets) {
      const t = file.tensors.get(key);
      if (!t) throw new StateFormatError(`state lacks ${key}`);
      if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
        throw new StateFormatError(`${key} has shape [${t.shape.join(', ')}], expected [${v.shape.join(', ')}]`);
      }
    }
    for (const key of file.tensors.keys()) if (!targets.has(key)) throw new StateFormatError(`state has unexpected tensor ${key}`);
    this.pending?.stats.dispose();
    this.pending = null;
    for (const [key, v] of targets) {
      const t = file.tensors.get(key)!;
      tf.tidy(() => v.assign(tf.tensor(t.values, t.shape)));
    }
    this.stepCount = meta.steps ?? 0;
    this.updateCount = meta.updates ?? 0;
    this.resetCount = meta.resets ?? 0;
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
    this.sgd.dispose();
    for (const t of this.stateTensors().values()) t.dispose();
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
    if (shape.length !== 4) throw new InvalidInputError(`input must have rank 4 [batch, height, width, channels] (or 3), got rank ${input.rank} [${input.shape.join(', ')}]`);
    const [B, H, W, C] = shape as [number, number, number, number];
    if (B < 1) throw new InvalidInputError('input batch is empty');
    if (H !== cfg.imageSize || W !== cfg.imageSize) throw new InvalidInputError(`input is ${H}×${W}, the model takes ${cfg.imageSize}×${cfg.imageSize}`);
    if (C !== cfg.inChannels) throw new InvalidInputError(`input has ${C} channels, the model takes ${cfg.inChannels}`);
    if (input.dtype !== 'float32' && input.dtype !== 'int32') throw new InvalidInputError(`input dtype ${input.dtype} is not numeric`);
    if (input.rank === 4 && input.dtype === 'float32') return input as tf.Tensor4D;
    return tf.tidy(() => tf.reshape(tf.cast(input, 'float32'), [B, H, W, C]) as tf.Tensor4D);
  }
}

/**
 * The kept samples and what the first forward said about them: inputs,
 * logits, probabilities and entropies. Inside tf.tidy; nothing here is on a
 * gradient tape, so weights computed from it get no gradient.
 */
export function keptSamples(x: tf.Tensor4D, logits: tf.Tensor2D, keep: number[]) {
  const kept = keptRows(logits, keep);
  return { x: keptRows(x, keep), logits: kept, probs: tf.softmax(kept), entropies: softmaxEntropy(kept) };
}

/** Gathers the kept rows (or returns x itself when every row is kept). Inside tf.tidy. */
export function keptRows<T extends tf.Tensor>(x: T, keep: number[]): T {
  return keep.length === x.shape[0] ? x : (tf.gather(x, tf.tensor1d(keep, 'int32')) as T);
}

/** Packs device scalars into the stats vector layout of types.ts (missing fields NaN / 0). */
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
  const f = (t: tf.Tensor | undefined, fallback: number) => (t ? tf.reshape(tf.cast(t, 'float32'), [1]) : tf.tensor1d([fallback]));
  return tf.concat([
    f(fields.updated, 0),
    f(fields.kept, 0),
    f(fields.loss, NaN),
    f(fields.lossSecond, NaN),
    f(fields.gradNorm, NaN),
    f(fields.ema, NaN),
    f(fields.reset, 0),
    f(fields.nonFinite, 0),
  ]);
}

/** True (boolean scalar) when every given scalar is finite. */
export function allFinite(...scalars: tf.Tensor[]): tf.Tensor {
  return tf.all(tf.isFinite(tf.stack(scalars.map((s) => tf.reshape(s, [])))));
}

/** Gradients from tf.variableGrads keyed by our parameter names. */
export function gradsByName(params: ReadonlyMap<string, tf.Variable>, grads: tf.NamedTensorMap): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, p] of params) out.set(name, grads[p.name] ?? tf.zerosLike(p));
  return out;
}
