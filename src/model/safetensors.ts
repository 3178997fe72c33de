import { ModelFormatError, showValue } from './errors';

/** Element sizes of the safetensors dtypes we can turn into float32. */
const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2, F64: 8 } as const;
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

/** Every dtype the format defines; a known one we cannot read gets a precise message. */
const KNOWN_UNSUPPORTED = new Set(['BOOL', 'U8', 'I8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'F8_E4M3', 'F8_E5M2']);

/**
 * Bounds on what a header may ask of us, set by what real models need. A
 * header entry is about 100 bytes of JSON; ViT-B/16 has ~150 tensors,
 * ConvNeXt-L ~350, ViT-g/14 ~650, so 10,000 tensors is 15 times the largest
 * and its entries take ~1 MB. Metadata can be larger (our config with
 * ImageNet-21k's 21,843 class names is ~0.5 MB), so the header may take 16
 * MiB, ten times both together. The reference implementation allows 100 MB;
 * a file that would need more is not a vision model this library runs, and
 * JSON.parse of a huge header is what a malicious file would aim at.
 */
export const MAX_HEADER_BYTES = 16 * 1024 * 1024;
export const MAX_TENSORS = 10_000;

export interface TensorEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** Absolute byte offset of the data section in the file. */
  dataStart: number;
}

export interface DecodedTensor {
  shape: number[];
  values: Float32Array;
}

const fail = (message: string, tensor?: string): never => {
  throw new ModelFormatError(message, tensor);
};

function isNonNegativeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Reads and validates the header of a safetensors file. `fileBytes` is the
 * whole file length; `headerBytes` must hold at least the first 8 bytes plus
 * the header itself (callers streaming a large file can pass just that prefix).
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileBytes: number): SafetensorsHeader {
  if (fileBytes < 8) fail(`file is ${fileBytes} bytes; a safetensors file starts with an 8-byte header length`);
  if (headerBytes.byteLength < 8) fail('header prefix shorter than 8 bytes');
  const view = new DataView(headerBytes.buffer, headerBytes.byteOffset, headerBytes.byteLength);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const headerLength = high * 2 ** 32 + low;
  if (headerLength > fileBytes - 8) {
    fail(`header length ${headerLength} runs past the end of the file (${fileBytes} bytes)`);
  }
  if (headerLength > MAX_HEADER_BYTES) fail(`header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
  if (headerBytes.byteLength < 8 + headerLength) fail('header prefix shorter than the declared header length');
  const dataStart = 8 + headerLength;
  const dataBytes = fileBytes - dataStart;

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes.subarray(8, dataStart));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('header JSON is not an object');
  const count = Object.keys(json as object).filter((k) => k !== '__metadata__').length;
  if (count > MAX_TENSORS) fail(`header lists ${count} tensors; at most ${MAX_TENSORS} are read (the largest vision models have under 1,000)`);
  const duplicate = duplicateKey(text);
  if (duplicate !== undefined)
    fail(
      `header names ${showValue(duplicate.key)} twice${duplicate.path ? ` in ${duplicate.path}` : ''}: safetensors forbids duplicate names, and which one is meant cannot be told`,
    );

  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(raw);
      continue;
    }
    tensors.set(name, parseEntry(name, raw, dataBytes));
  }

  // Tensors must not share bytes: sort by start and check each begins after the previous ends.
  const ordered = [...tensors.entries()].filter(([, t]) => t.end > t.begin).sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < ordered.length; i++) {
    const [prevName, prev] = ordered[i - 1]!;
    const [name, cur] = ordered[i]!;
    if (cur.begin < prev.end) {
      fail(`bytes [${cur.begin}, ${cur.end}) overlap tensor ${prevName} [${prev.begin}, ${prev.end})`, name);
    }
  }
  return { tensors, metadata, dataStart };
}

/**
 * The first key that appears twice in one object of `text` (valid JSON),
 * which JSON.parse silently resolves to the last. One pass, tracking only
 * the objects open at the current depth.
 */
export function duplicateKey(text: string): { key: string; path: string } | undefined {
  const stack: Array<{ keys: Set<string> | undefined; expectKey: boolean; name: string }> = [];
  let lastKey = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key))
          return {
            key,
            path: stack
              .slice(1)
              .map((s) => s.name)
              .join('.'),
          };
        top.keys.add(key);
        top.expectKey = false;
        lastKey = key;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      stack.push({ keys: c === '{' ? new Set() : undefined, expectKey: c === '{', name: lastKey });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined) top.expectKey = true;
    }
  }
  return undefined;
}

function parseMetadata(raw: unknown): Record<string, string> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ is not an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
    out[k] = v as string;
  }
  return out;
}

function parseEntry(name: string, raw: unknown, dataBytes: number): TensorEntry {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('entry is not an object', name);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') return fail('dtype missing or not a string', name);
  if (!Object.hasOwn(DTYPE_BYTES, dtype)) {
    return fail(KNOWN_UNSUPPORTED.has(dtype) ? `dtype ${dtype} is not supported (need F32, F16, BF16 or F64)` : `unknown dtype ${JSON.stringify(dtype)}`, name);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    return fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    return fail(`data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`, name);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`data_offsets [${begin}, ${end}) end before they begin`, name);
  if (end > dataBytes) fail(`data_offsets [${begin}, ${end}) lie outside the ${dataBytes}-byte data section`, name);
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = elements * DTYPE_BYTES[dtype as SafetensorsDtype];
  if (end - begin !== expected) {
    fail(`holds ${end - begin} bytes but shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${expected}`, name);
  }
  return { dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end };
}

const f16Scratch = new Float32Array(1);
const f16ScratchBits = new Uint32Array(f16Scratch.buffer);

/** IEEE half to single, exact for normals, subnormals, infinities and NaN. */
export function halfToFloat(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) {
    const magnitude = mant * 2 ** -24; // subnormal (or zero)
    return sign ? -magnitude : magnitude;
  }
  f16ScratchBits[0] = exp === 0x1f ? sign | 0x7f800000 | (mant << 13) : sign | ((exp + 112) << 23) | (mant << 13);
  return f16Scratch[0]!;
}

/** Converts one tensor's bytes (from its entry) to float32. `bytes` is exactly the tensor's data. */
export function decodeTensor(entry: TensorEntry, bytes: Uint8Array): Float32Array {
  const n = entry.shape.reduce((a, b) => a * b, 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (entry.dtype) {
    case 'F32':
      if (bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
      else for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      break;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
  }
  return out;
}

/** Parses a whole safetensors file held in memory. */
export function readSafetensors(file: ArrayBuffer | Uint8Array): {
  tensors: Map<string, DecodedTensor>;
  metadata: Record<string, string>;
} {
  const bytes = file instanceof Uint8Array ? file : new Uint8Array(file);
  const header = parseSafetensorsHeader(bytes, bytes.byteLength);
  const tensors = new Map<string, DecodedTensor>();
  for (const [name, entry] of header.tensors) {
    const slice = bytes.subarray(header.dataStart + entry.begin, header.dataStart + entry.end);
    tensors.set(name, { shape: entry.shape, values: decodeTensor(entry, slice) });
  }
  return { tensors, metadata: header.metadata };
}

/** Writes float32 tensors as a safetensors file (used by training and tests). */
export function writeSafetensors(tensors: Iterable<[string, { shape: number[]; values: Float32Array }]>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const list = [...tensors];
  let offset = 0;
  for (const [name, t] of list) {
    const bytes = t.values.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data section starts 8-byte aligned (as the reference writer does).
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setUint32(0, headerBytes.length, true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const [, t] of list) {
    out.set(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.length * 4), pos);
    pos += t.values.length * 4;
  }
  return out;
}
