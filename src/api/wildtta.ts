// The public API: one object per adapted model, the same whether the engine
// runs on the page's thread or in a worker. Both modes drive the engine
// through the worker protocol (engine-types.ts): the worker over
// postMessage, the page-thread mode through a port that calls the same
// server (engine-serve.ts) directly, so there is one code path to test.
import type { BackendChoice, BackendReport } from '../runtime/backend';
import { EngineConnection } from '../runtime/engine-port';
import { serveEngine } from '../runtime/engine-serve';
import type {
  EngineEvent,
  EngineOp,
  EngineOps,
  EngineRequest,
  EngineResponse,
  FrameResult,
  MethodInfo,
  MethodOptionValue,
  ModelInfo,
} from '../runtime/engine-types';
import type { InvertMode } from '../runtime/preprocess';
import type { UpdateReport } from '../methods/types';
import type { MethodName } from '../methods/registry';
import { libraryAssets } from './assets';
import { givenImagesProvenance } from '../model/source-stats';
import { showValue } from '../model/errors';
import { clearDownloadCache } from '../model/download-cache';
import { DisposedError, revive } from './errors';
import { callerCallback, handshake, modelSource, progress, type Progress } from './create-parts';
import { checkCreateOptions, DEFAULT_WORKER_TIMEOUT_MS } from './options';
import { prepareFrame, type ImageSource } from './sources';
import { deleteState, getState, putState } from './store';
import { claimPageBackend, type BackendClaim } from './page-backend';

export type { Progress } from './create-parts';

export interface CreateOptions {
  /**
   * A folder URL (model.safetensors and config.json inside), a .safetensors
   * URL, a hub id `hf:org/name` (a Hugging Face model repository: its
   * model.safetensors and config.json at `revision` on `hubUrl`), a
   * File/Blob, or the file's bytes. An ArrayBuffer given with
   * `worker: true` is transferred to the worker, so it is empty afterwards
   * (no copy of a large model); a Uint8Array is copied and stays usable.
   * URLs resolve against the page's address. A malformed hub id is a HubIdError.
   */
  model: string | URL | Blob | ArrayBuffer | Uint8Array;
  /**
   * Hub ids only: a branch, tag or commit sha (default 'main'). At a commit
   * sha the files cannot change, so a cached copy is used without asking the hub.
   */
  revision?: string;
  /** Hub ids only: the hub's address, e.g. a mirror (default 'https://huggingface.co'). */
  hubUrl?: string;
  /**
   * Keep the files of a URL or hub model in the browser's Cache Storage
   * ('wildtta-models-v1'), so the next create() reads them from disk: a hub
   * id at a commit sha is used as cached; anything else is revalidated with
   * one conditional request (ETag or Last-Modified; 304 → the cached copy),
   * and used as cached when offline. Default true; false: always the network.
   * `WildTTA.clearCache()` empties it. Silently off where the browser has no
   * Cache Storage (an insecure or opaque origin).
   */
  cache?: boolean;
  /** config.json as an object, for a Blob or bytes without embedded metadata. */
  config?: object;
  /**
   * The model's source statistics (source-stats.safetensors: its URL or
   * bytes), which 'sar-align' and `methodOptions.recenter` need. By default a
   * URL model looks for source-stats.safetensors beside its weights; false:
   * none. Make them for your own model with `computeSourceStats`.
   */
  sourceStats?: string | URL | ArrayBuffer | Uint8Array | false;
  /** 'sar' (default), 'sar-align', 'tent', 'eata', 'deyo' or 'source' (no adaptation). */
  method?: MethodName;
  /** Learning rate; each method has its own default. */
  lr?: number;
  /** Method options passed on as they are (SAR: resetThreshold, marginFraction, rho...). */
  methodOptions?: Record<string, MethodOptionValue>;
  /**
   * 'auto' (default): the backend that runs this model fastest here. Every
   * backend is started; a WebGPU or WebGL that is a software renderer
   * (SwiftShader, llvmpipe) is set aside while wasm works; if more than one
   * is left, each times a few forwards of the model and the fastest wins,
   * remembered per origin for this model's shapes. `backendReport` says
   * which and why. Or one of 'webgpu', 'webgl', 'wasm', 'cpu'.
   */
  backend?: BackendChoice;
  /** Run the engine in a dedicated Web Worker (frames go to it as transferred ImageBitmaps). */
  worker?: boolean;
  /**
   * With `worker: true`: how long the worker may take to answer its first
   * message (default 30,000 ms) before create() rejects with a WorkerError
   * naming its URL. A worker script that does not load (a 404) rejects at
   * once, also naming it.
   */
  workerTimeoutMs?: number;
  /** Invert intensities before the model (true, false, or 'auto': when the border is bright). Default false. */
  invert?: InvertMode;
  /** Side of the centered square taken from each frame, as a fraction of its short side (default 1). */
  cropFraction?: number;
  /**
   * Folder with wildtta.worker.js and the tfjs .wasm files. Default: where the
   * app's bundler put them (ES module), or the folder of the script (script tag).
   */
  assetsUrl?: string;
  /** On WebGPU, copy the adapted state to CPU memory every this many steps (default 20) for recovery from a lost device. */
  snapshotEvery?: number;
  /** Model download progress. An exception it throws is reported as uncaught and does not stop the load. */
  onProgress?: (p: Progress) => void;
}

