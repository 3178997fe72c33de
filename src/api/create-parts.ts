// The parts of WildTTA.create that do not need the instance: where the model
// comes from (hub ids resolved on the page), the worker's handshake, and the
// page's callbacks, which must not break a load.
import { EngineClosedError, type EngineConnection } from '../runtime/engine-port';
import type { ModelSource } from '../runtime/engine-types';
import { isHubId, resolveHubModel } from '../model/hub';
import { SourceError, WorkerError } from './errors';

export interface Progress {
  loadedBytes: number;
  /** From the server's content-length; null when it sent none. */
  totalBytes: number | null;
  /** loadedBytes / totalBytes, or null. */
  fraction: number | null;
  /** The weights are read from the download cache, not the network (see `cache`). */
  fromCache: boolean;
}

/** What create() reads of its options to find the model (CreateOptions documents each). */
export interface SourceOptions {
  model: string | URL | Blob | ArrayBuffer | Uint8Array;
  config?: object;
  sourceStats?: string | URL | ArrayBuffer | Uint8Array | false;
  revision?: string;
  hubUrl?: string;
  cache?: boolean;
}

/**
 * The worker's first answer (to a request any engine answers at once), or
 * a WorkerError naming its URL: one that never answers (a server that sends
 * an HTML page for the script, a stalled download) would otherwise leave
 * create() pending forever, and one that does not load says only "error".
 */
export async function handshake(client: EngineConnection, url: string, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    if (Number.isFinite(timeoutMs))
      timer = setTimeout(
        () =>
          reject(
            new WorkerError(`the engine worker ${url} did not answer within ${timeoutMs} ms (is it served there? set assetsUrl, or workerTimeoutMs)`, url),
          ),
        timeoutMs,
      );
  });
  try {
    await Promise.race([client.methods(), late]);
  } catch (e) {
    if (e instanceof EngineClosedError)
      throw new WorkerError(`the engine worker ${url} did not start (not found, not JavaScript, or it threw while loading): ${e.message}`, url);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Calls a page's callback (a listener, onProgress): its bug is the page's,
 * not the engine's, so it is reported (as an uncaught error, where the
 * page's error handlers and the console see it) without stopping the load or
 * the other listeners.
 */
export function callerCallback<T>(fn: ((e: T) => void) | undefined, e: T): void {
  try {
    fn?.(e);
  } catch (err) {
    if (typeof reportError === 'function') reportError(err);
    else
      setTimeout(() => {
        throw err;
      });
  }
}

export function modelSource(o: SourceOptions): ModelSource {
  const s = o.sourceStats;
  const stats: Pick<ModelSource, 'sourceStats'> =
    s === undefined
      ? {}
      : s === false
        ? { sourceStats: false }
        : typeof s === 'string' || s instanceof URL
          ? { sourceStats: new URL(s, typeof location === 'undefined' ? undefined : location.href).href }
          : { sourceStats: s instanceof Uint8Array ? (s.slice().buffer as ArrayBuffer) : s };
  return { ...modelOnly(o), ...stats };
}

export const progress = (loadedBytes: number, totalBytes: number | null, fromCache: boolean): Progress => ({
  loadedBytes,
  totalBytes,
  fraction: totalBytes ? loadedBytes / totalBytes : null,
  fromCache,
});

function modelOnly(o: SourceOptions): ModelSource {
  const m = o.model;
  const config = o.config === undefined ? {} : { config: o.config };
  const hub = (typeof m === 'string' || m instanceof URL) && isHubId(m.toString());
  if (!hub && (o.revision !== undefined || o.hubUrl !== undefined)) throw new SourceError('revision and hubUrl apply to a hub id (model: "hf:org/name") only');
  if (hub) {
    // Resolved here, on the page, so the engine (on this thread or in a worker) sees a plain URL either way.
    const r = resolveHubModel(m.toString(), {
      ...(o.revision === undefined ? {} : { revision: o.revision }),
      ...(o.hubUrl === undefined ? {} : { hubUrl: o.hubUrl }),
    });
    return { kind: 'url', url: r.files.weights, cache: o.cache === false ? false : r.immutable ? 'immutable' : 'revalidate' };
  }
  if (typeof m === 'string' || m instanceof URL) {
    // Absolute, so a worker (whose own address is the worker script's) fetches the same file.
    return { kind: 'url', url: new URL(m, typeof location === 'undefined' ? undefined : location.href).href, cache: o.cache === false ? false : 'revalidate' };
  }
  if (typeof Blob !== 'undefined' && m instanceof Blob) return { kind: 'blob', blob: m, ...config, ...(m instanceof File ? { name: m.name } : {}) };
  if (m instanceof ArrayBuffer) return { kind: 'bytes', weights: m, ...config };
  // A copy, so the caller's array is not emptied by the transfer to a worker (ArrayBuffers are transferred, as documented).
  if (m instanceof Uint8Array) return { kind: 'bytes', weights: m.slice().buffer as ArrayBuffer, ...config };
  throw new SourceError(`model must be a URL, a File/Blob, an ArrayBuffer or a Uint8Array; got ${m === null ? 'null' : typeof m}`);
}
