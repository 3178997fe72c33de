// Safetensors reader: malformed containers, dtype conversion, round trip. (The
// seeded mutation fuzz of a whole ViT file is safetensors-fuzz.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ModelFormatError } from './errors';
import { decodeTensor, halfToFloat, parseSafetensorsHeader, readSafetensors, writeSafetensors } from './safetensors';
import { rawFile } from '../../tools/lib/raw-safetensors';

/** Asserts `fn` throws a ModelFormatError whose message matches and whose `tensor` is as given. */
function throwsFormat(fn: () => unknown, message: RegExp, tensor?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${String(e)}`);
    assert.match(e.message, message);
    assert.equal(e.tensor, tensor);
    if (tensor !== undefined) assert.ok(e.message.startsWith(`${tensor}: `), `message names the tensor: ${e.message}`);
    return true;
  });
}

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

test('truncated files are rejected', () => {
  throwsFormat(() => readSafetensors(new Uint8Array(0)), /file is 0 bytes; .*8-byte header length/);
  throwsFormat(() => readSafetensors(new Uint8Array(5)), /file is 5 bytes/);
  const good = rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(1, 2));
  // Cut inside the header: the declared header length now runs past the end.
  throwsFormat(() => readSafetensors(good.subarray(0, 20)), /header length \d+ runs past the end of the file \(20 bytes\)/);
  // Cut inside the data: the tensor's offsets no longer fit.
  throwsFormat(() => readSafetensors(good.subarray(0, good.length - 3)), /data_offsets \[0, 8\) lie outside the 5-byte data section/, 'a');
  // A caller passing a prefix shorter than the header it announces.
  throwsFormat(() => parseSafetensorsHeader(good.subarray(0, 4), good.length), /prefix shorter than 8 bytes/);
  throwsFormat(() => parseSafetensorsHeader(good.subarray(0, 12), good.length), /prefix shorter than the declared header length/);
});

test('header length beyond the end of the file', () => {
  const file = rawFile('{}');
  new DataView(file.buffer).setUint32(0, 1_000_000, true);
  throwsFormat(() => readSafetensors(file), /header length 1000000 runs past the end of the file \(10 bytes\)/);
  // The high word counts too (a 64-bit length).
  const high = rawFile('{}');
  new DataView(high.buffer).setUint32(4, 1, true);
  throwsFormat(() => readSafetensors(high), /header length 4294967298 runs past the end/);
});

test('header that is not UTF-8, not JSON, or not an object', () => {
  throwsFormat(() => readSafetensors(rawFile('{"a": ')), /header is not valid JSON \(/);
  throwsFormat(() => readSafetensors(rawFile('')), /header is not valid JSON/);
  const bad = rawFile('{"a":1}');
  bad[10] = 0xff;
  throwsFormat(() => readSafetensors(bad), /header is not valid UTF-8/);
  for (const h of ['[]', 'null', '"x"', '42', 'true']) {
    throwsFormat(() => readSafetensors(rawFile(h)), /header JSON is not an object/);
  }
  throwsFormat(() => readSafetensors(rawFile({ __metadata__: [1] })), /__metadata__ is not an object/);
  throwsFormat(() => readSafetensors(rawFile({ __metadata__: { k: 1 } })), /__metadata__\.k is not a string/);
  throwsFormat(() => readSafetensors(rawFile({ t: 5 })), /entry is not an object/, 't');
  throwsFormat(() => readSafetensors(rawFile({ t: { shape: [], data_offsets: [0, 0] } })), /dtype missing/, 't');
});

test('offsets out of range, reversed, malformed or overlapping', () => {
  throwsFormat(
    () => readSafetensors(rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }, f32(1, 2))),
    /data_offsets \[0, 12\) lie outside the 8-byte data section/,
    'w',
  );
  throwsFormat(
    () => readSafetensors(rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, f32(1, 2))),
    /data_offsets \[8, 4\) end before they begin/,
    'w',
  );
  for (const offsets of [[0], [0, 4, 8], ['0', 4], [-4, 0], [0.5, 4.5], null]) {
    throwsFormat(
      () => readSafetensors(rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: offsets } }, f32(1))),
      /data_offsets .* is not a pair of non-negative integers/,
      'w',
    );
  }
  const overlapping = {
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
  };
  throwsFormat(() => readSafetensors(rawFile(overlapping, f32(1, 2, 3))), /bytes \[4, 12\) overlap tensor a \[0, 8\)/, 'b');
  // Empty tensors may sit anywhere, even at the same offset as another.
  const empty = {
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    e: { dtype: 'F32', shape: [0, 5], data_offsets: [4, 4] },
  };
  assert.deepEqual(readSafetensors(rawFile(empty, f32(1, 2))).tensors.get('e')?.shape, [0, 5]);
});

test('unknown and unsupported dtypes', () => {
  throwsFormat(() => readSafetensors(rawFile({ w: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, f32(1))), /unknown dtype "F33"/, 'w');
  throwsFormat(
    () => readSafetensors(rawFile({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, f32(1, 2))),
    /dtype I64 is not supported \(need F32, F16, BF16 or F64\)/,
    'w',
  );
  // Names that exist on every object's prototype are not dtypes either.
  for (const dtype of ['f32', 'toString', '__proto__', 'constructor', '']) {
    throwsFormat(
      () => readSafetensors(rawFile({ w: { dtype, shape: [1], data_offsets: [0, 4] } }, f32(1))),
      new RegExp(`unknown dtype ${JSON.stringify(dtype)}`),
      'w',
    );
  }
});

test('byte size must equal shape × dtype size', () => {
  throwsFormat(
    () => readSafetensors(rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(1, 2))),
    /holds 8 bytes but shape \[3\] of F32 needs 12/,
    'w',
  );
  throwsFormat(
    () => readSafetensors(rawFile({ w: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 4] } }, f32(1))),
    /holds 4 bytes but shape \[2, 2\] of F16 needs 8/,
    'w',
  );
  // A huge declared shape can only match a data section that really holds it, so it is
  // rejected by arithmetic, with nothing allocated.
  throwsFormat(
    () => readSafetensors(rawFile({ w: { dtype: 'F32', shape: [2 ** 26, 2 ** 26], data_offsets: [0, 4] } }, f32(1))),
    /holds 4 bytes but shape \[67108864, 67108864\] of F32 needs 18014398509481984/,
    'w',
  );
});

test('bad shapes', () => {
  for (const shape of [[-1], [1.5], '4', [null], [[2]], null, [Number.MAX_SAFE_INTEGER + 1]]) {
    throwsFormat(
      () => readSafetensors(rawFile({ w: { dtype: 'F32', shape, data_offsets: [0, 4] } }, f32(1))),
      /shape .* is not a list of non-negative integers/,
      'w',
    );
  }
});

test('writeSafetensors / readSafetensors round trip', () => {
  const tensors: Array<[string, { shape: number[]; values: Float32Array }]> = [
    ['a.weight', { shape: [2, 3], values: new Float32Array([1, -2, 3.5, -0, Infinity, 1e-45]) }],
    ['scalar', { shape: [], values: new Float32Array([Math.PI]) }],
    ['empty', { shape: [0, 4], values: new Float32Array(0) }],
    ['nan', { shape: [1], values: new Float32Array([NaN]) }],
  ];
  const meta = { 'wildtta.config': '{"x": 1}', note: 'ü ✓' };
  const file = writeSafetensors(tensors, meta);
  const headerLength = new DataView(file.buffer).getUint32(0, true);
  assert.equal((8 + headerLength) % 8, 0, 'data section is 8-byte aligned');
  const back = readSafetensors(file);
  assert.deepEqual(back.metadata, meta);
  assert.deepEqual(
    [...back.tensors.keys()],
    tensors.map(([n]) => n),
  );
  for (const [name, t] of tensors) {
    const got = back.tensors.get(name)!;
    assert.deepEqual(got.shape, t.shape, name);
    assert.deepEqual(new Uint8Array(got.values.buffer), new Uint8Array(t.values.buffer), `${name} bit for bit`);
  }
  assert.ok(Object.is(back.tensors.get('a.weight')!.values[3], -0));
  // Subarray input (the file inside a larger buffer) reads the same.
  const padded = new Uint8Array(file.length + 16);
  padded.set(file, 8);
  assert.deepEqual(readSafetensors(padded.subarray(8, 8 + file.length)).tensors.get('a.weight')!.values, tensors[0]![1].values);
  // No metadata: no __metadata__ key at all.
  assert.deepEqual(readSafetensors(writeSafetensors(tensors.slice(0, 1))).metadata, {});
});

/** Decodes u16 words stored as `dtype` through the whole reader. */
function decode16(dtype: 'F16' | 'BF16', words: number[]): Float32Array {
  const data = new Uint8Array(words.length * 2);
  const view = new DataView(data.buffer);
  words.forEach((w, i) => view.setUint16(2 * i, w, true));
  return readSafetensors(rawFile({ t: { dtype, shape: [words.length], data_offsets: [0, data.length] } }, data)).tensors.get('t')!.values;
}

test('F16 conversion: normals, subnormals, infinities, NaN, signed zero', () => {
  const cases: Array<[number, number]> = [
    [0x0000, 0],
    [0x8000, -0],
    [0x3c00, 1],
    [0xbc00, -1],
    [0xc000, -2],
    [0x3555, 0.333251953125], // 1365/4096
    [0x3800, 0.5],
    [0x7bff, 65504], // largest finite half
    [0x0400, 2 ** -14], // smallest normal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x0001, 2 ** -24], // smallest subnormal
    [0x8001, -(2 ** -24)],
    [0x0200, 2 ** -15],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  const got = decode16(
    'F16',
    cases.map(([h]) => h),
  );
  cases.forEach(([h, want], i) => {
    assert.ok(Object.is(got[i], want), `0x${h.toString(16)} -> ${got[i]}, want ${want}`);
    assert.ok(Object.is(halfToFloat(h), want));
  });
  for (const nan of [0x7e00, 0x7c01, 0xfe00, 0x7fff]) assert.ok(Number.isNaN(halfToFloat(nan)), `0x${nan.toString(16)} is NaN`);
  assert.ok(decode16('F16', [0x7e00, 0xfc01]).every(Number.isNaN));
  // Every one of the 65,536 halves against the textbook formula.
  for (let h = 0; h < 0x10000; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    const want = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + m / 1024);
    const got1 = halfToFloat(h);
    assert.ok(Object.is(got1, want) || (Number.isNaN(got1) && Number.isNaN(want)), `0x${h.toString(16)}`);
  }
});

test('BF16 conversion', () => {
  const cases: Array<[number, number]> = [
    [0x0000, 0],
    [0x8000, -0],
    [0x3f80, 1],
    [0xc040, -3],
    [0x3eaa, 0.33203125], // 0x3eaa0000
    [0x4049, 3.140625], // pi truncated to 8 significant bits
    [0x7f7f, 3.3895313892515355e38], // largest finite bf16
    [0x0080, 2 ** -126], // smallest normal
    [0x0001, 2 ** -133], // smallest subnormal
    [0x7f80, Infinity],
    [0xff80, -Infinity],
  ];
  const got = decode16(
    'BF16',
    cases.map(([h]) => h),
  );
  cases.forEach(([h, want], i) => assert.ok(Object.is(got[i], want), `0x${h.toString(16)} -> ${got[i]}, want ${want}`));
  assert.ok(decode16('BF16', [0x7fc0, 0xffc1]).every(Number.isNaN));
});

test('F64 is narrowed to float32', () => {
  const data = new Uint8Array(new Float64Array([0.1, -1e300, 2 ** -1074]).buffer);
  const got = readSafetensors(rawFile({ t: { dtype: 'F64', shape: [3], data_offsets: [0, 24] } }, data)).tensors.get('t')!.values;
  assert.deepEqual([...got], [Math.fround(0.1), -Infinity, 0]);
});

test('unaligned F32 data section', () => {
  const values = [1.5, -2.25, 3e-40, 123456.789];
  // Header of 9 bytes: the data section starts at byte 17, and tensor b 4 bytes later.
  const header = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}}';
  for (const pad of ['', ' ', '  ', '   ']) {
    const file = rawFile(header + pad, f32(...values));
    // Also place the file itself at an odd offset of a bigger buffer.
    for (const shift of [0, 1, 3]) {
      const host = new Uint8Array(file.length + shift);
      host.set(file, shift);
      const { tensors } = readSafetensors(host.subarray(shift));
      assert.deepEqual([...tensors.get('a')!.values], [Math.fround(values[0]!)]);
      assert.deepEqual([...tensors.get('b')!.values], values.slice(1).map(Math.fround), `pad ${pad.length} shift ${shift}`);
    }
  }
  // decodeTensor directly on an unaligned slice.
  const bytes = new Uint8Array(13);
  bytes.set(f32(7, -8, 9), 1);
  assert.deepEqual([...decodeTensor({ dtype: 'F32', shape: [3], begin: 0, end: 12 }, bytes.subarray(1))], [7, -8, 9]);
});

// ---------------------------------------------------------------------------
// Fuzz: mutations of a valid small ViT file.
