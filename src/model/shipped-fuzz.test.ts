// Issue 25, item 8: a seeded mutation fuzz of the files wildtta ships and
// writes: the two shipped models (public/models/*/model.safetensors), their
// source statistics, and an exported adaptation state. Every mutated file must
// either load or be refused with one of our typed errors; never a TypeError or
// RangeError from inside a parser, never a slow case, never a leaked tensor,
// and a refused state never changes the adapter's exported state.
//
// safetensors-fuzz.test.ts fuzzes a tiny synthetic ViT in depth (in a worker);
// this file complements it with the real files and the other two readers, in
// process, so it stays fast. WILDTTA_FUZZ_CASES=20000 npm test -- shipped-fuzz
// runs more; WILDTTA_FUZZ_SEED=<n> replays one seed (printed on failure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { backboneFromFile, backboneFromSafetensors, readModelFile } from './load';
import { readSourceStats } from './source-stats';
import { ModelFormatError } from './errors';
import { ViT } from './vit';
import { randomViTTensors, tinyConfig } from './random-vit';
import { createAdapter, StateFormatError } from '../methods/index';
import type { Backbone } from './backbone';

await tf.setBackend('cpu');

const CASES = Number(process.env.WILDTTA_FUZZ_CASES ?? 4000);
const BASE_SEED = Number(process.env.WILDTTA_FUZZ_SEED ?? 25_08);
/** A case is a hang if it takes longer than this (the largest file is 1.2 MB; a good load takes ~50 ms on 2 cores). */
const CASE_MS = 3_000;
/**
 * A case that never returns (a synchronous loop) cannot be timed from inside;
 * node:test's timeout ends the test instead, at about 20 times the time the
 * cases take here (~2 ms each).
 */
const TEST_MS = 60_000 + 40 * CASES;

/** xorshift32: a few lines, seeded, so a failing case replays from its seed alone. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The file's header JSON and its data bytes (the input is a valid safetensors file). */
function split(bytes: Uint8Array): { header: string; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: dec.decode(bytes.subarray(8, 8 + n)), data: bytes.subarray(8 + n) };
}

function join(header: Uint8Array, data: Uint8Array, lengthField = header.length): Uint8Array {
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthField), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

const ODD: readonly unknown[] = [0, -1, 1, 3, 2 ** 31, 2 ** 53, 1e300, 0.5, NaN, null, 'x', [], {}, [1], [0, 1e12], true];
const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'U8', 'BOOL', 'f32', ''];

/** A header edit through the decoded JSON: a dtype, a shape, data_offsets, a name or the metadata. */
function editHeader(r: Rand, header: string): { text: string; what: string } {
  const h = JSON.parse(header) as Record<string, Record<string, unknown>>;
  const names = Object.keys(h).filter((k) => k !== '__metadata__');
  const name = pick(r, names);
  const e = h[name]!;
  const k = int(r, 7);
  let what: string;
  if (k === 0) {
    e.dtype = pick(r, DTYPES);
    what = `${name}.dtype=${String(e.dtype)}`;
  } else if (k === 1 || k === 2) {
    const field = k === 1 ? 'shape' : 'data_offsets';
    // An earlier edit of this case may have made the field a non-array.
    const arr = Array.isArray(e[field]) ? [...(e[field] as unknown[])] : [];
    if (r() < 0.7 && arr.length > 0) arr[int(r, arr.length)] = pick(r, ODD);
    else if (r() < 0.5) arr.push(pick(r, ODD));
    else arr.pop();
    e[field] = arr;
    what = `${name}.${field}=${JSON.stringify(arr)}`;
  } else if (k === 3) {
    const other = pick(r, names);
    e.data_offsets = h[other]!.data_offsets;
    what = `${name}.data_offsets=${other}'s`;
  } else if (k === 4) {
    delete h[name];
    what = `delete ${name}`;
  } else if (k === 5) {
    const meta = (h.__metadata__ ?? {}) as Record<string, unknown>;
    const key = pick(r, [...Object.keys(meta), 'x']);
    meta[key] = r() < 0.5 ? pick(r, ['{', '[]', 'null', '{"format":1}', '']) : pick(r, ODD);
    h.__metadata__ = meta;
    what = `__metadata__.${key}=${JSON.stringify(meta[key])}`;
  } else {
    e[pick(r, ['shape', 'dtype', 'data_offsets'])] = pick(r, ODD);
    what = `${name} field replaced`;
  }
  return { text: JSON.stringify(h), what };
}

