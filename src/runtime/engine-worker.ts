// Web Worker entry of the demo: serves an Engine over postMessage (protocol in
// engine-types.ts, order and handlers in engine-serve.ts), with the wasm
// binaries of this build.
// tfjs-core's gradients: see src/index.ts.
import '@tensorflow/tfjs-core'; // first: the gradients' modules read its flags as they load
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { serveEngine } from './engine-serve';
import { WASM_PATHS } from './wasm-assets';
import type { EngineRequest } from './engine-types';

// The project compiles against the DOM library; these are the two worker-scope members used here.
const scope = self as unknown as {
  postMessage(msg: unknown, transfer: Transferable[]): void;
  onmessage: ((e: MessageEvent<EngineRequest>) => void) | null;
};

const server = serveEngine((msg, transfer) => scope.postMessage(msg, transfer), { wasmPaths: WASM_PATHS });
scope.onmessage = (e) => server.handle(e.data);
