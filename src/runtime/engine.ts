// The adaptation engine: one model, one adapter, frames in, predictions and
// update reports out, with a record of every frame for scoring. It has no UI
// and no worker code; engine-worker.ts serves it over postMessage, and a page
// may also run it on its own thread.
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './backend';
import { checkFrame, FrameFormatError, preprocessFrame } from './preprocess';
import type {
  CorruptionSpec,
  EngineMemory,
  FrameInput,
  FrameRecords,
  FrameResult,
  InitOptions,
  MethodConfig,
  MethodInfo,
  ModelInfo,
  ModelSource,
  Prediction,
} from './engine-types';
import { loadViT, type LoadProgress } from '../model/load';
import { ModelFormatError } from '../model/errors';
import { vitLogits, type ViT } from '../model/vit';
import { createAdapter, type Adapter, type AdapterOptions, type UpdateReport } from '../methods';
import { softmaxEntropy } from '../methods/entropy';
import { corrupt, isCorruptionName } from '../data/corruptions';
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
}

export class Engine {
  private model: ViT | undefined;
  private modelName = '';
  private adapter: Adapter | undefined;
  private methodInfo: MethodInfo | undefined;
  /** The source LayerNorm scale/shift, for the frozen reference forward (other weights are shared with the model). */
  private sourceNorms = new Map<string, tf.Tensor>();
  private reference = false;
  private reports: UpdateReport[] = [];
  private frames = 0;
  private readonly records = new RecordRing(RECORD_CAPACITY);
  private backend: BackendReport | undefined;

  constructor(private readonly options: EngineOptions = {}) {}

  async init(o: InitOptions): Promise<BackendReport> {
    this.backend = await initBackend(o.backend, o.wasmPaths === undefined ? {} : { wasmPaths: o.wasmPaths });
    return this.backend;
  }

  async loadModel(source: ModelSource): Promise<ModelInfo> {
    if (this.backend === undefined) throw new EngineStateError('call init (choose a backend) before loading a model');
    const onProgress = this.options.onProgress;
    const progress = onProgress ? { onProgress } : {};
    const model =
      source.kind === 'url'
        ? await loadViT(source.url, { fetch: fetchTranslatingConfig, ...progress })
        : await loadViT(new Uint8Array(source.weights), { config: withClassNames(source.config), ...progress });
    const c = model.config;
    if (c.inChannels !== 1 && c.inChannels !== 3) {
      // Checked before the running model is let go, so a model the engine cannot feed changes nothing.
      model.dispose();
      throw new ModelFormatError(`models with ${c.inChannels} input channels are not supported (1 or 3)`);
    }
    this.unloadModel();
    this.model = model;
    this.modelName = source.kind === 'url' ? source.url : (source.name ?? 'model.safetensors');
    for (const [name, v] of model.variables) this.sourceNorms.set(name, tf.clone(v));
    let parameters = 0;
    for (const t of model.params.values()) parameters += t.size;
    return {
      name: this.modelName,
      imageSize: c.imageSize,
      inChannels: c.inChannels,
      numClasses: c.numClasses,
      classNames: [...c.classNames],
      patchSize: c.patchSize,
      width: c.width,
      depth: c.depth,
      parameters,
    };
  }

  async setMethod(m: MethodConfig): Promise<MethodInfo> {
    const model = this.requireModel();
    this.adapter?.dispose();
    this.adapter = undefined;
    this.methodInfo = undefined;
    const opts = { method: m.method, ...(m.options ?? {}), ...(m.lr === undefined ? {} : { lr: m.lr }) } as AdapterOptions;
    let fisherImages: tf.Tensor4D | undefined;
    if (m.method === 'eata' && m.fisherImages && m.fisherImages.count > 0) {
      const { imageSize: s, inChannels: ch } = model.config;
      const { pixels, count } = m.fisherImages;
      if (pixels.length !== count * s * s * ch) throw new FrameFormatError(`fisherImages: ${count} images of ${s}×${s}×${ch} need ${count * s * s * ch} values, got ${pixels.length}`);
      fisherImages = tf.tensor4d(pixels, [count, s, s, ch]);
      (opts as { fisherImages?: tf.Tensor4D }).fisherImages = fisherImages;
      (opts as { fisherBatchSize?: number }).fisherBatchSize = 50;
    }
    try {
      const adapter = await createAdapter(model, opts);
      adapter.onUpdate = (r) => this.reports.push(r);
      this.adapter = adapter;
    } finally {
      fisherImages?.dispose();
    }
    const margin = (this.adapter as unknown as { margin?: number }).margin;
    this.methodInfo = {
      method: m.method,
      lr: this.adapter.lr,
      margin: typeof margin === 'number' ? margin : 0.4 * this.adapter.lnC,
      maxEntropy: this.adapter.lnC,
      ...(m.method === 'eata' ? { fisher: fisherImages !== undefined } : {}),
    };
    this.reports = [];
    return this.methodInfo;
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
      : preprocessFrame(f, { size, channels: ch as 1 | 3, ...(input.invert === undefined ? {} : { invert: input.invert }), ...(input.cropFraction === undefined ? {} : { cropFraction: input.cropFraction }) }).pixels;

    const clean = tf.tensor4d(pixels, [1, size, size, ch]);
    let x: tf.Tensor4D = clean;
    let extra: tf.Tensor | undefined;
    let result: FrameResult;
    try {
      if (corruption) x = corrupt(clean, corruption.name, corruption.severity, corruption.seed);
      const tPrepared = performance.now();
      // The reference forward and the preview travel in one read, queued before the
      // adapter's own so that on a GPU backend both transfers are in flight together.
      const withReference = this.reference;
      const withPreview = Boolean(input.preview);
      if (withReference || withPreview) {
        const xs = x;
        extra = tf.tidy(() => {
          const parts: tf.Tensor[] = [];
          if (withReference) {
            const lookup = (name: string) => this.sourceNorms.get(name) ?? model.param(name);
            const logits = vitLogits(model.config, lookup, tf.concat([clean, xs]) as tf.Tensor4D, model.finalNorm);
            parts.push(tf.reshape(tf.softmax(logits), [-1]), softmaxEntropy(logits));
          }
          if (withPreview) parts.push(tf.reshape(xs, [-1]));
          return tf.concat(parts);
        });
      }
      const [r, host] = await Promise.all([adapter.step(x), extra ? extra.data() : Promise.resolve(undefined)]);
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
    result.numTensors = tf.memory().numTensors;
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
    this.adapter?.dispose();
    this.adapter = undefined;
    this.unloadModel();
    return undefined;
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

  private requireModel(): ViT {
    if (!this.model) throw new EngineStateError('no model loaded');
    return this.model;
  }

  private requireAdapter(): Adapter {
    if (!this.adapter) throw new EngineStateError('no method set (call setMethod after loading a model)');
    return this.adapter;
  }
}

function checkCorruption(c: CorruptionSpec): void {
  if (!isCorruptionName(c.name)) throw new FrameFormatError(`unknown corruption '${c.name}'`);
  if (!Number.isInteger(c.severity) || c.severity < 1 || c.severity > 5) throw new FrameFormatError(`severity must be 1..5, got ${c.severity}`);
  if (!Number.isFinite(c.seed)) throw new FrameFormatError(`corruption seed must be a finite number, got ${c.seed}`);
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
