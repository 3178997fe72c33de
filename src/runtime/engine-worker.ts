// Web Worker entry: serves an Engine over postMessage (protocol in
// engine-types.ts). Operations run one after another in arrival order, so a
// reset or a method change never lands in the middle of a step.
import { Engine } from './engine';
import { WASM_PATHS } from './wasm-assets';
import type { EngineOps, EngineRequest, EngineResponse, FrameResult } from './engine-types';

// The project compiles against the DOM library; these are the two worker-scope members used here.
const scope = self as unknown as {
  postMessage(msg: unknown, transfer: Transferable[]): void;
  onmessage: ((e: MessageEvent<EngineRequest>) => void) | null;
};

const post = (msg: EngineResponse, transfer: Transferable[] = []) => scope.postMessage(msg, transfer);

const engine = new Engine({
  onProgress: (p) => post({ event: 'progress', loadedBytes: p.loadedBytes, totalBytes: p.totalBytes ?? null }),
});

type Handler = { [K in keyof EngineOps]: (args: EngineOps[K]['args']) => EngineOps[K]['result'] | Promise<EngineOps[K]['result']> };

const handlers: Handler = {
  // The wasm binaries are this build's own assets unless the caller says otherwise.
  init: (o) => engine.init({ ...o, wasmPaths: o.wasmPaths ?? WASM_PATHS }),
  loadModel: (s) => engine.loadModel(s),
  setMethod: (m) => engine.setMethod(m),
  setLr: (lr) => engine.setLr(lr),
  setReference: (on) => engine.setReference(on),
  reset: () => engine.reset(),
  step: (f) => engine.step(f),
  flush: () => engine.flush(),
  records: () => engine.getRecords(),
  clearRecords: () => engine.clearRecords(),
  memory: () => engine.memory(),
  dispose: () => engine.dispose(),
};

let queue: Promise<unknown> = Promise.resolve();

scope.onmessage = (e) => {
  const { id, op, args } = e.data;
  queue = queue.then(async () => {
    try {
      const handler = handlers[op] as ((a: unknown) => unknown) | undefined;
      if (handler === undefined) throw new TypeError(`unknown engine operation '${String(op)}'`);
      const value = await handler(args);
      const transfer: Transferable[] = [];
      if (op === 'step') {
        const preview = (value as FrameResult).preview;
        if (preview) transfer.push(preview.buffer);
      }
      post({ id, ok: true, value }, transfer);
    } catch (err) {
      const error = err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) };
      post({ id, ok: false, error });
    }
  });
};
