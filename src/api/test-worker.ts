// Test support (no test of its own): a Web Worker stand-in for Node that
// serves the engine with a worker's copy semantics (structured clone, and
// transfer lists detach the sender's buffers), or that never answers, or
// that fails to load as a 404 script does.
import { serveEngine } from '../runtime/engine-serve';
import type { EngineRequest, EngineResponse } from '../runtime/engine-types';

export type FakeWorkerMode = 'engine' | 'silent' | 'missing';

export function installFakeWorker(mode: () => FakeWorkerMode): { urls: string[]; restore: () => void } {
  const urls: string[] = [];
  const previous = (globalThis as { Worker?: unknown }).Worker;
  class FakeWorker {
    onmessage: ((e: { data: EngineResponse }) => void) | null = null;
    onerror: ((e: Event) => void) | null = null;
    private readonly server;
    private readonly mode = mode();
    constructor(url: URL | string) {
      urls.push(String(url));
      this.server = serveEngine((msg, transfer) => {
        const copy = structuredClone(msg, { transfer });
        setTimeout(() => this.onmessage?.({ data: copy }));
      });
      // A worker script that does not load: an error event without a message, as browsers fire it.
      if (this.mode === 'missing') setTimeout(() => this.onerror?.(Object.assign(new Event('error'), { preventDefault() {} })));
    }
    postMessage(req: EngineRequest, transfer: Transferable[] = []): void {
      const copy = structuredClone(req, { transfer });
      if (this.mode === 'engine') setTimeout(() => this.server.handle(copy));
    }
    terminate(): void {
      this.server.engine.dispose();
    }
  }
  (globalThis as { Worker?: unknown }).Worker = FakeWorker;
  return { urls, restore: () => ((globalThis as { Worker?: unknown }).Worker = previous) };
}
