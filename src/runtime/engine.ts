// The adaptation engine: one model, one adapter, frames in, predictions and
// update reports out. It has no UI and no worker code; engine-serve.ts serves
// it over postMessage, and a page may also run it on its own thread. What it
// delegates: loading (src/model/load.ts), the side-by-side reference
// (reference.ts), device-loss recovery (recovery.ts), the record of every
// frame (records.ts), frame checks and corruption (frame-input.ts).
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, reportFor, runningBackend, surveyBackends, type BackendReport } from './backend';
import { chooseByMeasure, planAuto, shapeSignature, soleReason, type AutoPlan } from './auto-backend';
import { FrameFormatError } from './preprocess';
import type {
  BitmapFrameInput,
  EngineEvent,
  EngineMemory,
  FrameInput,
  FrameRecords,
  FrameResult,
  InitOptions,
  MethodCard,
  MethodConfig,
  MethodInfo,
  ModelInfo,
  ModelSource,
} from './engine-types';
import { backboneFromFile, readModelFile, type LoadProgress, type ModelFile } from '../model/load';
import { ModelFormatError } from '../model/errors';
import { downloadCache } from '../model/download-cache';
import { InvalidInputError } from '../methods/errors';
import type { Backbone } from '../model/backbone';
import { createAdapter, METHODS, methodSpec, type Adapter, type AdapterOptions, type MethodName, type UpdateReport } from '../methods';
import { computeSourceStats, fetchSourceStats, givenImagesProvenance, SOURCE_STATS_FILE, writeSourceStats, type SourceStats } from '../model/source-stats';
import { bitmapToFrame } from './frame-source';
import { EngineStateError } from './errors';
import { prepareFrame } from './frame-input';
import { RecordRing } from './records';
import { DEFAULT_SNAPSHOT_EVERY, DeviceRecovery, type Snapshot } from './recovery';
import { SourceReference } from './reference';

export { EngineStateError };
export { RECORD_CAPACITY } from './records';
export { DEFAULT_SNAPSHOT_EVERY } from './recovery';

export interface EngineOptions {
  /** Called as a model URL downloads. */
  onProgress?: (p: LoadProgress) => void;
  /** Device loss and recovery (see EngineEvent). */
  onEvent?: (e: EngineEvent) => void;
}

export class Engine {
  private model: Backbone | undefined;
  private modelName = '';
  /** The model's source statistics, for the methods that re-centre or align. */
  private sourceStats: SourceStats | undefined;
  private adapter: Adapter | undefined;
  private methodInfo: MethodInfo | undefined;
  /** The source model beside the adapted one (its norms as loaded). */
  private source: SourceReference | undefined;
  private reference = false;
  private reports: UpdateReport[] = [];
  private frames = 0;
  private readonly records = new RecordRing();
  private backend: BackendReport | undefined;
  /** 'auto' with more than one candidate: measured on the first model loaded. */
  private autoPlan: AutoPlan | undefined;
  private initOptions: InitOptions | undefined;
  /** What a lost device makes us load again: the URL or Blob streamed, with its config and statistics. */
  private reloadSource: ModelSource | undefined;
  private methodConfig: MethodConfig | undefined;
  private lastStep = -1;
  private readonly recovery: DeviceRecovery;
  /** What a lost device took, to be rebuilt on the next backend. */
  private lost: { source: ModelSource | undefined; method: MethodConfig | undefined; lr: number | undefined } | undefined;

  constructor(private readonly options: EngineOptions = {}) {
    this.recovery = new DeviceRecovery({
      emit: (e) => this.emit(e),
      drop: () => this.drop(),
      restore: (backend, snapshot) => this.restore(backend, snapshot),
      wasmPaths: () => this.initOptions?.wasmPaths,
    });
  }

  async init(o: InitOptions): Promise<BackendReport> {
    this.initOptions = o;
    const paths = o.wasmPaths === undefined ? {} : { wasmPaths: o.wasmPaths };
    const running = runningBackend();
    if (o.backend !== 'auto') this.backend = await initBackend(o.backend, paths);
    else if (running !== undefined) {
      // A page whose tfjs (shared through the ES build's peer dependencies) already runs a backend keeps it:
      // switching would move every tensor the page holds on its next use.
      this.backend = { ...(await initBackend(running, paths)), why: `the page's tfjs already runs ${running}` };
    } else {
      const plan = planAuto(await surveyBackends(paths));
      const first = plan.candidates[0]!;
      await tf.setBackend(first);
      this.autoPlan = plan.candidates.length > 1 ? plan : undefined;
      this.backend = reportFor(first, plan.attempts, this.autoPlan ? `for now: ${plan.candidates.join(', ')} are timed on the model` : soleReason(plan));
    }
    this.recovery.watch(this.backend.backend);
    return this.backend;
  }

