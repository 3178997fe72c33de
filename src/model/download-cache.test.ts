// The download cache's policy, in Node with an in-memory stand-in for the
// browser's Cache Storage (Node has none): what is asked of the server on a
// second load, what a 304, an outage or a damaged copy lead to, and that with
// no Cache Storage at all the loader fetches as before. The real Cache Storage
// (page and worker) is exercised by e2e/hub-cache.e2e.ts.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readModelFile } from './load';
import { CACHE_NAME, clearDownloadCache, downloadCache } from './download-cache';
import { ModelFormatError } from './errors';
import type { LoadProgress } from './safetensors-stream';

const SHIPPED = join(import.meta.dirname, '..', '..', 'public', 'models', 'fmnist-vit');
const WEIGHTS = new Uint8Array(readFileSync(join(SHIPPED, 'model.safetensors')));
const CONFIG = new Uint8Array(readFileSync(join(SHIPPED, 'config.json')));
const BASE = 'https://hub.test/org/m/resolve/main/';

/** Cache Storage as the browser keeps it: bodies read in full on put, keyed by URL. */
class MemoryCache {
  readonly entries = new Map<string, { body: Uint8Array; status: number; headers: [string, string][] }>();
  async match(req: RequestInfo | URL): Promise<Response | undefined> {
    const e = this.entries.get(String(req instanceof Request ? req.url : req));
    return e && new Response(e.body.slice(), { status: e.status, headers: e.headers });
  }
  async put(req: RequestInfo | URL, res: Response): Promise<void> {
    const body = new Uint8Array(await res.arrayBuffer());
    this.entries.set(String(req instanceof Request ? req.url : req), { body, status: res.status, headers: [...res.headers] });
  }
  async delete(req: RequestInfo | URL): Promise<boolean> {
    return this.entries.delete(String(req instanceof Request ? req.url : req));
  }
  async keys(): Promise<Request[]> {
    return [...this.entries.keys()].map((u) => new Request(u));
  }
}

function installCaches(): MemoryCache {
  const cache = new MemoryCache();
  let opened = false;
  (globalThis as { caches?: unknown }).caches = {
    open: async (name: string) => {
      assert.equal(name, CACHE_NAME);
      opened = true;
      return cache;
    },
    has: async () => opened,
  };
  return cache;
}

afterEach(() => {
  delete (globalThis as { caches?: unknown }).caches;
});

/** A server for BASE: files with ETags (or none), answering If-None-Match with 304, counting what it sends. */
function hubServer(opts: { etag?: boolean } = {}) {
  const files: Record<string, Uint8Array> = { 'model.safetensors': WEIGHTS, 'config.json': CONFIG };
  const log: string[] = [];
  let version = 1;
  let offline = false;
  const doFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const name = String(input).slice(BASE.length);
    if (offline) throw new TypeError('Failed to fetch');
    const tag = `"v${version}-${name}"`;
    const conditional = new Headers(init?.headers).get('if-none-match');
    const bytes = files[name];
    if (bytes === undefined) {
      log.push(`404 ${name}`);
      return new Response('Entry not found', { status: 404 });
    }
    if (opts.etag !== false && conditional === tag) {
      log.push(`304 ${name}`);
      return new Response(null, { status: 304, headers: { etag: tag } });
    }
    log.push(`200 ${name}`);
    const headers: Record<string, string> = { 'content-length': String(bytes.byteLength) };
    if (opts.etag !== false) headers.etag = tag;
    return new Response(bytes.slice(), { status: 200, headers });
  }) as typeof fetch;
  return {
    doFetch,
    log,
    change: () => version++,
    setOffline: (v: boolean) => (offline = v),
  };
}

const weightsSent = (log: string[]) => log.filter((l) => l === '200 model.safetensors').length;

async function load(server: ReturnType<typeof hubServer>, cache: 'revalidate' | 'immutable' | false = 'revalidate') {
  const progress: LoadProgress[] = [];
  const file = await readModelFile(`${BASE}model.safetensors`, { fetch: server.doFetch, cache, onProgress: (p) => progress.push(p) });
  assert.equal(file.tensors.size > 10, true);
  return { file, fromCache: progress.at(-1)!.fromCache };
}

