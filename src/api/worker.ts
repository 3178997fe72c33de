// The library's worker bundle (dist/wildtta.worker.js, a classic script so
// it loads under `worker-src 'self'` in any browser with workers): the same
// engine server the page-thread mode uses. The page passes the WASM folder
// with init.
// tfjs-core's gradients: see src/index.ts.
import '@tensorflow/tfjs-core'; // first: the gradients' modules read its flags as they load
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { serveEngine } from '../runtime/engine-serve';
import type { EngineRequest } from '../runtime/engine-types';

const scope = self as unknown as {
  postMessage(msg: unknown, transfer: Transferable[]): void;
  onmessage: ((e: MessageEvent<EngineRequest>) => void) | null;
};

const server = serveEngine((msg, transfer) => scope.postMessage(msg, transfer));
scope.onmessage = (e) => server.handle(e.data);
