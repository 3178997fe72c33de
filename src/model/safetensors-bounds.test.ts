// Issue 25, item 4: a header asks only for what a real model needs, names
// each tensor once, and every download failure says which URL and why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DownloadError, ModelFormatError } from './errors';
import { readModelFile } from './load';
import { MAX_HEADER_BYTES, MAX_TENSORS, readSafetensors, writeSafetensors } from './safetensors';
import { rawFile } from '../../tools/lib/raw-safetensors';

const f32 = (n: number) => ({ dtype: 'F32', shape: [n], data_offsets: [0, 4 * n] });

test('a tensor named twice is refused (JSON.parse would keep the last one)', () => {
  const header = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  assert.throws(
    () => readSafetensors(rawFile(header, new Uint8Array(8))),
    (e: unknown) => e instanceof ModelFormatError && /names "a" twice/.test(e.message),
  );
  // An escaped spelling of the same name is the same name.
  const escaped = '{"ab":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\\u0061b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  assert.throws(() => readSafetensors(rawFile(escaped, new Uint8Array(8))), /names "ab" twice/);
  const meta = '{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  assert.throws(() => readSafetensors(rawFile(meta, new Uint8Array(4))), /names "k" twice in __metadata__/);
  // The same key in two different objects is fine.
  const ok = writeSafetensors([['a', { shape: [1], values: new Float32Array(1) }]], { a: 'x' });
  assert.equal(readSafetensors(ok).tensors.size, 1);
});

test('headers are capped at 16 MiB and 10,000 tensors', () => {
  assert.equal(MAX_HEADER_BYTES, 16 * 1024 * 1024);
  const big = new Uint8Array(8 + MAX_HEADER_BYTES + 1);
  new DataView(big.buffer).setUint32(0, MAX_HEADER_BYTES + 1, true);
  assert.throws(() => readSafetensors(big), /header length 16777217 exceeds 16777216 bytes/);
  const many: Record<string, unknown> = {};
  for (let i = 0; i <= MAX_TENSORS; i++) many[`t${i}`] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
  assert.throws(() => readSafetensors(rawFile(many)), /lists 10001 tensors; at most 10000/);
});

test('a network failure is a DownloadError with the URL and the cause, not a bare TypeError', async () => {
  const url = 'https://models.example/vit/';
  const offline = (() => Promise.reject(new TypeError('Failed to fetch'))) as typeof fetch;
  await assert.rejects(
    readModelFile(url, { fetch: offline }),
    (e: unknown) => e instanceof DownloadError && e.url === `${url}model.safetensors` && e.cause === 'TypeError: Failed to fetch' && e.message.includes(e.url),
  );
  const missing = (async () => new Response('no', { status: 404 })) as typeof fetch;
  await assert.rejects(readModelFile(url, { fetch: missing }), (e: unknown) => e instanceof DownloadError && e.status === 404 && /HTTP 404/.test(e.message));
  // Cut part way: the body errors after the first chunk.
  const cut = (async () => {
    const head = rawFile({ a: f32(1000) });
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (!sent) {
          sent = true;
          c.enqueue(head);
        } else c.error(new TypeError('network error'));
      },
    });
    return new Response(body, { status: 200 });
  }) as typeof fetch;
  await assert.rejects(
    readModelFile(`${url}model.safetensors`, { fetch: cut, config: {} }),
    (e: unknown) => e instanceof DownloadError && /stopped downloading after \d+ bytes: TypeError: network error/.test(e.message),
  );
});
