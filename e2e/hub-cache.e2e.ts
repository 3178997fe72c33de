// Hub ids and the download cache in Chromium, against a local server with
// the hub's URL layout (support/hub-server.ts) on another origin, as
// huggingface.co is to a page: create({ model: 'hf:org/name', hubUrl })
// loads the shipped ViT from /<org>/<name>/resolve/<rev>/, a second create()
// reads the weights from Cache Storage (no download; at a commit sha no
// request at all), clearCache() empties it, a damaged cached copy is fetched
// again, offline the cached copy serves, and `worker: true` shares the same
// cache. The pages run without the strict CSP: its connect-src 'self' would
// refuse the second origin, which is the point of the test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO_ROOT } from '../tools/lib/session';
import { configureLibSession, LOAD_WILDTTA, withLibPage, type LibPage } from './support/lib';
import { startHubServer, type HubServer } from './support/hub-server';

configureLibSession({ csp: false });

const SHA = '0123456789abcdef0123456789abcdef01234567';
const MODEL = join(REPO_ROOT, 'public', 'models', 'fmnist-vit');
let hub: HubServer;

before(async () => {
  hub = await startHubServer({ 'wildtta/fmnist-vit': MODEL, 'wildtta/no-stats': MODEL }, ['wildtta/no-stats/source-stats.safetensors']);
});
after(() => hub.close());

interface Loaded {
  numClasses: number;
  label: string;
  sourceStats: unknown;
  /** Every progress report's fromCache, deduplicated. */
  fromCache: boolean[];
  worker: boolean;
}

/** window.load(options): create() with them, one classification, dispose; what it saw. */
const SETUP = `(async () => {
  const WildTTA = await ${LOAD_WILDTTA};
  window.load = async (o) => {
    const seen = new Set();
    const tta = await WildTTA.create({ backend: 'cpu', method: 'source', ...o, onProgress: (p) => seen.add(p.fromCache) });
    const c = document.createElement('canvas'); c.width = c.height = 28;
    const g = c.getContext('2d'); g.fillStyle = '#000'; g.fillRect(0, 0, 28, 28); g.fillStyle = '#ddd'; g.fillRect(8, 2, 12, 24);
    const r = await tta.classify(c);
    const out = { numClasses: tta.model.numClasses, label: r.label, sourceStats: tta.model.sourceStats, fromCache: [...seen], worker: !!o.worker };
    await tta.dispose();
    return out;
  };
  window.cachedSizes = async () => {
    const cache = await caches.open('wildtta-models-v1');
    const out = {};
    for (const k of await cache.keys()) out[new URL(k.url).pathname] = (await (await cache.match(k)).arrayBuffer()).byteLength;
    return out;
  };
})()`;

async function load(p: LibPage, options: Record<string, unknown>): Promise<Loaded> {
  try {
    return (await p.page.evaluate(`window.load(${JSON.stringify({ hubUrl: hub.baseUrl, ...options })})`)) as Loaded;
  } catch (e) {
    throw new Error(`create(${JSON.stringify(options)}) failed: ${(e as Error).message}\n${p.errors.join('\n')}`, { cause: e });
  }
}

function page<T>(fn: (p: LibPage) => Promise<T>): Promise<T> {
  return withLibPage('examples/index.html', async (p) => {
    await p.page.evaluate(SETUP);
    return fn(p);
  });
}

/** The page's errors, less the browser's own report of a request that was meant to fail (`expected`: its status text and file). */
const unexpected = (p: LibPage, ...expected: RegExp[]) =>
  p.errors.filter((e) => !(e.startsWith('console.error: Failed to load resource') && expected.some((x) => x.test(e))));

const WEIGHTS = 'model.safetensors';
const weightsRequests = () => hub.log.filter((r) => r.path.endsWith(`/${WEIGHTS}`) && r.method === 'GET');