export interface Classification {
  /** Index of the most likely class (before this frame's update). */
  classIndex: number;
  /** Its name, from the model's config (or "class N"). */
  label: string;
  confidence: number;
  /** Prediction entropy, nats. */
  entropy: number;
  /** The five most likely classes. */
  top: Array<{ classIndex: number; label: string; probability: number }>;
  /** Passed the method's reliability filter, so the model adapts on it. */
  reliable: boolean;
  /** The adapter's step index. */
  step: number;
  /** Update outcomes that reached the CPU since the previous result (see UpdateReport). */
  updates: UpdateReport[];
  /** Wall time in the engine, ms. */
  ms: number;
  /** tfjs tensors alive in the engine after this frame (flat over a stream, unless something leaks). */
  numTensors: number;
  /** The backend the frame ran on. */
  backend: string;
}

export interface ClassifyOptions {
  /** The true class, when known (recorded by the engine). */
  label?: number;
  invert?: InvertMode;
  cropFraction?: number;
}

export interface AttachOptions extends Omit<ClassifyOptions, 'label'> {
  onResult?: (r: Classification) => void;
  /** Errors of single frames; the loop goes on. Also sent as 'error' events. */
  onError?: (e: unknown) => void;
  /** At most this many frames per second go to the engine (default: as many as it takes, one at a time). */
  maxFps?: number;
}

export interface Attachment {
  stop(): void;
  readonly running: boolean;
  /** Frames classified. */
  readonly frames: number;
  /** Video frames skipped because the engine was still busy with an earlier one. */
  readonly dropped: number;
}

export interface WildTTAEvents {
  /** The adapted weights went back to the source model: `reason` 'user' (reset()) or 'collapse' (the method's own reset). */
  reset: { reason: 'user' | 'collapse'; step: number | null };
  /** A frame of an attached source failed, or a lost device could not be recovered. */
  error: { error: unknown; during: 'attach' | 'recovery' };
  /** The WebGPU device was lost; the engine is rebuilding itself (calls wait for it). */
  deviceLost: { backend: string; reason: string; message: string };
  /** The engine is back on `backend`, with the adapted state of step `restoredStep` (see README). */
  recovered: { backend: string; previousBackend: string; restoredStep: number | null; lostSteps: number; ms: number };
  progress: Progress;
  result: Classification;
}

type Listener<K extends keyof WildTTAEvents> = (e: WildTTAEvents[K]) => void;

/** Runs the engine server on this thread behind the same port interface a Worker has. */
class LocalPort {
  onmessage: ((e: { data: EngineResponse }) => void) | null = null;
  onerror: ((e: ErrorEvent) => void) | null = null;
  private readonly server = serveEngine((msg) => this.onmessage?.({ data: msg }));

  postMessage(req: EngineRequest): void {
    this.server.handle(req);
  }

  terminate(): void {
    this.server.engine.dispose();
  }
}

export class WildTTA {
  /** The model's input and classes. */
  readonly model: ModelInfo;
  private methodInfo: MethodInfo;
  private report: BackendReport;
  private disposed = false;
  private readonly listeners = new Map<keyof WildTTAEvents, Set<(e: never) => void>>();
  private readonly attachments = new Set<{ stop(): void }>();

  private constructor(
    private readonly client: EngineConnection,
    private readonly options: CreateOptions,
    init: { model: ModelInfo; method: MethodInfo; backend: BackendReport },
    /** Page-thread instances only: this instance's hold on the page's tfjs backend (page-backend.ts). */
    private readonly claim: BackendClaim | undefined,
  ) {
    this.model = init.model;
    this.methodInfo = init.method;
    this.report = init.backend;
    client.onEvent = (e) => this.engineEvent(e);
  }

