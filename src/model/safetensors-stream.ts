// Reads a safetensors file from a URL or a Blob by streaming it straight
// into the per-tensor arrays a model is built from. Nothing holds the whole
// file as one buffer besides those arrays: for a ViT-B/16 (~350 MB) the peak
// is one copy of the weights plus one network chunk, not the file plus its
// decoded tensors (what reading the file into memory and parsing it costs).
import { DownloadError, failureText, ModelFormatError } from './errors';
import { decodeTensor, MAX_HEADER_BYTES, parseSafetensorsHeader, type DecodedTensor, type TensorEntry } from './safetensors';

export interface LoadProgress {
  loadedBytes: number;
  /** Total bytes when the server says (content-length); otherwise undefined. */
  totalBytes: number | undefined;
  /** Set by the loader: the file is read from the download cache (download-cache.ts), not the network. */
  fromCache?: boolean;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The tensors and metadata of a safetensors file, read as they arrive: a
 * `blob`, or the `response` to a request for `url` (which errors name).
 */
export async function streamSafetensors(
  source: { url: string; response: Response } | { blob: Blob },
  onProgress?: (p: LoadProgress) => void,
): Promise<{ tensors: Map<string, DecodedTensor>; metadata: Record<string, string> }> {
  if ('blob' in source) return readStream(source.blob.stream(), source.blob.size, 'the model file', onProgress);
  const res = source.response;
  if (!res.ok) throw new DownloadError(`could not fetch ${source.url}: HTTP ${res.status}`, source.url, `HTTP ${res.status}`, res.status);
  // A missing or malformed content-length is ignored, not trusted; the header says how long the file must be.
  const announced = Number(res.headers.get('content-length') ?? NaN);
  let total = Number.isSafeInteger(announced) && announced >= 0 ? announced : undefined;
  let body: ReadableStream<Uint8Array>;
  if (res.body === null) {
    const whole = new Uint8Array(
      await res.arrayBuffer().catch((e: unknown) => {
        throw new DownloadError(`${source.url} stopped downloading: ${failureText(e)}`, source.url, failureText(e));
      }),
    );
    body = new Blob([whole]).stream();
    total = whole.byteLength;
  } else body = res.body;
  return readStream(body, total, source.url, onProgress, source.url);
}

interface Target {
  name: string;
  entry: TensorEntry;
  /** Where this tensor's bytes go: the float32 array itself (F32), or a scratch buffer decoded at the end. */
  bytes: Uint8Array;
  values: Float32Array | undefined;
}

async function readStream(
  body: ReadableStream<Uint8Array>,
  total: number | undefined,
  what: string,
  onProgress?: (p: LoadProgress) => void,
  url?: string,
): Promise<{ tensors: Map<string, DecodedTensor>; metadata: Record<string, string> }> {
  const reader = body.getReader();
  let loaded = 0;
  let pending: Uint8Array | undefined; // a chunk not yet consumed (header bytes, then data)
  const next = async (): Promise<Uint8Array | undefined> => {
    if (pending !== undefined) {
      const p = pending;
      pending = undefined;
      return p;
    }
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (e) {
      // A connection lost part way: the browser rejects with a bare TypeError.
      if (url === undefined) throw e;
      throw new DownloadError(`${url} stopped downloading after ${loaded} bytes: ${failureText(e)}`, url, failureText(e));
    }
    const { done, value } = chunk;
    if (done) return undefined;
    loaded += value.byteLength;
    onProgress?.({ loadedBytes: loaded, totalBytes: total });
    return value;
  };
  try {
    // The header: 8 bytes of length, then that much JSON.
    let head = new Uint8Array(0);
    let need = 8;
    while (head.byteLength < need) {
      const chunk = await next();
      if (chunk === undefined) throw new ModelFormatError(`${what} ended after ${head.byteLength} bytes, inside the safetensors header`);
      const take = Math.min(chunk.byteLength, need - head.byteLength);
      const grown = new Uint8Array(head.byteLength + take);
      grown.set(head);
      grown.set(chunk.subarray(0, take), head.byteLength);
      head = grown;
      if (take < chunk.byteLength) pending = chunk.subarray(take);
      if (need === 8 && head.byteLength === 8) {
        const view = new DataView(head.buffer);
        const headerLength = view.getUint32(4, true) * 2 ** 32 + view.getUint32(0, true);
        if (headerLength > MAX_HEADER_BYTES) throw new ModelFormatError(`header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
        need = 8 + headerLength;
      }
    }
    // content-length may count compressed bytes, so the file's length is checked by where the stream ends, not against it.
    const header = parseSafetensorsHeader(head, Number.MAX_SAFE_INTEGER);
    const targets: Target[] = [...header.tensors]
      .map(([name, entry]) => {
        const n = entry.shape.reduce((a, b) => a * b, 1);
        if (entry.dtype === 'F32' && LITTLE_ENDIAN) {
          const values = new Float32Array(n);
          return { name, entry, values, bytes: new Uint8Array(values.buffer) };
        }
        return { name, entry, values: undefined, bytes: new Uint8Array(entry.end - entry.begin) };
      })
      .sort((a, b) => a.entry.begin - b.entry.begin);
    const dataEnd = targets.reduce((m, t) => Math.max(m, t.entry.end), 0);

    // Data section: copy each chunk's overlap with every tensor it touches.
    let pos = 0;
    let first = 0;
    while (pos < dataEnd) {
      const chunk = await next();
      if (chunk === undefined)
        throw new ModelFormatError(`${what} ended after ${header.dataStart + pos} bytes; its header needs ${header.dataStart + dataEnd}`);
      const end = pos + chunk.byteLength;
      while (first < targets.length && targets[first]!.entry.end <= pos) first++;
      for (let k = first; k < targets.length && targets[k]!.entry.begin < end; k++) {
        const t = targets[k]!;
        const from = Math.max(pos, t.entry.begin);
        const to = Math.min(end, t.entry.end);
        if (to > from) t.bytes.set(chunk.subarray(from - pos, to - pos), from - t.entry.begin);
      }
      pos = end;
    }
    const tensors = new Map<string, DecodedTensor>();
    for (const t of targets) tensors.set(t.name, { shape: t.entry.shape, values: t.values ?? decodeTensor(t.entry, t.bytes) });
    return { tensors, metadata: header.metadata };
  } finally {
    // Trailing bytes after the last tensor are not needed.
    void reader.cancel().catch(() => undefined);
  }
}
