// The adaptation engine: one model, one adapter, frames in, predictions and
// update reports out, with a record of every frame for scoring. It has no UI
// and no worker code; engine-worker.ts serves it over postMessage, and a page
// may also run it on its own thread.
import * as tf from '@tensorflow/tfjs-core';
import { AUTO_ORDER, initBackend, type BackendName } from './backend';
import { checkFrame, FrameFormatError, preprocessFrame } from './preprocess';
import type {
  BitmapFrameInput,
  CorruptionSpec,
  EngineEvent,
  EngineMemory,
  FrameInput,
  FrameRecords,
  FrameResult,
  InitOptions,
  MethodConfig,
  MethodCard,
  MethodInfo,
  ModelInfo,
  ModelSource,
  Prediction,
} from './engine-types';
import { backboneFromSafetensors, type LoadProgress } from '../model/load';
import { ModelFormatError } from '../model/errors';
import { InvalidInputError } from '../methods/errors';
import type { Backbone } from '../model/backbone';
import { ViT } from '../model/vit';
import { createAdapter, METHODS, methodSpec, type Adapter, type AdapterOptions, type MethodName, type UpdateReport } from '../methods';
import { streamBackbone } from './stream-weights';
import {
  computeSourceStats,
  givenImagesProvenance,
  readSourceStats,
  SOURCE_STATS_FILE,
  sourceStatsUrl,
  writeSourceStats,
  type SourceStats,
} from '../model/source-stats';
import { bitmapToFrame } from './frame-source';
import { softmaxAndEntropy } from '../kernels';
import { corrupt, isCorruptionName, isCorruptionRegime, CORRUPTION_REGIMES } from '../data/corruptions';
import type { BackendReport } from './backend';

/** Frames kept in the record ring: an hour at 25 frames per second. */
export const RECORD_CAPACITY = 90_000;

/** The engine was used out of order (a frame before a model, a method before a model...). */
export class EngineStateError extends Error {
  override readonly name = 'EngineStateError';
}

class RecordRing {
  private readonly cols: Int32Array[];
  private start = 0;
  private size = 0;
  dropped = 0;

  constructor(readonly capacity: number) {
    this.cols = Array.from({ length: 7 }, () => new Int32Array(capacity));
  }

  push(values: readonly number[]): void {
    const at = (this.start + this.size) % this.capacity;
    for (let c = 0; c < this.cols.length; c++) this.cols[c]![at] = values[c]!;
    if (this.size < this.capacity) this.size++;
    else {
      this.start = (this.start + 1) % this.capacity;
      this.dropped++;
    }
  }

  clear(): void {
    this.start = 0;
    this.size = 0;
    this.dropped = 0;
  }

  column(c: number): number[] {
    const out = new Array<number>(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.cols[c]![(this.start + i) % this.capacity]!;
    return out;
  }
}

export interface EngineOptions {
  /** Called as a model URL downloads. */
  onProgress?: (p: LoadProgress) => void;
  /** Device loss and recovery (see EngineEvent). */
  onEvent?: (e: EngineEvent) => void;
}

/** The part of a GPUDevice the engine uses (the project builds without the WebGPU type package). */
interface GpuDeviceLike {
  readonly lost: Promise<{ reason: string; message: string }>;
  destroy(): void;
}

/** Steps between CPU copies of the adapted state on WebGPU. */
export const DEFAULT_SNAPSHOT_EVERY = 20;

export class Engine {
  private model: Backbone | undefined;
  private modelName = '';
  /** The model's source statistics, for the methods that re-centre or align. */
  private sourceStats: SourceStats | undefined;
  private adapter: Adapter | undefined;
  private methodInfo: MethodInfo | undefined;
  /** The source LayerNorm scale/shift, for the frozen reference forward (other weights are shared with the model). */
  private sourceNorms = new Map<string, tf.Tensor>();
  /** The source model's parameters: its LayerNorms as loaded, whatever the adapter has done since. */
  private readonly sourceNorm = (name: string): tf.Tensor => this.sourceNorms.get(name) ?? this.requireModel().param(name);
  private reference = false;
  private reports: UpdateReport[] = [];
  private frames = 0;
  private readonly records = new RecordRing(RECORD_CAPACITY);
  private backend: BackendReport | undefined;
  private initOptions: InitOptions | undefined;
  /** What a lost device makes us load again: the URL or Blob streamed, with its config. */
  private reloadSource: ModelSource | undefined;
  private methodConfig: MethodConfig | undefined;
  /** The adapted state as of step `step`, in CPU memory: what survives a lost GPU device. */
  private snapshot: { bytes: Uint8Array; step: number } | undefined;
  private stepsSinceSnapshot = 0;
  private lastStep = -1;
  private device: GpuDeviceLike | undefined;
  private recovery: Promise<void> | undefined;
  private broken: Error | undefined;