  /** Loads the model on the chosen backend (on this thread or in a worker) and sets up the method. */
  static async create(options: CreateOptions): Promise<WildTTA> {
    if (options === null || typeof options !== 'object' || options.model === undefined)
      throw new TypeError('WildTTA.create needs options with a model (a URL, hub id, File/Blob or bytes)');
    checkCreateOptions(options as unknown as Record<string, unknown>);
    // Before any backend starts: a malformed hub id or source fails at once.
    const source = modelSource(options);
    const assets = libraryAssets(options.assetsUrl);
    // Refused here, before the engine calls tf.setBackend, so a live page-thread instance is left on its backend.
    const claim = options.worker ? undefined : claimPageBackend(options.backend ?? 'auto');
    const port = options.worker ? new Worker(assets.worker, { name: 'wildtta' }) : (new LocalPort() as unknown as Worker);
    const client = new EngineConnection(port);
    // Events that arrive while create() runs (progress) go to the options' callback; the instance does not exist yet.
    client.onProgress = (loadedBytes, totalBytes, fromCache) => callerCallback(options.onProgress, progress(loadedBytes, totalBytes, fromCache));
    try {
      if (options.worker) await handshake(client, assets.worker.href, options.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS);
      const chosen = await client.init({
        backend: options.backend ?? 'auto',
        wasmPaths: assets.wasm,
        ...(options.snapshotEvery === undefined ? {} : { snapshotEvery: options.snapshotEvery }),
      });
      // 'auto' has chosen: a page-thread instance created meanwhile is checked against it.
      if (claim) claim.backend = chosen.backend;
      const model = await client.loadModel(source);
      const method = await client.setMethod({
        method: options.method ?? 'sar',
        ...(options.lr === undefined ? {} : { lr: options.lr }),
        ...(options.methodOptions === undefined ? {} : { options: options.methodOptions }),
      });
      const backend = await client.backend();
      // 'auto' with several candidates times them on the model and settles on one only now.
      if (claim) claim.backend = backend.backend;
      const tta = new WildTTA(client, options, { model, method, backend }, claim);
      client.onProgress = (loadedBytes, totalBytes, fromCache) => {
        const p = progress(loadedBytes, totalBytes, fromCache);
        callerCallback(options.onProgress, p);
        tta.emit('progress', p);
      };
      return tta;
    } catch (e) {
      client.terminate();
      claim?.release();
      throw revive(e);
    }
  }

  /** The backend the engine runs on now (it can change when a lost WebGPU device cannot be restarted). */
  get backend(): string {
    return this.report.backend;
  }

  /** The backend, why it was chosen, what else was tried and, when 'auto' measured, each one's time. */
  get backendReport(): BackendReport {
    return structuredClone(this.report);
  }

  /** The method, its learning rate and entropy margin. */
  get method(): MethodInfo {
    return { ...this.methodInfo };
  }

  /** Whether dispose() was called. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Classifies one image and adapts on it: the prediction is made before the
   * update this frame drives. `source`: a video (its current frame), image,
   * canvas, ImageBitmap, ImageData, or a tensor [H, W, C] / [1, H, W, C] with
   * values in [0, 1]. Any size: it is center-cropped, resized and converted to
   * the model's channels.
   */
  async classify(source: ImageSource, options: ClassifyOptions = {}): Promise<Classification> {
    this.alive('classify');
    if (options.invert !== undefined && typeof options.invert !== 'boolean' && options.invert !== 'auto')
      throw new RangeError(`classify: option invert must be true, false or 'auto', got ${showValue(options.invert)}`);
    const cropFraction = options.cropFraction ?? this.options.cropFraction ?? 1;
    const { prepared, cropped } = await prepareFrame(source, this.model.imageSize, cropFraction);
    this.alive('classify');
    const common = {
      ...(options.label === undefined ? {} : { label: options.label }),
      invert: options.invert ?? this.options.invert ?? false,
      // A bitmap is the crop already.
      cropFraction: cropped ? 1 : cropFraction,
    };
    let r: FrameResult;
    try {
      r =
        prepared.kind === 'bitmap'
          ? await this.client.call('stepBitmap', { ...common, bitmap: prepared.bitmap }, this.options.worker ? [prepared.bitmap] : [])
          : await this.client.step({ ...common, frame: prepared.frame });
    } catch (e) {
      if (prepared.kind === 'bitmap') prepared.bitmap.close();
      throw this.failure(e, 'classify');
    }
    const out = this.toClassification(r);
    for (const u of r.updates) if (u.reset) this.emit('reset', { reason: 'collapse', step: u.step });
    this.emit('result', out);
    return out;
  }

