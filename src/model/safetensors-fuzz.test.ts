// A seeded mutation fuzz of a whole ViT file through vitFromSafetensors: every
// mutated file either loads or is refused with a ModelFormatError, and leaks
// no tensor.
//
// The fuzz runs in a worker thread (this same file, see the bottom) so that a
// hang or an out-of-memory abort inside the loader fails the test with the
// offending case instead of taking the test process down.
import assert from 'node:assert/strict';
import { test as nodeTest } from 'node:test';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../data/random';
import { expectedTensors, viTConfigJson, type ViTConfig } from './config';
import { ModelFormatError } from './errors';
import { CONFIG_METADATA_KEY, vitFromSafetensors } from './load';
import { parseSafetensorsHeader, writeSafetensors } from './safetensors';
import { rawFile } from '../../tools/lib/raw-safetensors';

const enc = new TextEncoder();

// This file is also the fuzz worker's module (see the bottom); only the main thread declares tests.
const test: typeof nodeTest = isMainThread ? nodeTest : ((() => undefined) as unknown as typeof nodeTest);

const FUZZ_SEED = 20240601;

const tinyConfig: ViTConfig = {
  imageSize: 8,
  patchSize: 4,
  inChannels: 1,
  width: 8,
  depth: 2,
  heads: 2,
  mlpHidden: 16,
  numClasses: 3,
  normEps: 1e-6,
  pool: 'token',
  mean: [0.5],
  std: [0.5],
  classNames: ['a', 'b', 'c'],
};

/** A valid timm-layout ViT file with our config embedded in the metadata, as tools/train.ts writes it. */
function tinyVitFile(): Uint8Array {
  const rand = mulberry32(7);
  const weights = expectedTensors(tinyConfig, 'norm').map(([name, shape]) => {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i++) values[i] = (rand() - 0.5) * 0.2;
    return [name, { shape, values }] as [string, { shape: number[]; values: Float32Array }];
  });
  const configJson = viTConfigJson(tinyConfig);
  return writeSafetensors(weights, { [CONFIG_METADATA_KEY]: JSON.stringify(configJson) });
}

/** Bytes that steer header mutations into JSON that still parses. */
const JSONISH = enc.encode('0123456789-+.eE,:"[]{} \\/nu');

/**
 * Three kinds of case: `bytes` mutates the file anywhere (length prefix, header,
 * data); `header` mutates only the header text and rewrites the length prefix, so
 * the JSON and entry checks are reached more often; `values` edits one or two
 * decoded values (a tensor's shape, offsets, dtype or name, or a key of the
 * embedded config) to extreme or ill-typed ones, to reach the config and shape checks.
 */
type Mode = 'bytes' | 'header' | 'values';
const FUZZ_PLAN: Array<[Mode, number]> = [
  ['bytes', 2000],
  ['header', 1000],
  ['values', 2000],
];
const FUZZ_CASES = FUZZ_PLAN.reduce((n, [, k]) => n + k, 0);

interface CaseResult {
  index: number;
  mode: Mode;
  outcome: 'loaded' | 'rejected' | 'other';
  mutations: string;
  ms: number;
  error?: string;
}

type Rand = () => number;
const pick = <T>(rand: Rand, list: ArrayLike<T>): T => list[Math.floor(rand() * list.length)]!;

/** One byte-level mutation at a position in [lo, hi); returns the new bytes. */
function mutateOnce(bytes: Uint8Array, lo: number, hi: number, region: string, rand: Rand, ops: number): { bytes: Uint8Array; what: string } {
  const int = (n: number) => Math.floor(rand() * n);
  let pos = lo + int(Math.max(1, hi - lo));
  switch (int(ops)) {
    case 0: {
      const bit = int(8);
      bytes[pos] = bytes[pos]! ^ (1 << bit);
      return { bytes, what: `flip ${region}@${pos} bit ${bit}` };
    }
    case 1: {
      const b = int(256);
      bytes[pos] = b;
      return { bytes, what: `set ${region}@${pos}=${b}` };
    }
    case 2: {
      // Overwrite with a JSON character; in the header prefer digits so numbers change.
      if (region === 'header' && rand() < 0.5) {
        const digits: number[] = [];
        for (let i = lo; i < hi; i++) if (bytes[i]! >= 0x30 && bytes[i]! <= 0x39) digits.push(i);
        if (digits.length > 0) pos = pick(rand, digits);
      }
      const b = pick(rand, JSONISH);
      bytes[pos] = b;
      return { bytes, what: `set ${region}@${pos}=${JSON.stringify(String.fromCharCode(b))}` };
    }
    case 3: {
      const b = rand() < 0.5 ? pick(rand, JSONISH) : int(256);
      const grown = new Uint8Array(bytes.length + 1);
      grown.set(bytes.subarray(0, pos));
      grown[pos] = b;
      grown.set(bytes.subarray(pos), pos + 1);
      return { bytes: grown, what: `insert ${region}@${pos}=${b}` };
    }
    case 4: {
      const n = Math.min(1 + int(rand() < 0.8 ? 1 : 16), bytes.length - pos);
      const shrunk = new Uint8Array(bytes.length - n);
      shrunk.set(bytes.subarray(0, pos));
      shrunk.set(bytes.subarray(pos + n), pos);
      return { bytes: shrunk, what: `delete ${region}@${pos}+${n}` };
    }
    case 5:
      return { bytes: bytes.slice(0, pos), what: `truncate ${region}@${pos}` };
    default: {
      // Four bytes of the length prefix or of a data word set to an extreme value.
      const p = region === 'header' ? int(8) : pos - (pos % 4);
      const v = pick(rand, [0, 0xff, 0x7f, 0x80]);
      for (let k = 0; k < 4 && p + k < bytes.length; k++) bytes[p + k] = v;
      return { bytes, what: `word ${region}@${p}=${v}` };
    }
  }
}

