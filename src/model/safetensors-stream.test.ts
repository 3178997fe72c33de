// The streaming loader (loadBackbone on a URL or a Blob) against the
// whole-file reader: same weights and config whatever the chunking, F16/BF16
// decoded the same, truncated files and bad headers refused with
// ModelFormatError, progress reported per chunk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadViT, vitFromSafetensors } from './load';
import { ModelFormatError } from './errors';
import { mulberry32 } from '../data/random';
import type { ViT } from './vit';

const ROOT = join(import.meta.dirname, '..', '..');
const SHIPPED = join(ROOT, 'public', 'models', 'fmnist-vit');
const FIXTURE = join(ROOT, 'e2e', 'fixtures', 'vit-gray28-p4-token');

/** A fetch serving `files` (name → bytes) in chunks of random size, like a network would. */
function chunkedFetch(files: Record<string, Uint8Array>, seed: number, opts: { contentLength?: boolean } = {}): typeof fetch {
  const rand = mulberry32(seed);
  return (async (input: RequestInfo | URL) => {
    const name = String(input).replace(/^.*\//, '');
    const bytes = files[name];
    if (bytes === undefined) return new Response('missing', { status: 404 });
    let at = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (at >= bytes.byteLength) return ctrl.close();
        const n = 1 + Math.floor(rand() * 5000);
        ctrl.enqueue(bytes.slice(at, at + n));
        at += n;
      },
    });
    const headers: Record<string, string> = opts.contentLength === false ? {} : { 'content-length': String(bytes.byteLength) };
    return new Response(body, { status: 200, headers });
  }) as typeof fetch;
}

async function sameWeights(a: ViT, b: ViT): Promise<void> {
  assert.deepEqual([...a.params.keys()].sort(), [...b.params.keys()].sort());
  for (const [name, t] of a.params) {
    const u = b.params.get(name)!;
    assert.deepEqual(t.shape, u.shape, name);
    assert.deepEqual(await t.data(), await u.data(), name);
  }
  assert.deepEqual(a.config, b.config);
}

test('streaming: the shipped model streamed in random chunks equals the whole-file load, with progress', async () => {
  const weights = new Uint8Array(readFileSync(join(SHIPPED, 'model.safetensors')));
  const configText = readFileSync(join(SHIPPED, 'config.json'));
  const reference = vitFromSafetensors(weights, JSON.parse(configText.toString('utf8')));
  for (const [seed, contentLength] of [
    [1, true],
    [2, false],
  ] as const) {
    const progress: Array<[number, number | undefined]> = [];
    const model = await loadViT('http://x/models/fmnist-vit/', {
      fetch: chunkedFetch({ 'model.safetensors': weights, 'config.json': new Uint8Array(configText) }, seed, { contentLength }),
      onProgress: (p) => progress.push([p.loadedBytes, p.totalBytes]),
    });
    await sameWeights(model, reference);
    assert.ok(progress.length > 10, 'progress comes per chunk');
    assert.equal(progress.at(-1)![0], weights.byteLength);
    assert.equal(progress.at(-1)![1], contentLength ? weights.byteLength : undefined);
    model.dispose();
  }
  reference.dispose();
});

test('streaming: F16 and BF16 files and a Blob source decode like the whole-file reader', async () => {
  const config = JSON.parse(readFileSync(join(FIXTURE, 'config.json'), 'utf8'));
  for (const file of ['model.f16.safetensors', 'model.bf16.safetensors', 'model.safetensors']) {
    const bytes = new Uint8Array(readFileSync(join(FIXTURE, file)));
    const reference = vitFromSafetensors(bytes, config);
    const fromUrl = await loadViT(`http://x/m/${file}`, {
      fetch: chunkedFetch({ [file]: bytes, 'config.json': new TextEncoder().encode(JSON.stringify(config)) }, 7),
    });
    await sameWeights(fromUrl, reference);
    const fromBlob = await loadViT(new Blob([bytes]), { config });
    await sameWeights(fromBlob, reference);
    for (const m of [reference, fromUrl, fromBlob]) m.dispose();
  }
});

test('streaming: a truncated file, a bad header or a missing file is a ModelFormatError and leaks no tensors', async () => {
  const weights = new Uint8Array(readFileSync(join(SHIPPED, 'model.safetensors')));
  const config = JSON.parse(readFileSync(join(SHIPPED, 'config.json'), 'utf8'));
  const before = tf.memory().numTensors;
  await assert.rejects(
    loadViT(new Blob([weights.subarray(0, weights.byteLength - 100)]), { config }),
    (e: Error) => e instanceof ModelFormatError && /ended after \d+ bytes; its header needs/.test(e.message),
  );
  await assert.rejects(loadViT(new Blob([weights.subarray(0, 5)]), { config }), /inside the safetensors header/);
  const badHeader = new Uint8Array(16);
  new DataView(badHeader.buffer).setUint32(0, 8, true);
  badHeader.set(new TextEncoder().encode('{"a": 1}'), 8);
  await assert.rejects(loadViT(new Blob([badHeader]), { config }), ModelFormatError);
  await assert.rejects(loadViT('http://x/none/', { fetch: chunkedFetch({}, 1) }), /HTTP 404/);
  assert.equal(tf.memory().numTensors, before);
});