  constructor(private readonly options: EngineOptions = {}) {}

  async init(o: InitOptions): Promise<BackendReport> {
    this.initOptions = o;
    this.backend = await initBackend(o.backend, o.wasmPaths === undefined ? {} : { wasmPaths: o.wasmPaths });
    this.watchDevice();
    return this.backend;
  }

  /** Resolves when no recovery is running; throws if the last one failed. Callers serving requests await it before each. */
  async whenReady(): Promise<void> {
    if (this.recovery) await this.recovery.catch(() => undefined);
    if (this.broken) throw this.broken;
  }

  /** The methods it runs (the registry's entries, as a page offers them). */
  methods(): MethodCard[] {
    return Object.values(METHODS).map((m) => {
      const lr = (m.defaults as { lr?: { value: number } }).lr;
      return {
        name: m.name,
        label: m.label,
        lr: lr ? lr.value : null,
        needsSourceStats: m.needsSourceStats,
        usesCleanImages: m.usesCleanImages,
        extends: (m.extends?.name as MethodName | undefined) ?? null,
      };
    });
  }

  async loadModel(source: ModelSource): Promise<ModelInfo> {
    if (this.backend === undefined) throw new EngineStateError('call init (choose a backend) before loading a model');
    const onProgress = this.options.onProgress;
    const progress = onProgress ? { onProgress } : {};
    // URLs and Blobs are streamed into the model's tensors; bytes are in memory already.
    const model =
      source.kind === 'url'
        ? await streamBackbone(source.url, { fetch: fetchTranslatingConfig, ...progress })
        : source.kind === 'blob'
          ? await streamBackbone(source.blob, { config: withClassNames(source.config), ...progress })
          : bytesModel(source.weights, withClassNames(source.config), this.options.onProgress);
    const c = model.config;
    if (c.inChannels !== 1 && c.inChannels !== 3) {
      // Checked before the running model is let go, so a model the engine cannot feed changes nothing.
      model.dispose();
      throw new ModelFormatError(`models with ${c.inChannels} input channels are not supported (1 or 3)`);
    }
    let sourceStats: SourceStats | undefined;
    try {
      sourceStats = await loadSourceStats(source, model);
    } catch (e) {
      model.dispose();
      throw e;
    }
    this.unloadModel();
    this.model = model;
    this.sourceStats = sourceStats;
    this.modelName = source.kind === 'url' ? source.url : (source.name ?? 'model.safetensors');
    // Only a GPU device can be lost; elsewhere keeping a second copy of bytes would be waste.
    this.reloadSource =
      source.kind !== 'bytes'
        ? source
        : this.backend.backend === 'webgpu'
          ? { kind: 'blob', blob: new Blob([source.weights]), config: source.config, name: this.modelName }
          : undefined;
    this.keepStatsForReload();
    for (const [name, v] of model.variables) this.sourceNorms.set(name, tf.clone(v));
    let parameters = 0;
    for (const t of model.params.values()) parameters += t.size;
    return {
      name: this.modelName,
      imageSize: c.imageSize,
      inChannels: c.inChannels,
      numClasses: c.numClasses,
      classNames: [...c.classNames],
      family: model.family,
      patchSize: model instanceof ViT ? model.config.patchSize : 0,
      width: model.featureWidth,
      depth: model instanceof ViT ? model.config.depth : model.normUnits,
      parameters,
      sourceStats: sourceStats ? { count: sourceStats.count, provenance: sourceStats.provenance } : null,
    };
  }

  /** A lost device reloads the model from reloadSource: the statistics in use go with it, as bytes. */
  private keepStatsForReload(): void {
    if (this.reloadSource && this.sourceStats)
      this.reloadSource = { ...this.reloadSource, sourceStats: writeSourceStats(this.sourceStats).buffer as ArrayBuffer };
  }

