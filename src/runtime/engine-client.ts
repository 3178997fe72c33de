// The page's side of the engine worker: typed calls, load progress, and a
// bounded frame gate for live sources.
import type { BackendReport } from './backend';
import type {
  EngineMemory,
  EngineOp,
  EngineOps,
  EngineResponse,
  FrameInput,
  FrameRecords,
  FrameResult,
  InitOptions,
  MethodConfig,
  MethodInfo,
  ModelInfo,
  ModelSource,
  SerializedError,
} from './engine-types';
import type { UpdateReport } from '../methods/types';

/** An error thrown in the worker, with its original name (InvalidInputError, FrameFormatError, ModelFormatError...). */
export class EngineError extends Error {
  constructor(readonly remote: SerializedError) {
    super(remote.message);
    this.name = remote.name;
  }
}

/** The worker was terminated or crashed while a call was outstanding. */
export class EngineClosedError extends Error {
  override readonly name = 'EngineClosedError';
}

/** Starts the engine worker shipped with this build. */
export function startEngineWorker(): Worker {
  return new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: 'wildtta-engine' });
}

export class EngineClient {
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private closed = false;
  /** Download progress of loadModel with a URL. */
  onProgress?: (loadedBytes: number, totalBytes: number | null) => void;

  constructor(readonly worker: Worker = startEngineWorker()) {
    worker.onmessage = (e: MessageEvent<EngineResponse>) => this.receive(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      this.fail(new EngineClosedError(`the engine worker failed: ${e.message || 'script error'}`));
    };
  }

  call<K extends EngineOp>(op: K, args: EngineOps[K]['args'], transfer: Transferable[] = []): Promise<EngineOps[K]['result']> {
    if (this.closed) return Promise.reject(new EngineClosedError('the engine is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  init(o: InitOptions): Promise<BackendReport> {
    return this.call('init', o);
  }

  /** Bytes sources are transferred: the caller's ArrayBuffer is detached afterwards. */
  loadModel(source: ModelSource): Promise<ModelInfo> {
    return this.call('loadModel', source, source.kind === 'bytes' ? [source.weights] : []);
  }

  setMethod(m: MethodConfig): Promise<MethodInfo> {
    return this.call('setMethod', m);
  }

  setLr(lr: number): Promise<number> {
    return this.call('setLr', lr);
  }

  setReference(on: boolean): Promise<boolean> {
    return this.call('setReference', on);
  }

  reset(): Promise<undefined> {
    return this.call('reset', undefined);
  }

  flush(): Promise<UpdateReport[]> {
    return this.call('flush', undefined);
  }

  /**
   * One frame. A typed array that spans its whole buffer is transferred, not
   * copied (the caller's array is empty afterwards); a view into a larger
   * buffer (a dataset) is copied, so the rest of that buffer stays usable.
   */
  step(input: FrameInput): Promise<FrameResult> {
    const data = input.frame.data as unknown;
    const whole = ArrayBuffer.isView(data) && data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
    return this.call('step', input, whole ? [(data as ArrayBufferView<ArrayBuffer>).buffer] : []);
  }

  records(): Promise<FrameRecords> {
    return this.call('records', undefined);
  }

  clearRecords(): Promise<undefined> {
    return this.call('clearRecords', undefined);
  }

  memory(): Promise<EngineMemory> {
    return this.call('memory', undefined);
  }

  /** Stops the worker; outstanding calls fail with EngineClosedError. */
  terminate(): void {
    if (this.closed) return;
    this.worker.terminate();
    this.fail(new EngineClosedError('the engine was closed'));
  }

  private receive(msg: EngineResponse): void {
    if ('event' in msg) {
      if (msg.event === 'progress') this.onProgress?.(msg.loadedBytes, msg.totalBytes);
      return;
    }
    const call = this.calls.get(msg.id);
    if (!call) return;
    this.calls.delete(msg.id);
    if (msg.ok) call.resolve(msg.value);
    else call.reject(new EngineError(msg.error));
  }

  private fail(err: Error): void {
    this.closed = true;
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
  }
}

/**
 * At most one frame in flight and one waiting: a live source (a camera) that
 * produces frames faster than the engine steps does not build a queue.
 * `offer` while busy parks the frame, replacing (and counting as dropped) any
 * frame already parked, so the engine always gets the newest one next.
 * Parked frames can be thunks, so a dropped frame costs no capture work.
 */
export class FrameGate<T> {
  private busy = false;
  private parked: T | undefined;
  /** Frames replaced before they reached the engine. */
  dropped = 0;
  /** Frames handed to the engine. */
  sent = 0;

  /** Called when `run` rejects; the gate goes on with the next frame either way. */
  onError?: (err: unknown) => void;

  constructor(private readonly run: (frame: T) => Promise<void>) {}

  get idle(): boolean {
    return !this.busy;
  }

  /** 'sent' (started now), 'parked' (next in line), or 'replaced' (the parked frame was dropped for this one). */
  offer(frame: T): 'sent' | 'parked' | 'replaced' {
    if (!this.busy) {
      this.start(frame);
      return 'sent';
    }
    const replaced = this.parked !== undefined;
    if (replaced) this.dropped++;
    this.parked = frame;
    return replaced ? 'replaced' : 'parked';
  }

  /** Forgets the parked frame (when the source stops); it counts as dropped. */
  clear(): void {
    if (this.parked !== undefined) this.dropped++;
    this.parked = undefined;
  }

  private start(frame: T): void {
    this.busy = true;
    this.sent++;
    void this.run(frame)
      .catch((e: unknown) => this.onError?.(e))
      .finally(() => {
        const next = this.parked;
        this.parked = undefined;
        this.busy = false;
        if (next !== undefined) this.start(next);
      });
  }
}
