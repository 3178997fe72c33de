// Serves an Engine to requests in the worker protocol (engine-types.ts), in
// arrival order, so a reset or a method change never lands in the middle of a
// step. The engine worker uses it over postMessage; the public API uses the
// same function on the page's own thread when no worker is asked for, so both
// run exactly the same code.
import { Engine } from './engine';
import type { EngineOps, EngineRequest, EngineResponse, FrameResult, SerializedError } from './engine-types';

export interface ServeOptions {
  /** Where the wasm binaries are when an init request names none. */
  wasmPaths?: string | Record<string, string>;
}

export interface EngineServer {
  /** Runs one request after those before it; the reply goes to `post`. */
  handle(req: EngineRequest): void;
  engine: Engine;
}

type Handler = { [K in keyof EngineOps]: (args: EngineOps[K]['args']) => EngineOps[K]['result'] | Promise<EngineOps[K]['result']> };

export function serveEngine(post: (msg: EngineResponse, transfer: Transferable[]) => void, options: ServeOptions = {}): EngineServer {
  const engine = new Engine({
    onProgress: (p) => post({ event: 'progress', loadedBytes: p.loadedBytes, totalBytes: p.totalBytes ?? null, fromCache: p.fromCache ?? false }, []),
    onEvent: (data) => post({ event: 'engine', data }, []),
  });
  const handlers: Handler = {
    init: (o) => engine.init({ ...o, ...(o.wasmPaths === undefined && options.wasmPaths !== undefined ? { wasmPaths: options.wasmPaths } : {}) }),
    methods: () => engine.methods(),
    backend: () => engine.backendReport(),
    loadModel: (s) => engine.loadModel(s),
    setMethod: (m) => engine.setMethod(m),
    setLr: (lr) => engine.setLr(lr),
    setReference: (on) => engine.setReference(on),
    reset: () => engine.reset(),
    step: (f) => engine.step(f),
    stepBitmap: (f) => engine.stepBitmap(f),
    flush: () => engine.flush(),
    records: () => engine.getRecords(),
    clearRecords: () => engine.clearRecords(),
    memory: () => engine.memory(),
    exportState: () => engine.exportState(),
    computeSourceStats: (a) => engine.computeSourceStats(a),
    importState: (bytes) => engine.importState(bytes),
    loseDevice: () => engine.loseDevice(),
    dispose: () => engine.dispose(),
  };
  let queue: Promise<unknown> = Promise.resolve();
  const handle = (req: EngineRequest): void => {
    const { id, op, args } = req;
    queue = queue.then(async () => {
      try {
        const handler = handlers[op] as ((a: unknown) => unknown) | undefined;
        if (handler === undefined) throw new TypeError(`unknown engine operation '${String(op)}'`);
        // A lost GPU device is being rebuilt: requests wait for it (dispose does not).
        if (op !== 'dispose') await engine.whenReady();
        const value = await handler(args);
        const transfer: Transferable[] = [];
        if (op === 'step' || op === 'stepBitmap') {
          const preview = (value as FrameResult).preview;
          if (preview) transfer.push(preview.buffer);
        }
        if (op === 'exportState' || op === 'computeSourceStats') transfer.push((value as Uint8Array).buffer);
        post({ id, ok: true, value }, transfer);
      } catch (err) {
        post({ id, ok: false, error: serializeError(err) }, []);
      }
    });
  };
  return { handle, engine };
}

/**
 * An error as it crosses to the page: name, message, and its own fields that
 * structured cloning keeps, so the page's copy has BackendError's attempts
 * and NonFiniteOutputError's cause, not only the message.
 */
export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const detail: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(err)) {
    if (key === 'name' || key === 'message' || key === 'stack') continue;
    try {
      detail[key] = structuredClone(value);
    } catch {
      // A field that cannot cross (a function, a DOM object) stays behind; the message still says what happened.
    }
  }
  return Object.keys(detail).length > 0 ? { name: err.name, message: err.message, detail } : { name: err.name, message: err.message };
}