  async computeSourceStats(a: { pixels: Float32Array; count: number; labels?: number[]; provenance?: string }): Promise<Uint8Array> {
    const model = this.requireModel();
    const { imageSize: s, inChannels: ch } = model.config;
    if (!(Number.isInteger(a.count) && a.count >= 1)) throw new FrameFormatError(`computeSourceStats: count must be a whole number ≥ 1, got ${a.count}`);
    if (a.pixels.length !== a.count * s * s * ch)
      throw new FrameFormatError(`computeSourceStats: ${a.count} images of ${s}×${s}×${ch} need ${a.count * s * s * ch} values, got ${a.pixels.length}`);
    for (let i = 0; i < a.pixels.length; i++)
      if (!Number.isFinite(a.pixels[i]!)) throw new InvalidInputError(`computeSourceStats: pixel ${i} is not a finite number`);
    const images = tf.tensor4d(a.pixels, [a.count, s, s, ch]);
    try {
      // The source model's statistics, not the adapted one's.
      const stats = await computeSourceStats(model, images, {
        param: this.sourceNorm,
        ...(a.labels ? { labels: a.labels } : {}),
        provenance: a.provenance ?? givenImagesProvenance(a.count),
      });
      this.sourceStats = stats;
      this.keepStatsForReload();
      return writeSourceStats(stats);
    } finally {
      images.dispose();
    }
  }

  async setMethod(m: MethodConfig): Promise<MethodInfo> {
    const model = this.requireModel();
    // Checked before the running method is let go, so asking for one the model cannot run changes nothing.
    const spec = methodSpec(m.method);
    const needs = spec.needsSourceStats ? m.method : m.options?.recenter ? 'recenter' : m.options?.inputAlign ? 'inputAlign' : undefined;
    if (!this.sourceStats && needs) {
      throw new ModelFormatError(
        `${needs} needs the model's source statistics, and ${this.modelName || 'this model'} has none: put ${SOURCE_STATS_FILE} beside model.safetensors (npm run source-stats) or call computeSourceStats with clean images`,
      );
    }
    // A method that cannot be made (an option out of range) must not cost the one running: keep its adapted
    // state to bring it back. The old adapter goes first, since disposing it restores the source weights
    // that a new adapter takes as its source.
    const previous = this.adapter && this.methodConfig ? { config: this.methodConfig, state: await this.adapter.exportState() } : undefined;
    this.adapter?.dispose();
    this.adapter = undefined;
    this.methodInfo = undefined;
    try {
      this.install(m, await this.buildAdapter(model, m));
    } catch (e) {
      if (previous) {
        const back = await this.buildAdapter(model, previous.config);
        back.importState(previous.state);
        this.install(previous.config, back);
      }
      throw e;
    }
    this.snapshot = undefined;
    this.stepsSinceSnapshot = 0;
    this.reports = [];
    return this.methodInfo!;
  }

  private async buildAdapter(model: Backbone, m: MethodConfig): Promise<Adapter> {
    const opts = {
      method: m.method,
      ...(m.options ?? {}),
      ...(m.lr === undefined ? {} : { lr: m.lr }),
      ...(this.sourceStats ? { sourceStats: this.sourceStats } : {}),
    } as AdapterOptions;
    let fisherImages: tf.Tensor4D | undefined;
    if (methodSpec(m.method).usesCleanImages && m.fisherImages && m.fisherImages.count > 0) {
      const { imageSize: s, inChannels: ch } = model.config;
      const { pixels, count } = m.fisherImages;
      if (pixels.length !== count * s * s * ch)
        throw new FrameFormatError(`fisherImages: ${count} images of ${s}×${s}×${ch} need ${count * s * s * ch} values, got ${pixels.length}`);
      // The Fisher per image (estimateFisher's default), as EATA's reference at the engine's batch size of 1.
      fisherImages = tf.tensor4d(pixels, [count, s, s, ch]);
      (opts as { fisherImages?: tf.Tensor4D }).fisherImages = fisherImages;
    }
    try {
      return await createAdapter(model, opts);
    } finally {
      fisherImages?.dispose();
    }
  }