  /**
   * Classifies a live source frame after frame (requestVideoFrameCallback on a
   * video where the browser has it, else requestAnimationFrame), one frame in
   * flight: frames that arrive while the engine is busy are skipped.
   */
  attach(source: HTMLVideoElement | HTMLCanvasElement | HTMLImageElement | OffscreenCanvas, options: AttachOptions = {}): Attachment {
    this.alive('attach');
    if (options.maxFps !== undefined && !(options.maxFps > 0)) throw new RangeError(`maxFps must be a positive number, got ${options.maxFps}`);
    const minGap = options.maxFps ? 1000 / options.maxFps : 0;
    const video = typeof HTMLVideoElement === 'function' && source instanceof HTMLVideoElement ? source : undefined;
    const useVfc = video !== undefined && typeof video.requestVideoFrameCallback === 'function';
    let running = true;
    let busy = false;
    let frames = 0;
    let dropped = 0;
    let last = -Infinity;
    let handle = 0;
    const schedule = () => {
      if (!running) return;
      handle = useVfc ? video!.requestVideoFrameCallback(tick) : requestAnimationFrame(tick);
    };
    const tick = () => {
      if (!running) return;
      schedule();
      const now = performance.now();
      if (busy) {
        dropped++;
        return;
      }
      if (now - last < minGap) return;
      // A video with no frame yet (still loading, or paused before its first) is waited for, not an error.
      if (video !== undefined && (video.readyState < 2 || video.videoWidth === 0)) return;
      last = now;
      busy = true;
      const { onResult, onError, maxFps: _maxFps, ...classifyOptions } = options;
      this.classify(source, classifyOptions)
        .then((r) => {
          frames++;
          if (running) onResult?.(r);
        })
        .catch((e: unknown) => {
          if (!running) return;
          onError?.(e);
          this.emit('error', { error: e, during: 'attach' });
        })
        .finally(() => {
          busy = false;
        });
    };
    const att = {
      stop: () => {
        if (!running) return;
        running = false;
        if (useVfc) video!.cancelVideoFrameCallback(handle);
        else cancelAnimationFrame(handle);
        this.attachments.delete(att);
      },
      get running() {
        return running;
      },
      get frames() {
        return frames;
      },
      get dropped() {
        return dropped;
      },
    };
    this.attachments.add(att);
    schedule();
    return att;
  }

  /** Puts the adapted scale/shift back to the source model's and clears the optimizer and method state. */
  async reset(): Promise<void> {
    this.alive('reset');
    await this.call('reset', undefined);
    this.emit('reset', { reason: 'user', step: null });
  }

  /**
   * Computes the model's source statistics from clean in-distribution images
   * (`count` images at the model's input size, [count, H, W, C] row-major in
   * [0, 1]; `labels` optional, else the model's predictions group the class
   * means) and returns the source-stats.safetensors bytes: save them beside
   * the model, or pass them as `sourceStats` to WildTTA.create.
   */
  async computeSourceStats(images: { pixels: Float32Array; count: number; labels?: number[]; provenance?: string }): Promise<Uint8Array> {
    this.alive('computeSourceStats');
    const bytes = await this.call('computeSourceStats', images);
    // The engine runs with them from now on; `model` says so.
    (this as { model: ModelInfo }).model = {
      ...this.model,
      sourceStats: { count: images.count, provenance: images.provenance ?? givenImagesProvenance(images.count) },
    };
    return bytes;
  }

  /** The adapted state (scale/shift, momentum, method state, counters) as safetensors bytes. */
  async exportState(): Promise<Uint8Array> {
    this.alive('exportState');
    return this.call('exportState', undefined);
  }

  /** Loads a state from exportState (same model and method); a bad one throws StateFormatError and changes nothing. */
  async importState(bytes: Uint8Array | ArrayBuffer): Promise<void> {
    this.alive('importState');
    // A copy, so the caller's bytes are neither detached by the transfer nor shared with the engine.
    const copy = bytes instanceof Uint8Array ? bytes.slice() : new Uint8Array(bytes.slice(0));
    await this.call('importState', copy, this.options.worker ? [copy.buffer] : []);
  }

