// Safetensors files built byte by byte, for tests that feed the parser what
// writeSafetensors never would (bad JSON, wrong offsets, no padding).
const enc = new TextEncoder();

/** A file with the given header text (no padding) followed by `data`. */
export function rawFile(header: string | object, data: Uint8Array | number[] = []): Uint8Array {
  const json = enc.encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}