  private install(m: MethodConfig, adapter: Adapter): void {
    adapter.onUpdate = (r) => this.reports.push(r);
    this.adapter = adapter;
    this.methodConfig = m;
    this.methodInfo = {
      method: m.method,
      lr: adapter.lr,
      margin: adapter.margin,
      maxEntropy: adapter.lnC,
      ...(methodSpec(m.method).usesCleanImages ? { fisher: (m.fisherImages?.count ?? 0) > 0 } : {}),
    };
  }

  setLr(lr: number): number {
    const a = this.requireAdapter();
    a.lr = lr;
    if (this.methodInfo) this.methodInfo.lr = lr;
    return a.lr;
  }

  /** Runs the frozen source model on every frame too (on the clean and on the corrupted input). */
  setReference(on: boolean): boolean {
    this.reference = on;
    return on;
  }

  /** Restores the source weights; the update still queued is read first, so its report is not lost. */
  async reset(): Promise<undefined> {
    const a = this.requireAdapter();
    await a.flush();
    a.reset();
    return undefined;
  }

  async flush(): Promise<UpdateReport[]> {
    if (this.adapter) await this.adapter.flush();
    const out = this.reports;
    this.reports = [];
    return out;
  }

  async step(input: FrameInput): Promise<FrameResult> {
    const device = this.device;
    let result: FrameResult;
    try {
      result = await this.stepOnce(input);
    } catch (e) {
      // A step the device died under is retried once on the rebuilt engine; any other error is the caller's.
      const lost = await lostWithin(device, 250);
      if (lost === undefined) throw e;
      await this.startRecovery(device, lost);
      await this.whenReady();
      result = await this.stepOnce(input);
    }
    this.lastStep = result.step;
    if (this.device !== undefined && (this.initOptions?.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY) > 0) {
      if (++this.stepsSinceSnapshot >= (this.initOptions?.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY)) await this.exportState();
    }
    return result;
  }

  /** A frame given as an ImageBitmap (closed here once read). */
  async stepBitmap(input: BitmapFrameInput): Promise<FrameResult> {
    const { bitmap, ...rest } = input;
    let frame;
    try {
      frame = bitmapToFrame(bitmap);
    } finally {
      bitmap.close();
    }
    return this.step({ ...rest, frame });
  }

  /** The adapted state as a safetensors file; on WebGPU it also becomes the state a lost device is rebuilt with. */
  async exportState(): Promise<Uint8Array> {
    const bytes = await this.requireAdapter().exportState();
    if (this.device !== undefined) {
      // The caller may transfer `bytes` away; the snapshot keeps its own copy.
      this.snapshot = { bytes: bytes.slice(), step: this.lastStep };
      this.stepsSinceSnapshot = 0;
    }
    return bytes;
  }

  importState(bytes: Uint8Array): undefined {
    this.requireAdapter().importState(bytes);
    if (this.device !== undefined) {
      this.snapshot = { bytes: bytes.slice(), step: this.lastStep };
      this.stepsSinceSnapshot = 0;
    }
    return undefined;
  }

  /** Test hook: destroys the WebGPU device under the engine, as a GPU reset would. */
  loseDevice(): undefined {
    if (this.device === undefined) throw new EngineStateError(`loseDevice needs the webgpu backend (running ${this.backend?.backend ?? 'none'})`);
    this.device.destroy();
    return undefined;
  }