/** One seeded mutation of a valid safetensors file: bytes, length field, JSON syntax, decoded header values. */
function mutate(r: Rand, file: Uint8Array): { bytes: Uint8Array; what: string } {
  const { header, data } = split(file);
  const hb = enc.encode(header);
  const k = int(r, 8);
  if (k === 0) {
    const b = file.slice();
    const flips = 1 + int(r, 4);
    // Half the flips land in the header, where a bit decides more than in a float.
    for (let i = 0; i < flips; i++) {
      const p = r() < 0.5 ? int(r, 8 + hb.length) : int(r, b.length);
      b[p]! ^= 1 << int(r, 8);
    }
    return { bytes: b, what: `${flips} bit flips` };
  }
  if (k === 1) {
    const at = r() < 0.5 ? int(r, 8 + hb.length + 1) : int(r, file.length);
    return { bytes: file.slice(0, at), what: `truncate at ${at}` };
  }
  if (k === 2) {
    // Splice: a chunk of the file copied over another place, or inserted, or cut out.
    const len = 1 + int(r, 64);
    const from = int(r, file.length - len);
    const to = int(r, file.length);
    const how = int(r, 3);
    if (how === 0) {
      const b = file.slice();
      b.set(file.subarray(from, from + len).subarray(0, b.length - to), to);
      return { bytes: b, what: `copy ${len} from ${from} to ${to}` };
    }
    if (how === 1) {
      const b = new Uint8Array(file.length + len);
      b.set(file.subarray(0, to));
      b.set(file.subarray(from, from + len), to);
      b.set(file.subarray(to), to + len);
      return { bytes: b, what: `insert ${len} from ${from} at ${to}` };
    }
    const b = new Uint8Array(file.length - Math.min(len, file.length - to));
    b.set(file.subarray(0, to));
    b.set(file.subarray(to + len), to);
    return { bytes: b, what: `cut ${len} at ${to}` };
  }
  if (k === 3) {
    const field = pick(r, [0, 1, hb.length - 1, hb.length + 1, hb.length + 8, file.length, 2 ** 32, 2 ** 53 - 1, 2 ** 60]);
    return { bytes: join(hb, data, field), what: `length field=${field}` };
  }
  if (k === 4) {
    // JSON syntax: a structural character replaced, doubled or removed, length field kept right.
    const p = int(r, hb.length);
    const c = pick(
      r,
      [...'{}[],:"\\ 0-e.'].map((s) => s.charCodeAt(0)),
    );
    const b = int(r, 3);
    const text = b === 0 ? hb.slice() : new Uint8Array(b === 1 ? hb.length + 1 : hb.length - 1);
    if (b === 0) text[p] = c;
    else if (b === 1) text.set([...hb.subarray(0, p), c, ...hb.subarray(p)]);
    else text.set([...hb.subarray(0, p), ...hb.subarray(p + 1)]);
    return { bytes: join(text, data), what: `json ${['set', 'insert', 'delete'][b]} @${p} ${String.fromCharCode(c)}` };
  }
  if (k === 5) {
    const p = int(r, data.length);
    const d = data.slice();
    // A data word set to NaN, Infinity or a huge finite float.
    new DataView(d.buffer).setFloat32(p - (p % 4), pick(r, [NaN, Infinity, -Infinity, 3e38, 1e7, -0]), true);
    return { bytes: join(hb, d), what: `data word @${p - (p % 4)}` };
  }
  const edits = k === 6 ? 1 : 2;
  let text = header;
  const what: string[] = [];
  for (let i = 0; i < edits; i++) {
    const e = editHeader(r, text);
    text = e.text;
    what.push(e.what);
  }
  return { bytes: join(enc.encode(text), data), what: what.join('; ') };
}

/** How `f` ended: loaded, or the error it threw. */
async function outcome(f: () => unknown): Promise<{ ok: boolean; error?: unknown; what: string }> {
  try {
    await f();
    return { ok: true, what: 'loaded' };
  } catch (e) {
    return { ok: false, error: e, what: `${(e as Error)?.name}: ${(e as Error)?.message}` };
  }
}

const typed = (e: unknown) => e instanceof ModelFormatError || e instanceof StateFormatError;

/** Runs `count` seeded cases of `target`; returns how many loaded and were refused, failing with the seed. */
async function fuzz(
  label: string,
  count: number,
  base: Uint8Array,
  attempt: (bytes: Uint8Array) => Promise<void> | void,
): Promise<{ loaded: number; refused: number }> {
  let loaded = 0;
  let refused = 0;
  for (let i = 0; i < count; i++) {
    const seed = (BASE_SEED * 1_000_003 + i * 7919 + label.length) >>> 0;
    let m: ReturnType<typeof mutate>;
    try {
      m = mutate(prng(seed), base);
    } catch (e) {
      throw new Error(`${label} seed ${seed}: the mutator itself failed`, { cause: e });
    }
    const { bytes, what } = m;
    const tensors = tf.memory().numTensors;
    const t0 = performance.now();
    try {
      await attempt(bytes);
      loaded++;
    } catch (e) {
      if (!typed(e)) {
        const err = e as Error;
        assert.fail(`${label} seed ${seed} (${what}): untyped ${err?.name}: ${err?.message}\n${err?.stack ?? ''}`);
      }
      refused++;
    }
    const ms = performance.now() - t0;
    assert.ok(ms < CASE_MS, `${label} seed ${seed} (${what}) took ${ms.toFixed(0)} ms`);
    assert.equal(tf.memory().numTensors, tensors, `${label} seed ${seed} (${what}) leaked tensors`);
  }
  return { loaded, refused };
}