const NUMBERS: readonly number[] = [0, 1, -1, 2, 3, 4, 5, 8, 16, 28, 100, 1e9, 2 ** 32 + 1, 2 ** 53, 1e300, -1e300, 0.5, 2.5];
const OTHERS: readonly unknown[] = [
  '4',
  null,
  true,
  [],
  {},
  [1],
  [0.5],
  [0, 0.5],
  [0.5, 0.5, 0.5],
  [3, 8, 8],
  [1, 8, 8],
  [1, 8, 4],
  [1, 1e9, 1e9],
  [1e9],
  [2 ** 53],
  [-1, 8, 8],
  'token',
  'avg',
  'x',
  ['a', 'b'],
  ['a', 'b', 'c'],
  ['a', 1, 'c'],
  'vit_tiny_patch4_8',
  'vit_huge_patch16_224',
  'deit_small_patch0_0',
  'vit_base_patch99999999999999999999_8',
];
const CONFIG_KEYS = [
  'image_size',
  'patch_size',
  'in_chans',
  'embed_dim',
  'depth',
  'num_heads',
  'num_classes',
  'norm_eps',
  'global_pool',
  'mean',
  'std',
  'class_names',
  'label_names',
  'architecture',
  'pretrained_cfg',
  'pretrained_cfg.input_size',
  'pretrained_cfg.mean',
  'pretrained_cfg.std',
];
/** The tiny model described the way timm's config.json does (sizes from the name and input_size, names defaulted). */
const TIMM_STYLE_CONFIG = {
  architecture: 'vit_fmnist_patch4_8',
  num_classes: 3,
  global_pool: 'token',
  pretrained_cfg: { input_size: [1, 8, 8], mean: [0.5], std: [0.5] },
};
const NAMES = ['fc_norm.weight', 'blocks.2.norm1.weight', 'blocks.9.norm1.weight', 'head.weight', 'norm.bias', '__proto__', ''];

/** One or two edits of decoded header values; the file is re-encoded with a correct length prefix. */
function mutateValues(headerText: string, data: Uint8Array, rand: Rand): { bytes: Uint8Array; what: string[] } {
  const header = JSON.parse(headerText) as Record<string, Record<string, unknown>>;
  const meta = header.__metadata__ as Record<string, string>;
  const what: string[] = [];
  const timmStyle = rand() < 0.5;
  if (timmStyle) what.push('timm-style config');
  const config = (timmStyle ? structuredClone(TIMM_STYLE_CONFIG) : JSON.parse(meta[CONFIG_METADATA_KEY]!)) as Record<string, unknown>;
  const value = (): unknown => {
    const r = rand();
    if (r < 0.05) return { input_size: value(), mean: value(), std: value() };
    return r < 0.55 ? pick(rand, NUMBERS) : pick(rand, OTHERS);
  };
  const edits = rand() < 0.6 ? 1 : 2;
  for (let e = 0; e < edits; e++) {
    if (rand() < 0.5) {
      const key = pick(rand, CONFIG_KEYS);
      const [outer, inner] = key.split('.') as [string, string | undefined];
      let target = config;
      if (inner !== undefined) {
        const sub = config[outer];
        target = typeof sub === 'object' && sub !== null ? (sub as Record<string, unknown>) : (config[outer] = {});
      }
      const leaf = inner ?? outer;
      if (rand() < 0.15) {
        delete target[leaf];
        what.push(`config delete ${key}`);
      } else {
        target[leaf] = value();
        what.push(`config ${key}=${JSON.stringify(target[leaf])}`);
      }
    } else {
      const names = Object.keys(header).filter((n) => n !== '__metadata__');
      const name = pick(rand, names);
      const entry = header[name]!;
      const r = rand();
      if (r < 0.1) {
        // Make it empty: a zero in the shape and no bytes, so huge other dimensions pass the size check.
        const shape = [pick(rand, NUMBERS), 0];
        entry.shape = rand() < 0.5 ? shape : shape.reverse();
        entry.data_offsets = [0, 0];
        what.push(`${name}.shape=${JSON.stringify(entry.shape)} (empty)`);
      } else if (r < 0.2) {
        const to = pick(rand, NAMES);
        delete header[name];
        header[to] = entry;
        what.push(`rename ${name} -> ${to}`);
      } else {
        const field = pick(rand, ['shape', 'data_offsets', 'dtype']);
        const old = entry[field];
        if (Array.isArray(old) && old.length > 0 && rand() < 0.7) {
          const copy = [...old];
          copy[Math.floor(rand() * copy.length)] = rand() < 0.8 ? pick(rand, NUMBERS) : pick(rand, OTHERS);
          entry[field] = copy;
        } else {
          entry[field] = field === 'dtype' && rand() < 0.5 ? pick(rand, ['F16', 'BF16', 'F64', 'I64', 'U8', 'BOOL']) : value();
        }
        what.push(`${name}.${field}=${JSON.stringify(entry[field])}`);
      }
    }
  }
  meta[CONFIG_METADATA_KEY] = JSON.stringify(config);
  header.__metadata__ = meta;
  return { bytes: rawFile(JSON.stringify(header), data), what };
}