  private async stepOnce(input: FrameInput): Promise<FrameResult> {
    const t0 = performance.now();
    const model = this.requireModel();
    const adapter = this.requireAdapter();
    const { imageSize: size, inChannels: ch, numClasses } = model.config;
    const label = input.label ?? null;
    if (label !== null && !(Number.isInteger(label) && label >= 0 && label < numClasses)) {
      throw new FrameFormatError(`label must be an integer class in 0..${numClasses - 1}, got ${String(label)}`);
    }
    const corruption = input.corruption ?? null;
    if (corruption !== null) checkCorruption(corruption);
    const f = input.frame;
    if (f === null || typeof f !== 'object') throw new FrameFormatError('frame is missing');
    checkFrame(f);
    const ready = f.width === size && f.height === size && f.channels === ch && f.maxValue === 1 && !input.invert && (input.cropFraction ?? 1) === 1;
    const pixels = ready
      ? Float32Array.from(f.data)
      : preprocessFrame(f, {
          size,
          channels: ch as 1 | 3,
          ...(input.invert === undefined ? {} : { invert: input.invert }),
          ...(input.cropFraction === undefined ? {} : { cropFraction: input.cropFraction }),
        }).pixels;

    const clean = tf.tensor4d(pixels, [1, size, size, ch]);
    let x: tf.Tensor4D = clean;
    let extra: tf.Tensor | undefined;
    let result: FrameResult;
    try {
      if (corruption)
        x = corrupt(clean, corruption.name, corruption.severity, corruption.seed, corruption.regime === undefined ? {} : { regime: corruption.regime });
      const tPrepared = performance.now();
      // The reference forward (the frozen source model on the clean and the corrupted
      // frame, as one batch of two on the fast path) and the preview ride in the
      // adapter's own read: one GPU→CPU transfer per frame whatever is shown.
      const withReference = this.reference;
      const withPreview = Boolean(input.preview);
      if (withReference || withPreview) {
        const xs = x;
        extra = tf.tidy(() => {
          const parts: tf.Tensor[] = [];
          if (withReference) {
            const { logits } = model.forward(tf.concat([clean, xs]) as tf.Tensor4D, this.sourceNorm);
            const { probabilities, entropies } = softmaxAndEntropy(logits);
            parts.push(tf.reshape(probabilities, [-1]), entropies);
          }
          if (withPreview) parts.push(tf.reshape(xs, [-1]));
          return tf.concat(parts);
        });
      }
      const r = await adapter.step(x, extra);
      const host = r.alongside;
      const tStepped = performance.now();
      const probs = r.probabilities;
      const predicted = r.classes[0]!;
      result = {
        step: r.step,
        frame: this.frames++,
        label,
        tag: input.tag ?? null,
        predicted,
        confidence: probs[predicted]!,
        entropy: r.entropies[0]!,
        reliable: r.reliable[0]!,
        adapting: r.adapting,
        updates: this.reports,
        top: topK(probs, 5),
        ms: { total: 0, prepare: tPrepared - t0, step: tStepped - tPrepared },
        numTensors: 0,
        numBytes: 0,
        pending: r.adapting,
        corruption,
      };
      this.reports = [];
      let refInput = -1;
      let refClean = -1;
      if (host) {
        let off = 0;
        if (withReference) {
          const cleanP = predictionOf(host, 0, numClasses, host[2 * numClasses]!);
          const inputP = predictionOf(host, numClasses, numClasses, host[2 * numClasses + 1]!);
          result.reference = { clean: cleanP, input: inputP };
          refClean = cleanP.predicted;
          refInput = inputP.predicted;
          off = 2 * numClasses + 2;
        }
        if (withPreview) result.preview = (host as Float32Array).slice(off, off + size * size * ch);
      }
      this.records.push([result.frame, result.step, label ?? -1, predicted, refInput, refClean, input.tag ?? -1]);
    } finally {
      extra?.dispose();
      if (x !== clean) x.dispose();
      clean.dispose();
    }
    const memory = tf.memory();
    result.numTensors = memory.numTensors;
    result.numBytes = memory.numBytes;
    result.ms.total = performance.now() - t0;
    return result;
  }

  getRecords(): FrameRecords {
    const r = this.records;
    return {
      frame: r.column(0),
      step: r.column(1),
      label: r.column(2),
      predicted: r.column(3),
      referenceInput: r.column(4),
      referenceClean: r.column(5),
      tag: r.column(6),
      dropped: r.dropped,
      capacity: r.capacity,
    };
  }

  clearRecords(): undefined {
    this.records.clear();
    this.frames = 0;
    return undefined;
  }

  memory(): EngineMemory {
    const m = tf.memory();
    return { numTensors: m.numTensors, numBytes: m.numBytes };
  }

  dispose(): undefined {
    // Forget the device first: a loss after this is not ours to repair.
    this.device = undefined;
    this.reloadSource = undefined;
    this.snapshot = undefined;
    this.adapter?.dispose();
    this.adapter = undefined;
    this.unloadModel();
    return undefined;
  }

  private watchDevice(): void {
    this.device = undefined;
    if (this.backend?.backend !== 'webgpu') return;
    const device = (tf.backend() as unknown as { device?: GpuDeviceLike }).device;
    if (device === undefined) return;
    this.device = device;
    void device.lost.then((info) => this.startRecovery(device, info)).catch(() => undefined);
  }