  /** The backend running now and why it was chosen. */
  backendReport(): BackendReport {
    if (this.backend === undefined) throw new EngineStateError('no backend yet: call init');
    return this.backend;
  }

  /** Resolves when no recovery is running; throws if the last one failed. Callers serving requests await it before each. */
  whenReady(): Promise<void> {
    return this.recovery.whenReady();
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

  /** 'auto' with a choice to make: the model timed on each candidate, built for good on the fastest. */
  private async measureBackends(plan: AutoPlan, file: ModelFile): Promise<Backbone> {
    try {
      const { model, report } = await chooseByMeasure(plan, () => backboneFromFile(file), shapeSignature(file.tensors));
      this.autoPlan = undefined;
      this.backend = report;
      this.recovery.watch(report.backend);
      return model;
    } catch (e) {
      // A model that fails to build fails on every backend: back to where it was, ready for another model.
      await tf.setBackend(this.backend!.backend);
      throw e;
    }
  }

  async loadModel(source: ModelSource): Promise<ModelInfo> {
    if (this.backend === undefined) throw new EngineStateError('call init (choose a backend) before loading a model');
    const onProgress = this.options.onProgress;
    // A URL model's files go through the download cache, here on whichever thread the engine runs.
    const cache = downloadCache(source.kind === 'url' ? (source.cache ?? 'revalidate') : false);
    const file = await readModelFile(source.kind === 'url' ? source.url : source.kind === 'blob' ? source.blob : source.weights, {
      ...(source.kind === 'url' || source.config === undefined ? {} : { config: source.config }),
      ...(onProgress ? { onProgress } : {}),
      ...(source.kind === 'url' ? { cache: source.cache ?? 'revalidate' } : {}),
    });
    const model = this.autoPlan ? await this.measureBackends(this.autoPlan, file) : backboneFromFile(file);
    let sourceStats: SourceStats | undefined;
    try {
      // Checked before the running model is let go, so a model the engine cannot feed changes nothing.
      const c = model.config;
      if (c.inChannels !== 1 && c.inChannels !== 3) throw new ModelFormatError(`models with ${c.inChannels} input channels are not supported (1 or 3)`);
      sourceStats = await fetchSourceStats(model, source.sourceStats, source.kind === 'url' ? source.url : undefined, cache.fetchFn);
      await cache.settleAll();
    } catch (e) {
      model.dispose();
      throw e;
    }
    this.unloadModel();
    this.model = model;
    this.source = new SourceReference(model);
    this.sourceStats = sourceStats;
    this.modelName = source.kind === 'url' ? source.url : (source.name ?? 'model.safetensors');
    // Only a GPU device can be lost; elsewhere keeping a second copy of bytes would be waste.
    this.reloadSource =
      source.kind !== 'bytes'
        ? source
        : this.recovery.watching
          ? { kind: 'blob', blob: new Blob([source.weights]), config: source.config, name: this.modelName }
          : undefined;
    this.keepStatsForReload();
    let parameters = 0;
    for (const t of model.params.values()) parameters += t.size;
    const c = model.config;
    return {
      name: this.modelName,
      imageSize: c.imageSize,
      inChannels: c.inChannels as 1 | 3,
      numClasses: c.numClasses,
      classNames: [...c.classNames],
      family: model.family,
      patchSize: c.patchSize ?? 0,
      width: model.featureWidth,
      depth: model.normUnits,
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
    if (a.pixels.length !== a.count * s * s * ch) {
      throw new FrameFormatError(`computeSourceStats: ${a.count} images of ${s}×${s}×${ch} need ${a.count * s * s * ch} values, got ${a.pixels.length}`);
    }
    for (let i = 0; i < a.pixels.length; i++)
      if (!Number.isFinite(a.pixels[i]!)) throw new InvalidInputError(`computeSourceStats: pixel ${i} is not a finite number`);
    const images = tf.tensor4d(a.pixels, [a.count, s, s, ch]);
    try {
      // The source model's statistics, not the adapted one's.
      const stats = await computeSourceStats(model, images, {
        param: this.source!.param,
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
    this.recovery.forgetSnapshot();
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
    const result = await this.recovery.retrying(() => this.stepOnce(input));
    this.lastStep = result.step;
    if (this.recovery.stepDone(this.initOptions?.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY)) await this.exportState();
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
    this.recovery.keep(bytes, this.lastStep);
    return bytes;
  }

  importState(bytes: Uint8Array): undefined {
    this.requireAdapter().importState(bytes);
    this.recovery.keep(bytes, this.lastStep);
    return undefined;
  }

  /** Test hook: destroys the WebGPU device under the engine, as a GPU reset would. */
  loseDevice(): undefined {
    this.recovery.loseDevice(this.backend?.backend ?? 'none');
    return undefined;
  }

  private async stepOnce(input: FrameInput): Promise<FrameResult> {
    const t0 = performance.now();
    const model = this.requireModel();
    const adapter = this.requireAdapter();
    const frame = prepareFrame(input, model.config);
    const want = { reference: this.reference, preview: Boolean(input.preview) };
    let extras: tf.Tensor | undefined;
    let result: FrameResult;
    try {
      const tPrepared = performance.now();
      extras = this.source!.extras(frame.clean, frame.input, want);
      const r = await adapter.step(frame.input, extras);
      const tStepped = performance.now();
      const probs = r.probabilities;
      const predicted = r.classes[0]!;
      result = {
        step: r.step,
        frame: this.frames++,
        label: frame.label,
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
        corruption: frame.corruption,
        ...(r.alongside ? this.source!.read(r.alongside, want) : {}),
      };
      this.reports = [];
      this.records.push({
        frame: result.frame,
        step: result.step,
        label: frame.label ?? -1,
        predicted,
        referenceInput: result.reference?.input.predicted ?? -1,
        referenceClean: result.reference?.clean.predicted ?? -1,
        tag: input.tag ?? -1,
      });
    } finally {
      extras?.dispose();
      frame.dispose();
    }
    // Counted once the frame's own tensors are gone: what the engine holds between frames.
    const memory = tf.memory();
    result.numTensors = memory.numTensors;
    result.numBytes = memory.numBytes;
    result.ms.total = performance.now() - t0;
    return result;
  }

  getRecords(): FrameRecords {
    return this.records.records();
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
    this.recovery.close();
    this.reloadSource = undefined;
    this.unloadModel();
    return undefined;
  }

  private emit(e: EngineEvent): void {
    try {
      this.options.onEvent?.(e);
    } catch {
      // A listener's bug must not stop a recovery.
    }
  }

  /** A lost device: what rebuilding takes is noted, and everything on the device let go. */
  private drop(): void {
    this.lost = this.model ? { source: this.reloadSource, method: this.methodConfig, lr: this.methodInfo?.lr } : undefined;
    this.unloadModel();
  }

  /** After a lost device: the model from its URL or Blob, the method with its current learning rate, the snapshot's state. */
  private async restore(backend: BackendReport, snapshot: Snapshot | undefined): Promise<void> {
    this.backend = backend;
    this.reports = [];
    const lost = this.lost;
    this.lost = undefined;
    if (lost === undefined) return;
    if (lost.source === undefined) throw new EngineStateError('the model cannot be reloaded (its bytes were not kept)');
    await this.loadModel(lost.source);
    if (lost.method === undefined) return;
    await this.setMethod(lost.lr === undefined ? lost.method : { ...lost.method, lr: lost.lr });
    if (snapshot !== undefined) this.requireAdapter().importState(snapshot.bytes);
  }

  private unloadModel(): void {
    this.adapter?.dispose();
    this.adapter = undefined;
    this.methodInfo = undefined;
    this.source?.dispose();
    this.source = undefined;
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

function topK(probs: Float32Array, k: number): Array<{ cls: number; p: number }> {
  const idx = Array.from(probs.keys());
  idx.sort((a, b) => probs[b]! - probs[a]!);
  return idx.slice(0, k).map((cls) => ({ cls, p: probs[cls]! }));
}
