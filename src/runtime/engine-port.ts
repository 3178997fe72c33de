// The typed client of the engine protocol (engine-types.ts) over anything
// shaped like a Worker: the demo's worker, the library's worker, or the
// library's same-thread port. It starts no worker itself, so a bundle that
// imports it does not pull in a worker build (engine-client.ts adds that).
import type { BackendReport } from './backend';
import type {
  EngineEvent,
  EngineMemory,
  EngineOp,
  EngineOps,
  EngineResponse,
  FrameInput,
  FrameRecords,
  FrameResult,
  InitOptions,
  MethodCard,
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

export class EngineConnection {
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private closed = false;
  /** Download progress of loadModel with a URL. */
  onProgress?: (loadedBytes: number, totalBytes: number | null, fromCache: boolean) => void;
  /** Device loss and recovery in the worker. */
  onEvent?: (e: EngineEvent) => void;

  constructor(readonly worker: Worker) {
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

  /** The backend running now and why it was chosen. */
  backend(): Promise<BackendReport> {
    return this.call('backend', undefined);
  }

  methods(): Promise<MethodCard[]> {
    return this.call('methods', undefined);
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
      if (msg.event === 'progress') this.onProgress?.(msg.loadedBytes, msg.totalBytes, msg.fromCache);
      else if (msg.event === 'engine') this.onEvent?.(msg.data);
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