  private emit(e: EngineEvent): void {
    try {
      this.options.onEvent?.(e);
    } catch {
      // A listener's bug must not stop a recovery.
    }
  }

  private startRecovery(device: GpuDeviceLike | undefined, info: { reason: string; message: string }): Promise<void> {
    if (device === undefined || device !== this.device) return this.recovery ?? Promise.resolve();
    this.device = undefined;
    this.recovery ??= this.recover(info).finally(() => {
      this.recovery = undefined;
    });
    return this.recovery;
  }

  /**
   * Rebuilds everything the lost device held: a fresh backend instance (the
   * same backend when it starts again, else the next one in the auto order),
   * the model from its URL or Blob, the method with its current learning
   * rate, and the last CPU snapshot of the adapted state.
   */
  private async recover(info: { reason: string; message: string }): Promise<void> {
    const t0 = performance.now();
    const previous = (this.backend?.backend ?? 'webgpu') as BackendName;
    this.emit({ type: 'deviceLost', backend: previous, reason: info.reason, message: info.message });
    const snap = this.snapshot;
    const lostSteps = this.stepsSinceSnapshot;
    const lr = this.methodInfo?.lr;
    const method = this.methodConfig;
    const source = this.reloadSource;
    const hadModel = this.model !== undefined;
    try {
      try {
        this.unloadModel();
      } catch {
        // Tensors on a dead device: their memory went with it.
      }
      this.reports = [];
      // tfjs keeps one backend instance per name, bound to its device; only a re-registered factory makes a new one.
      const factory = tf.findBackendFactory(previous);
      if (factory !== null) {
        tf.removeBackend(previous);
        tf.registerBackend(previous, factory, previous === 'webgpu' ? 3 : 2);
      }
      const order = [previous, ...AUTO_ORDER.slice(AUTO_ORDER.indexOf(previous) + 1)];
      let report: BackendReport | undefined;
      const attempts: BackendReport['attempts'] = [];
      const wasmPaths = this.initOptions?.wasmPaths;
      for (const b of order) {
        try {
          report = await initBackend(b, wasmPaths === undefined ? {} : { wasmPaths });
          attempts.push(...report.attempts);
          break;
        } catch (e) {
          attempts.push({ backend: b, ok: false, reason: (e as Error).message });
        }
      }
      if (report === undefined)
        throw new EngineStateError(`no backend could be started after the device was lost (${attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')})`);
      this.backend = { backend: report.backend, attempts };
      this.watchDevice();
      if (hadModel) {
        if (source === undefined) throw new EngineStateError('the model cannot be reloaded (its bytes were not kept)');
        await this.loadModel(source);
        if (method !== undefined) {
          await this.setMethod(lr === undefined ? method : { ...method, lr });
          if (snap !== undefined) this.importState(snap.bytes);
          this.snapshot = snap;
        }
      }
      this.stepsSinceSnapshot = 0;
      this.emit({
        type: 'recovered',
        backend: report.backend,
        previousBackend: previous,
        restoredStep: snap?.step ?? null,
        lostSteps,
        ms: performance.now() - t0,
      });
    } catch (e) {
      this.broken = e instanceof Error ? e : new Error(String(e));
      this.emit({ type: 'recoveryFailed', message: this.broken.message });
      throw this.broken;
    }
  }

  private unloadModel(): void {
    this.adapter?.dispose();
    this.adapter = undefined;
    this.methodInfo = undefined;
    for (const t of this.sourceNorms.values()) t.dispose();
    this.sourceNorms.clear();
    this.model?.dispose();
    this.model = undefined;
  }

  private requireModel(): Backbone {
    if (!this.model) throw new EngineStateError('no model loaded');
    return this.model;
  }