function mutate(mode: Mode, base: Uint8Array, dataStart: number, rand: Rand): { bytes: Uint8Array; what: string[] } {
  const what: string[] = [];
  const count = rand() < 0.5 ? 1 : 2 + Math.floor(rand() * 2);
  if (mode === 'values') {
    return mutateValues(new TextDecoder().decode(base.subarray(8, dataStart)), base.subarray(dataStart), rand);
  }
  if (mode === 'header') {
    let text: Uint8Array = base.slice(8, dataStart);
    for (let m = 0; m < count && text.length > 0; m++) {
      const r = mutateOnce(text, 0, text.length, 'header', rand, 5);
      text = r.bytes;
      what.push(r.what);
    }
    const out = new Uint8Array(8 + text.length + base.length - dataStart);
    new DataView(out.buffer).setUint32(0, text.length, true);
    out.set(text, 8);
    out.set(base.subarray(dataStart), 8 + text.length);
    return { bytes: out, what };
  }
  let bytes: Uint8Array = base.slice();
  for (let m = 0; m < count && bytes.length > 0; m++) {
    const inHeader = rand() < 0.6;
    const lo = inHeader ? 0 : Math.min(dataStart, bytes.length - 1);
    const hi = inHeader ? Math.min(dataStart, bytes.length) : bytes.length;
    const r = mutateOnce(bytes, lo, hi, inHeader ? 'header' : 'data', rand, 7);
    bytes = r.bytes;
    what.push(r.what);
  }
  return { bytes, what };
}

function tensorCount(): number {
  return tf.memory().numTensors;
}

/** Worker side: run every case, post one message per case and a summary. */
async function runFuzzWorker(seed: number): Promise<void> {
  await tf.setBackend('cpu');
  const port = parentPort!;
  const base = tinyVitFile();
  const { dataStart } = parseSafetensorsHeader(base, base.length);
  const rand = mulberry32(seed);
  const before = tensorCount();
  const modes = FUZZ_PLAN.flatMap(([mode, n]) => Array<Mode>(n).fill(mode));
  for (const [index, mode] of modes.entries()) {
    const { bytes, what } = mutate(mode, base, dataStart, rand);
    const mutations = what.join('; ');
    port.postMessage({ started: index, mutations });
    const t0 = performance.now();
    let result: CaseResult;
    try {
      const model = vitFromSafetensors(bytes);
      // A model that loads must also run.
      const { imageSize, inChannels, numClasses } = model.config;
      const shape = tf.tidy(() => model.logits(tf.zeros([1, imageSize, imageSize, inChannels]) as tf.Tensor4D).shape);
      model.dispose();
      if (shape[0] !== 1 || shape[1] !== numClasses) throw new Error(`logits shape [${shape}] for ${numClasses} classes`);
      result = { index, mode, outcome: 'loaded', mutations, ms: 0 };
    } catch (e) {
      const err = e as Error;
      result =
        e instanceof ModelFormatError
          ? { index, mode, outcome: 'rejected', mutations, ms: 0, error: err.message }
          : { index, mode, outcome: 'other', mutations, ms: 0, error: `${err?.name}: ${err?.message}\n${err?.stack ?? ''}` };
    }
    result.ms = performance.now() - t0;
    port.postMessage({ result });
  }
  port.postMessage({ done: true, leakedTensors: tensorCount() - before });
}

