// The download cache: model files fetched by URL or hub id are kept in the
// browser's Cache Storage, keyed by URL, so the next create() streams them
// from disk instead of the network. The engine uses it on whichever thread it
// runs (a worker has `caches` as the page has, in a secure context), so both
// paths share this code. Where there is no Cache Storage (Node, an insecure
// or opaque origin) every call is a plain fetch, silently.
//
// Revalidation, per policy:
//   'immutable'  (a hub id at a commit sha): a cached copy is used with no request.
//   'revalidate' (a branch such as 'main', or a plain URL): a conditional GET
//                with the cached copy's ETag (If-None-Match) or Last-Modified
//                (If-Modified-Since). 304: the cached copy; 200: the new file,
//                which replaces it. One round trip either way, and a changed
//                file arrives in that same answer (a HEAD first would cost a
//                second one). A cached copy without either validator cannot be
//                checked, so the file is fetched again. No connection, or a
//                server error (5xx): the cached copy, so a page that loaded a
//                model once still starts offline.

export const CACHE_NAME = 'wildtta-models-v1';

/** How a cached copy is trusted (see above); false: no cache at all. */
export type CachePolicy = 'immutable' | 'revalidate' | false;

export interface Fetched {
  response: Response;
  /** The body comes from Cache Storage, not the network. */
  fromCache: boolean;
}

export interface DownloadCache {
  /** `url` through the cache, per the policy; a network copy (HTTP 200) is stored as it is read. */
  fetch(url: string): Promise<Fetched>;
  /** A fetch function over this cache, for readers that need only the response. */
  readonly fetchFn: typeof fetch;
  /** Waits until the copy of `url` being stored is written (or failed to be). */
  settle(url: string): Promise<void>;
  /** Deletes the cached copy of `url` (one that failed validation). */
  discard(url: string): Promise<void>;
  /**
   * Waits until every copy being stored is written (or failed to be). A
   * file read through `fetchFn` (config.json, the source statistics) would
   * otherwise still be on its way into the cache when create() resolves, and
   * a clearCache() right after it could miss it.
   */
  settleAll(): Promise<void>;
}

/** A cache over `doFetch` with `policy`; with policy false, or no Cache Storage here, a plain fetch. */
export function downloadCache(policy: CachePolicy, doFetch: typeof fetch = globalThis.fetch.bind(globalThis)): DownloadCache {
  let storage: Promise<Cache | undefined> | undefined;
  const open = () => (storage ??= policy === false ? Promise.resolve(undefined) : openStorage());
  const writes = new Map<string, Promise<void>>();

  const fetchCached = async (url: string): Promise<Fetched> => {
    const cache = await open();
    if (cache === undefined) return { response: await doFetch(url), fromCache: false };
    const cached = await cache.match(url).catch(() => undefined);
    if (cached !== undefined && policy === 'immutable') return { response: cached, fromCache: true };
    const etag = cached?.headers.get('etag');
    const modified = cached?.headers.get('last-modified');
    const conditional: Record<string, string> | undefined = etag ? { 'If-None-Match': etag } : modified ? { 'If-Modified-Since': modified } : undefined;
    let response: Response;
    try {
      // A conditional header makes the browser's HTTP cache step aside (Fetch spec), so a 304 reaches us.
      response = await doFetch(url, conditional ? { headers: conditional } : undefined);
    } catch (e) {
      if (cached !== undefined) return { response: cached, fromCache: true };
      throw e;
    }
    if (cached !== undefined && (response.status === 304 || response.status >= 500)) {
      void response.body?.cancel().catch(() => undefined);
      return { response: cached, fromCache: true };
    }
    if (response.status === 200) {
      // The body is teed: the reader gets one branch as it arrives, Cache Storage the other.
      const write = cache.put(url, response.clone()).catch(() => undefined); // full disk, Vary: *: the cache is optional
      writes.set(url, write);
      void write.then(() => writes.get(url) === write && writes.delete(url));
    }
    return { response, fromCache: false };
  };

  return {
    fetch: fetchCached,
    fetchFn: ((input: RequestInfo | URL) => fetchCached(input instanceof Request ? input.url : String(input)).then((f) => f.response)) as typeof fetch,
    settle: async (url) => {
      await writes.get(url);
    },
    settleAll: async () => {
      await Promise.all(writes.values());
    },
    discard: async (url) => {
      await writes.get(url);
      const cache = await open();
      await cache?.delete(url).catch(() => false);
    },
  };
}

/**
 * Reads `url` through `cache` with `read`. A cached copy that `read` refuses
 * (a write cut short, a damaged disk) is deleted and the file fetched again;
 * a network copy that `read` refuses is deleted too, so a bad download is not
 * kept, and its error thrown.
 */
export async function readThroughCache<T>(cache: DownloadCache, url: string, read: (f: Fetched) => Promise<T>): Promise<T> {
  // At most two reads: a refused cached copy earns one fetch from the network, a refused network copy none.
  for (let retried = false; ; retried = true) {
    const fetched = await cache.fetch(url);
    try {
      const value = await read(fetched);
      await cache.settle(url);
      return value;
    } catch (e) {
      await cache.discard(url);
      if (retried || !fetched.fromCache) throw e;
    }
  }
}

/** Deletes every cached model file; resolves to the number of entries removed (0 where there is no Cache Storage). */
export async function clearDownloadCache(): Promise<number> {
  if (typeof caches === 'undefined') return 0;
  try {
    if (!(await caches.has(CACHE_NAME))) return 0;
    const cache = await caches.open(CACHE_NAME);
    let removed = 0;
    for (const key of await cache.keys()) if (await cache.delete(key)) removed++;
    return removed;
  } catch {
    return 0; // an opaque origin refuses Cache Storage with a SecurityError: nothing of ours is there
  }
}

async function openStorage(): Promise<Cache | undefined> {
  if (typeof caches === 'undefined') return undefined;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return undefined; // SecurityError in an opaque origin (sandboxed iframe, file:)
  }
}