  /** Saves the adapted state in IndexedDB under `key` (this origin only). */
  async save(key: string): Promise<void> {
    this.alive('save');
    const bytes = await this.exportState();
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
    await putState(key, { bytes: own, method: this.methodInfo.method, model: this.model.name, savedAt: Date.now() });
  }

  /** Loads the state saved under `key`; StorageError when there is none, StateFormatError when it belongs to another method or model. */
  async restore(key: string): Promise<void> {
    this.alive('restore');
    const saved = await getState(key);
    this.alive('restore');
    await this.importState(saved.bytes);
  }

  /** Deletes a saved state (no error when there is none). */
  static async forget(key: string): Promise<void> {
    await deleteState(key);
  }

  /**
   * Empties the download cache (the model files `cache` kept); resolves to
   * the number of files removed (0 where the browser has no Cache Storage).
   * The next create() of a URL or hub model fetches it again.
   */
  static clearCache(): Promise<number> {
    return clearDownloadCache();
  }

  /** tfjs tensors and bytes the engine holds. */
  async memory(): Promise<{ numTensors: number; numBytes: number }> {
    this.alive('memory');
    return this.call('memory', undefined);
  }

  /**
   * Destroys the WebGPU device on purpose, as a driver reset would, so a page
   * can rehearse its handling of `deviceLost` and `recovered`. Refused with
   * EngineStateError on a backend without a device.
   */
  async simulateDeviceLoss(): Promise<void> {
    this.alive('simulateDeviceLoss');
    await this.call('loseDevice', undefined);
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof WildTTAEvents>(type: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(type);
    if (set === undefined) this.listeners.set(type, (set = new Set()));
    set.add(listener as (e: never) => void);
    return () => this.off(type, listener);
  }

  off<K extends keyof WildTTAEvents>(type: K, listener: Listener<K>): void {
    this.listeners.get(type)?.delete(listener as (e: never) => void);
  }

  /** Stops attached sources, frees every tensor, ends the worker. Later calls throw DisposedError. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const a of [...this.attachments]) a.stop();
    try {
      await this.client.call('dispose', undefined);
    } catch {
      // Already gone (a crashed worker): nothing left to free.
    }
    this.client.terminate();
    this.claim?.release();
    this.listeners.clear();
  }

  private async call<K extends EngineOp>(op: K, args: EngineOps[K]['args'], transfer: Transferable[] = []): Promise<EngineOps[K]['result']> {
    try {
      return await this.client.call(op, args, transfer);
    } catch (e) {
      throw this.failure(e, op);
    }
  }

  /** After dispose() every call says so, whatever the engine answered. */
  private failure(e: unknown, op: string): unknown {
    return this.disposed ? new DisposedError(`${op}: this WildTTA instance was disposed`) : revive(e);
  }

  private alive(op: string): void {
    if (this.disposed) throw new DisposedError(`${op}: this WildTTA instance was disposed; create a new one`);
  }

  private engineEvent(e: EngineEvent): void {
    if (e.type === 'deviceLost') this.emit('deviceLost', { backend: e.backend, reason: e.reason, message: e.message });
    else if (e.type === 'recovered') {
      this.report = { backend: e.backend as BackendReport['backend'], attempts: [], why: `${e.previousBackend} lost its device; recovered on ${e.backend}` };
      // The page's tfjs moved with it, so the claim does too.
      if (this.claim) this.claim.backend = e.backend;
      this.emit('recovered', { backend: e.backend, previousBackend: e.previousBackend, restoredStep: e.restoredStep, lostSteps: e.lostSteps, ms: e.ms });
    } else this.emit('error', { error: new Error(`recovery from a lost device failed: ${e.message}`), during: 'recovery' });
  }

  private emit<K extends keyof WildTTAEvents>(type: K, e: WildTTAEvents[K]): void {
    for (const l of this.listeners.get(type) ?? []) {
      callerCallback(l as Listener<K>, e);
    }
  }

  private toClassification(r: FrameResult): Classification {
    const name = (i: number) => this.model.classNames[i] ?? `class ${i}`;
    return {
      classIndex: r.predicted,
      label: name(r.predicted),
      confidence: r.confidence,
      entropy: r.entropy,
      top: r.top.map((t) => ({ classIndex: t.cls, label: name(t.cls), probability: t.p })),
      reliable: r.reliable,
      step: r.step,
      updates: r.updates,
      ms: r.ms.total,
      numTensors: r.numTensors,
      backend: this.report.backend,
    };
  }
}