  private requireAdapter(): Adapter {
    if (!this.adapter) throw new EngineStateError('no method set (call setMethod after loading a model)');
    return this.adapter;
  }
}

/** The device's loss info if it is lost, or becomes lost within `ms`; undefined otherwise (or without a device). */
async function lostWithin(device: GpuDeviceLike | undefined, ms: number): Promise<{ reason: string; message: string } | undefined> {
  if (device === undefined) return undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((ok) => {
    timer = setTimeout(() => ok(undefined), ms);
  });
  try {
    return await Promise.race([device.lost, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function checkCorruption(c: CorruptionSpec): void {
  if (!isCorruptionName(c.name)) throw new FrameFormatError(`unknown corruption '${c.name}'`);
  if (!Number.isInteger(c.severity) || c.severity < 1 || c.severity > 5) throw new FrameFormatError(`severity must be 1..5, got ${c.severity}`);
  if (!Number.isFinite(c.seed)) throw new FrameFormatError(`corruption seed must be a finite number, got ${c.seed}`);
  if (c.regime !== undefined && !isCorruptionRegime(c.regime)) {
    throw new FrameFormatError(`unknown corruption regime '${String(c.regime)}' (known: ${CORRUPTION_REGIMES.join(', ')})`);
  }
}

function predictionOf(host: ArrayLike<number>, offset: number, C: number, entropy: number): Prediction {
  let best = 0;
  for (let c = 1; c < C; c++) if (host[offset + c]! > host[offset + best]!) best = c;
  return { predicted: best, confidence: host[offset + best]!, entropy };
}

function topK(probs: Float32Array, k: number): Array<{ cls: number; p: number }> {
  const idx = Array.from(probs.keys());
  idx.sort((a, b) => probs[b]! - probs[a]!);
  return idx.slice(0, k).map((cls) => ({ cls, p: probs[cls]! }));
}

/**
 * Hugging Face configs name classes in `id2label` ({"0": "tench", ...}); our
 * config reader takes `class_names`/`label_names` lists, so translate.
 */
export function withClassNames(config: unknown): unknown {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return config;
  const c = config as Record<string, unknown>;
  if (c.class_names !== undefined || c.label_names !== undefined) return config;
  const id2label = c.id2label;
  if (id2label === null || typeof id2label !== 'object') return config;
  const entries = Object.entries(id2label as Record<string, unknown>);
  const names: string[] = [];
  for (const [k, v] of entries) {
    const i = Number(k);
    if (!Number.isInteger(i) || i < 0 || i >= entries.length || typeof v !== 'string') return config;
    names[i] = v;
  }
  if (names.length !== entries.length || names.some((n) => n === undefined)) return config;
  return { ...c, label_names: names };
}

/**
 * The source statistics that come with a model: the bytes or URL given, else
 * source-stats.safetensors beside a URL model's weights (absent: none).
 * Validated against the model; a bad file is a ModelFormatError.
 */
async function loadSourceStats(source: ModelSource, model: Backbone): Promise<SourceStats | undefined> {
  const given = source.sourceStats;
  if (given === false) return undefined;
  if (given instanceof ArrayBuffer) return readSourceStats(given, model);
  const explicit = typeof given === 'string';
  if (!explicit && source.kind !== 'url') return undefined;
  const url = explicit ? given : sourceStatsUrl((source as { url: string }).url);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    if (explicit) throw new ModelFormatError(`could not fetch source statistics ${url}: ${(e as Error).message}`);
    return undefined;
  }
  if (!res.ok) {
    if (explicit) throw new ModelFormatError(`could not fetch source statistics ${url}: HTTP ${res.status}`);
    return undefined;
  }
  // A host that answers a missing file with a page (an SPA fallback) has no statistics there; a file that is there is checked.
  if (!explicit && /^text\/html/i.test(res.headers.get('content-type') ?? '')) return undefined;
  return readSourceStats(new Uint8Array(await res.arrayBuffer()), model);
}

/** fetch, with a config.json's `id2label` turned into the class-name list our config reader takes. */
const fetchTranslatingConfig: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  if (!res.ok || !/config\.json$/.test(new URL(url, 'http://x/').pathname)) return res;
  const text = await res.text();
  let body = text;
  try {
    body = JSON.stringify(withClassNames(JSON.parse(text)));
  } catch {
    // Not JSON: hand it on unchanged so the loader reports it.
  }
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
};

/** A model given as bytes, with one progress report (the bytes are in memory already). */
function bytesModel(weights: ArrayBuffer, config: unknown, onProgress: ((p: LoadProgress) => void) | undefined): Backbone {
  onProgress?.({ loadedBytes: weights.byteLength, totalBytes: weights.byteLength });
  return backboneFromSafetensors(new Uint8Array(weights), config);
}