if (!isMainThread && (workerData as { fuzz?: boolean } | null)?.fuzz) {
  try {
    await runFuzzWorker((workerData as { seed: number }).seed);
  } catch (e) {
    parentPort!.postMessage({ fatal: `${(e as Error)?.stack ?? String(e)}` });
  }
} else if (isMainThread) {
  test('base ViT file loads', async () => {
    await tf.setBackend('cpu');
    const model = vitFromSafetensors(tinyVitFile());
    assert.deepEqual(model.config, tinyConfig);
    model.dispose();
  });

  test(`fuzz: ${FUZZ_CASES} seeded mutations of a ViT file load or throw ModelFormatError`, { timeout: 600_000 }, async (t) => {
    const hangMs = 20_000;
    // Load this file in the worker through tsx's API (workers do not inherit --import hooks).
    const self = JSON.stringify(import.meta.url);
    const worker = new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => m.tsImport(${self}, ${self}));`, {
      eval: true,
      workerData: { fuzz: true, seed: FUZZ_SEED },
      // An absurd allocation on the JS heap kills the worker, not the test.
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
    });
    const results: CaseResult[] = [];
    let current = { started: -1, mutations: '' };
    const summary = await new Promise<{ leakedTensors: number }>((resolve, reject) => {
      let timer: NodeJS.Timeout;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          reject(new Error(`case ${current.started} (${current.mutations}) ran over ${hangMs} ms`));
          void worker.terminate();
        }, hangMs);
      };
      arm();
      type Message = { started?: number; mutations?: string; result?: CaseResult; done?: boolean; leakedTensors?: number; fatal?: string };
      worker.on('message', (m: Message) => {
        arm();
        if (m.fatal !== undefined) {
          clearTimeout(timer);
          reject(new Error(`fuzz harness failed in case ${current.started} (${current.mutations}): ${m.fatal}`));
        }
        if (m.started !== undefined) current = { started: m.started, mutations: m.mutations ?? '' };
        if (m.result) results.push(m.result);
        if (m.done) {
          clearTimeout(timer);
          resolve({ leakedTensors: m.leakedTensors ?? 0 });
        }
      });
      worker.on('error', (e: Error) => {
        clearTimeout(timer);
        reject(new Error(`worker died in case ${current.started} (${current.mutations}): ${e.message}`));
      });
      worker.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`worker exited (${code}) in case ${current.started} (${current.mutations})`));
      });
    });
    await worker.terminate();

    const loaded = results.filter((r) => r.outcome === 'loaded').length;
    const rejected = results.filter((r) => r.outcome === 'rejected');
    const other = results.filter((r) => r.outcome === 'other');
    // Group rejections by message shape (numbers and names stripped) for the report.
    const kinds = new Map<string, number>();
    for (const r of rejected) {
      const key = r
        .error!.replace(/^\S+: /, '')
        .replace(/ (got|\(|shape |data_offsets |dtype |holds |config says |config depth ).*$/, ' $1…')
        .replace(/(?<!UTF-)\d+/g, 'N');
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
    }
    const slowest = results.reduce((a, b) => (b.ms > a.ms ? b : a));
    t.diagnostic(
      `fuzz seed ${FUZZ_SEED}: ${results.length} cases, ${loaded} loaded, ${rejected.length} rejected with ModelFormatError, ${other.length} other errors`,
    );
    for (const [mode] of FUZZ_PLAN) {
      const of = results.filter((r) => r.mode === mode);
      const count = (o: CaseResult['outcome']) => of.filter((r) => r.outcome === o).length;
      t.diagnostic(`  ${mode}: ${of.length} cases, ${count('loaded')} loaded, ${count('rejected')} rejected, ${count('other')} other`);
    }
    t.diagnostic(`slowest case ${slowest.index}: ${slowest.ms.toFixed(1)} ms (${slowest.mutations}); tensors leaked: ${summary.leakedTensors}`);
    for (const [k, n] of [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 25)) t.diagnostic(`  ${String(n).padStart(5)}  ${k}`);

    assert.equal(results.length, FUZZ_CASES);
    assert.deepEqual(
      other.slice(0, 5).map((r) => `case ${r.index} (${r.mutations}): ${r.error}`),
      [],
      `${other.length} cases threw something other than ModelFormatError`,
    );
    assert.equal(summary.leakedTensors, 0, 'tensors left allocated after the fuzz');
    assert.ok(loaded > 0 && rejected.length > 0, 'the fuzz exercises both outcomes');
  });
}