test("'revalidate': the second load asks with If-None-Match and reads the cached copy on 304; a changed file replaces it", async () => {
  const store = installCaches();
  const server = hubServer();
  assert.equal((await load(server)).fromCache, false);
  assert.deepEqual([...store.entries.keys()].sort(), [`${BASE}config.json`, `${BASE}model.safetensors`]);
  server.log.length = 0;
  const again = await load(server);
  assert.equal(again.fromCache, true);
  assert.deepEqual(server.log.sort(), ['304 config.json', '304 model.safetensors']);
  assert.equal((again.file.config as { class_names: string[] }).class_names.length, 10, 'config.json from the cache');
  server.change();
  server.log.length = 0;
  assert.equal((await load(server)).fromCache, false);
  assert.equal(weightsSent(server.log), 1);
});

test("'revalidate' without a validator fetches again; offline, the cached copy is used", async () => {
  installCaches();
  const server = hubServer({ etag: false });
  await load(server);
  await load(server);
  assert.equal(weightsSent(server.log), 2, 'no ETag or Last-Modified: the copy cannot be checked, so the file is fetched');
  server.setOffline(true);
  assert.equal((await load(server)).fromCache, true);
});

test("'immutable' reads the cached copy with no request; false and a missing Cache Storage always fetch", async () => {
  installCaches();
  const server = hubServer();
  await load(server, 'immutable');
  server.log.length = 0;
  assert.equal((await load(server, 'immutable')).fromCache, true);
  assert.deepEqual(server.log, []);
  assert.equal((await load(server, false)).fromCache, false);
  assert.equal(weightsSent(server.log), 1);
  delete (globalThis as { caches?: unknown }).caches;
  assert.equal((await load(server, 'immutable')).fromCache, false);
  assert.equal(await clearDownloadCache(), 0);
});

test('a damaged cached copy (cut short, or a NaN weight) is dropped and fetched again; clearDownloadCache counts what it removes', async () => {
  const store = installCaches();
  const server = hubServer();
  const url = `${BASE}model.safetensors`;
  await load(server, 'immutable');
  const entry = store.entries.get(url)!;
  for (const damage of [(b: Uint8Array) => b.slice(0, b.byteLength - 100), nanAtEnd]) {
    store.entries.set(url, { ...entry, body: damage(entry.body) });
    server.log.length = 0;
    assert.equal((await load(server, 'immutable')).fromCache, false);
    assert.equal(weightsSent(server.log), 1);
    assert.deepEqual(store.entries.get(url)!.body, WEIGHTS, 'the good copy replaced the damaged one');
  }
  assert.equal(await clearDownloadCache(), 2);
  assert.equal(store.entries.size, 0);
});

test('a bad download is not kept: its error is thrown and its entry deleted', async () => {
  const store = installCaches();
  const truncated = WEIGHTS.slice(0, 5000);
  const doFetch = (async (input: RequestInfo | URL) =>
    String(input).endsWith('.safetensors')
      ? new Response(truncated.slice(), { status: 200, headers: { etag: '"x"' } })
      : new Response('', { status: 404 })) as typeof fetch;
  await assert.rejects(readModelFile(`${BASE}model.safetensors`, { fetch: doFetch, cache: 'revalidate' }), ModelFormatError);
  await downloadCache('revalidate').settle(`${BASE}model.safetensors`);
  assert.equal(store.entries.size, 0);
});

/** The file with its last float32 weight made NaN: the header still parses, only the value check sees it. */
function nanAtEnd(b: Uint8Array): Uint8Array {
  const out = b.slice();
  new DataView(out.buffer).setFloat32(out.byteLength - 4, NaN, true);
  return out;
}

test('a load resolves only once every file it read is in the cache (a slow write of config.json included), so a clearCache() right after it finds them all', async () => {
  const store = installCaches();
  const put = store.put.bind(store);
  // config.json's write takes longer than the whole load: without the wait, the load would resolve before it lands.
  store.put = async (req, res) => {
    if (String(req).endsWith('config.json')) await new Promise((r) => setTimeout(r, 200));
    return put(req, res);
  };
  await load(hubServer());
  assert.deepEqual([...store.entries.keys()].sort(), [`${BASE}config.json`, `${BASE}model.safetensors`]);
  assert.equal(await clearDownloadCache(), 2);
});