test("hf: id at 'main': loads through hubUrl; the second create() revalidates with If-None-Match (304) and reads the cache; clearCache() empties it; offline the cache serves", () =>
  page(async (p) => {
    hub.log.length = 0;
    const first = await load(p, { model: 'hf:wildtta/fmnist-vit' });
    assert.equal(first.numClasses, 10);
    assert.deepEqual(first.fromCache, [false]);
    assert.ok(first.sourceStats !== null, 'source-stats.safetensors beside the weights on the hub is found');
    assert.deepEqual(
      hub.log
        .filter((r) => r.method === 'GET')
        .map((r) => `${r.status} ${r.path}`)
        .sort(),
      [
        '200 /wildtta/fmnist-vit/resolve/main/config.json',
        '200 /wildtta/fmnist-vit/resolve/main/model.safetensors',
        '200 /wildtta/fmnist-vit/resolve/main/source-stats.safetensors',
      ],
    );
    const size = (await p.page.evaluate('window.cachedSizes()')) as Record<string, number>;
    assert.equal(size['/wildtta/fmnist-vit/resolve/main/model.safetensors'], 562752, JSON.stringify(size));

    hub.log.length = 0;
    const second = await load(p, { model: 'hf:wildtta/fmnist-vit' });
    assert.deepEqual(second.fromCache, [true]);
    assert.equal(second.label, first.label);
    assert.equal(hub.downloads(WEIGHTS), 0, 'the weights were not downloaded again');
    assert.deepEqual(
      weightsRequests().map((r) => [r.status, r.ifNoneMatch]),
      [[304, '"562752-main"']],
    );

    hub.offline = true;
    try {
      const offline = await load(p, { model: 'hf:wildtta/fmnist-vit' });
      assert.deepEqual(offline.fromCache, [true]);
      assert.ok(offline.sourceStats !== null, 'the statistics come from the cache too');
    } finally {
      hub.offline = false;
    }

    assert.equal(await p.page.evaluate('WildTTA.clearCache()'), 3, 'weights, config.json and source statistics');
    assert.deepEqual(await p.page.evaluate('window.cachedSizes()'), {});
    hub.log.length = 0;
    const third = await load(p, { model: 'hf:wildtta/fmnist-vit' });
    assert.deepEqual(third.fromCache, [false]);
    assert.deepEqual(
      weightsRequests().map((r) => [r.status, r.ifNoneMatch]),
      [[200, null]],
    );
    assert.deepEqual(unexpected(p, /net::ERR_EMPTY_RESPONSE \(.*\/resolve\/main\//), [], 'no errors but the offline requests');
  }));

test('at a commit sha the cached copy is used with no request; the worker and the page thread share the cache', () =>
  page(async (p) => {
    hub.log.length = 0;
    const inWorker = await load(p, { model: 'hf:wildtta/fmnist-vit', revision: SHA, worker: true });
    assert.deepEqual([inWorker.fromCache, inWorker.worker], [[false], true]);
    assert.equal(hub.downloads(WEIGHTS), 1);
    hub.log.length = 0;
    const onPage = await load(p, { model: 'hf:wildtta/fmnist-vit', revision: SHA });
    assert.deepEqual(onPage.fromCache, [true]);
    assert.deepEqual(hub.log, [], 'an immutable revision asks the hub nothing');
    hub.log.length = 0;
    const backInWorker = await load(p, { model: 'hf:wildtta/fmnist-vit', revision: SHA, worker: true });
    assert.deepEqual(backInWorker.fromCache, [true]);
    assert.deepEqual(hub.log, []);
    assert.equal(backInWorker.label, inWorker.label);
    assert.deepEqual(p.errors, []);
  }));

test('a damaged cached copy is noticed by the loader and fetched again; cache: false always downloads and stores nothing', () =>
  page(async (p) => {
    await load(p, { model: 'hf:wildtta/fmnist-vit', revision: SHA });
    const url = `${hub.baseUrl}/wildtta/fmnist-vit/resolve/${SHA}/${WEIGHTS}`;
    // A write cut short: the cached body ends 1000 bytes early.
    await p.page.evaluate(`(async () => {
      const cache = await caches.open('wildtta-models-v1');
      const good = await cache.match(${JSON.stringify(url)});
      const bytes = new Uint8Array(await good.arrayBuffer());
      await cache.put(${JSON.stringify(url)}, new Response(bytes.slice(0, bytes.byteLength - 1000), { headers: good.headers }));
    })()`);
    hub.log.length = 0;
    const again = await load(p, { model: 'hf:wildtta/fmnist-vit', revision: SHA });
    assert.deepEqual(again.fromCache, [true, false], 'read from the cache, refused, then downloaded');
    assert.equal(hub.downloads(WEIGHTS), 1);
    const sizes = (await p.page.evaluate('window.cachedSizes()')) as Record<string, number>;
    assert.equal(sizes[new URL(url).pathname], 562752, 'the good copy replaced the damaged one');

    assert.equal(await p.page.evaluate('WildTTA.clearCache()'), 3);
    hub.log.length = 0;
    for (let i = 0; i < 2; i++) assert.deepEqual((await load(p, { model: 'hf:wildtta/fmnist-vit', cache: false })).fromCache, [false]);
    assert.equal(hub.downloads(WEIGHTS), 2);
    assert.ok(
      weightsRequests().every((r) => r.ifNoneMatch === null),
      'no conditional request',
    );
    assert.deepEqual(await p.page.evaluate('window.cachedSizes()'), {});
    assert.deepEqual(p.errors, []);
  }));

test('a repository without source statistics loads without them; malformed ids and hub options on a URL are refused before any request', () =>
  page(async (p) => {
    const plain = await load(p, { model: 'hf:wildtta/no-stats' });
    assert.equal(plain.sourceStats, null, 'a 404 for source-stats.safetensors means none, as beside a folder URL');
    hub.log.length = 0;
    const refused = (await p.page.evaluate(`Promise.all([
      WildTTA.create({ model: 'hf:wildtta' }).catch((e) => [e.name, e.id, e.message, e instanceof WildTTA.HubIdError]),
      WildTTA.create({ model: '/public/models/fmnist-vit/', revision: 'main' }).catch((e) => [e.name, e.message]),
    ])`)) as [string[], string[]];
    assert.deepEqual(refused[0]!.slice(0, 2), ['HubIdError', 'hf:wildtta']);
    assert.match(refused[0]![2]!, /hf:org\/name/);
    assert.equal(refused[0]![3], true);
    assert.deepEqual(refused[1], ['SourceError', 'revision and hubUrl apply to a hub id (model: "hf:org/name") only']);
    assert.deepEqual(hub.log, []);
    assert.deepEqual(unexpected(p, /404 \(Not Found\) \(.*\/no-stats\/resolve\/main\/source-stats\.safetensors\)/), []);
  }));
