// A model's weights in one short string, so that an adaptation state can say
// which model it was adapted from (methods/state.ts) and be refused by any
// other, even one whose tensors have the same shapes.
//
// Why not SHA-256: crypto.subtle is async (the weights are hashed while the
// model is built, synchronously) and absent outside secure contexts (a demo
// served over http:// on a LAN). Why a non-cryptographic hash is enough: the
// fingerprint guards against mistakes (a state of another model, or of the
// same model retrained), not against forgery; anyone holding a state of this
// model holds its fingerprint and could copy it. What it must be is fast,
// since every weight of the model goes through it once at load: two 32-bit
// FNV-1a lanes over the 32-bit words (not bytes) of the float32 values, so
// ViT-B's 86 M weights take one pass of integer multiplies (~0.26 s on a busy
// 2-core machine in Node; the download and decode of its 350 MB take longer).
import type { DecodedTensor } from './safetensors';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
// A second lane with another odd multiplier and seed makes a collision need both 32-bit lanes to collide.
const LANE2_OFFSET = 0x9e3779b9;
const LANE2_PRIME = 0x5bd1e995;

/** The hash's name and version, part of the string so another hash can be told apart later. */
export const WEIGHTS_HASH = 'fnv1a32x2';

/** One tensor: its name, shape and every value's bits. */
function tensorHash(name: string, t: DecodedTensor): [number, number] {
  const head = Uint32Array.from([...Array.from(name, (c) => c.charCodeAt(0)), ...t.shape]);
  const v = t.values;
  const [a, b] = mixWords(FNV_OFFSET, LANE2_OFFSET, head);
  return mixWords(a, b, new Uint32Array(v.buffer, v.byteOffset, v.length));
}

/** Both lanes over `words`; one monomorphic loop, since it sees every weight of the model. */
function mixWords(a: number, b: number, words: Uint32Array): [number, number] {
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    a = Math.imul(a ^ w, FNV_PRIME);
    b = Math.imul(b ^ w, LANE2_PRIME);
    b ^= b >>> 15;
  }
  return [a >>> 0, b >>> 0];
}

/**
 * `weights` as `fnv1a32x2:<16 hex digits>`. Tensors are combined in name
 * order, so a file re-saved with its tensors in another order hashes the same.
 */
export function hashWeights(weights: Iterable<readonly [string, DecodedTensor]>): string {
  const per = [...weights].map(([name, t]) => [name, tensorHash(name, t)] as const).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  let a = FNV_OFFSET;
  let b = LANE2_OFFSET;
  for (const [, [ha, hb]] of per) {
    a = Math.imul(a ^ ha, FNV_PRIME);
    b = Math.imul(b ^ hb, LANE2_PRIME);
    b ^= b >>> 15;
  }
  const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');
  return `${WEIGHTS_HASH}:${hex(a)}${hex(b)}`;
}