const read = (p: string) => new Uint8Array(readFileSync(new URL(`../../public/models/${p}`, import.meta.url)));
const json = (p: string) => JSON.parse(readFileSync(new URL(`../../public/models/${p}`, import.meta.url), 'utf8')) as unknown;

// Shares of the case count: the models are the big parsers, the stats and
// the state the ones with the most hand-written checks.
const share = (f: number) => Math.max(1, Math.round(CASES * f));

for (const dir of ['fmnist-vit', 'fmnist-resnet-gn', 'fmnist-convnext']) {
  test(`fuzz ${dir}: mutated model and source statistics load or throw ModelFormatError, leak nothing`, { timeout: TEST_MS }, async (t) => {
    const modelBytes = read(`${dir}/model.safetensors`);
    const config = json(`${dir}/config.json`);
    const model = backboneFromSafetensors(modelBytes, config);
    try {
      const m = await fuzz(`${dir}/model`, share(0.2), modelBytes, async (b) => {
        // Two parsers read weights: in-memory bytes (safetensors.ts) and a streamed File/Blob or URL
        // (safetensors-stream.ts). Both get the same file and must give the same answer.
        const inMemory = outcome(() => backboneFromSafetensors(b, config).dispose());
        const streamed = await outcome(async () => backboneFromFile(await readModelFile(new Blob([b as BlobPart]), { config })).dispose());
        const sync = await inMemory;
        if (sync.ok !== streamed.ok) assert.fail(`in memory ${sync.what}, streamed ${streamed.what}`);
        if (!sync.ok) throw sync.error;
        if (!streamed.ok) throw streamed.error;
      });
      const s = await fuzz(`${dir}/stats`, share(0.15), read(`${dir}/source-stats.safetensors`), (b) => void readSourceStats(b, model));
      t.diagnostic(`${dir} model: ${m.loaded} loaded, ${m.refused} refused; stats: ${s.loaded} loaded, ${s.refused} refused`);
      assert.ok(m.refused > 0 && s.refused > 0, 'the fuzz reaches the refusals');
    } finally {
      model.dispose();
    }
  });
}

test('fuzz an exported state: a mutated one is imported or refused with StateFormatError, a refused one changes nothing', { timeout: TEST_MS }, async (t) => {
  const cfg = tinyConfig();
  const model: Backbone = new ViT(cfg, randomViTTensors(cfg, 7));
  const a = await createAdapter(model, { method: 'sar', lr: 0.05 });
  try {
    for (let i = 0; i < 2; i++) {
      const x = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', i) as tf.Tensor4D;
      await a.step(x);
      x.dispose();
    }
    const good = await a.exportState();
    const r = await fuzz('state', share(0.3), good, async (b) => {
      const before = await a.exportState();
      try {
        a.importState(b);
      } catch (e) {
        const after = await a.exportState();
        assert.ok(Buffer.from(after).equals(Buffer.from(before)), 'a refused state changed the adapted one');
        throw e;
      }
      // An accepted mutation (e.g. a flipped low mantissa bit) is a valid state; put the original back.
      a.importState(good);
    });
    t.diagnostic(`state: ${r.loaded} imported, ${r.refused} refused`);
    assert.ok(r.refused > 0);
  } finally {
    a.dispose();
    model.dispose();
  }
});

test('the harness itself fails a case that throws an untyped error, leaks a tensor or hangs, naming its seed', async () => {
  const base = read('fmnist-vit/source-stats.safetensors');
  await assert.rejects(
    fuzz('self', 1, base, () => {
      throw new TypeError('inside a parser');
    }),
    /self seed \d+ \(.*\): untyped TypeError: inside a parser/,
  );
  let leaked: tf.Tensor | undefined;
  await assert.rejects(
    fuzz('self', 1, base, () => void (leaked = tf.scalar(1))),
    /self seed \d+ \(.*\) leaked tensors/,
  );
  leaked?.dispose();
  await assert.rejects(
    fuzz('self', 1, base, () => new Promise((r) => setTimeout(r, CASE_MS + 50))),
    /self seed \d+ \(.*\) took \d+ ms/,
  );
});
