// An adaptation state as a file: the adapted scale/shift, the momentum and
// the method's own state as safetensors tensors (param.<name>,
// momentum.<name>, state.<name>), and under the metadata key
// 'wildtta.state' the format version, the method, the counters and (from
// version 2) the fingerprint of the model it was adapted from.
//
// A state is checked like weights are: it must be this method's, of this
// model (family, config and weights hash), with the expected tensors, every
// value finite and within STATE_VALUE_LIMIT. Version 1 states (wildtta 0.2.0,
// no fingerprint) are still read, with a console warning, so states saved in
// IndexedDB before the fingerprint existed are not lost; every other check
// applies to them.
import type * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../model/backbone';
import { ModelFormatError, showValue } from '../model/errors';
import { readSafetensors, writeSafetensors, type DecodedTensor } from '../model/safetensors';
import { StateFormatError } from './errors';

const STATE_KEY = 'wildtta.state';
const VERSION = 2;
/** The version before fingerprints: read, with a warning. */
const UNFINGERPRINTED = 1;

/**
 * The largest magnitude a state value may have. The adapted tensors are norm
 * scale/shift (O(1) to O(100) in the models we know), their momentum, and
 * method state (EMAs of entropies, probabilities, Fisher values, class means
 * of pooled features): nothing near a million. A finite but huge value
 * (3e38) overflows the next layer and every logit becomes NaN; below this
 * limit a value squared and summed over a layer's width stays far inside
 * float32 (1e12 · 1e4 ≪ 3.4e38).
 */
export const STATE_VALUE_LIMIT = 1e6;

/** Which model a state was adapted from. */
export interface ModelFingerprint {
  family: string;
  config: Record<string, unknown>;
  /** fingerprint.ts's hash of the weights as loaded. */
  weights: string;
}

export function fingerprintOf(model: Backbone): ModelFingerprint {
  return { family: model.family, config: { ...model.config } as Record<string, unknown>, weights: model.weightsHash };
}

export interface StateCounters {
  steps: number;
  updates: number;
  resets: number;
}

/** The file for `tensors` (by key), saved by `method`. Reads each tensor's values (one read each). */
export async function writeState(
  tensors: Iterable<readonly [string, tf.Tensor]>,
  method: string,
  counters: StateCounters,
  model: ModelFingerprint,
): Promise<Uint8Array> {
  const entries: Array<[string, { shape: number[]; values: Float32Array }]> = [];
  for (const [key, t] of tensors) entries.push([key, { shape: t.shape, values: (await t.data()) as Float32Array }]);
  return writeSafetensors(entries, { [STATE_KEY]: JSON.stringify({ version: VERSION, method, ...counters, model }) });
}

let warnedUnfingerprinted = false;

/** Why a state's model is not `model` (its first difference), or undefined when it is the same. */
function modelDifference(saved: unknown, model: ModelFingerprint): string | undefined {
  if (saved === null || typeof saved !== 'object') return 'its model fingerprint is malformed';
  const s = saved as Partial<ModelFingerprint>;
  if (s.family !== model.family) return `it was adapted from a ${showValue(s.family)} model, this one is ${showValue(model.family)}`;
  const config = (s.config ?? {}) as Record<string, unknown>;
  for (const key of new Set([...Object.keys(config), ...Object.keys(model.config)])) {
    if (JSON.stringify(config[key]) !== JSON.stringify(model.config[key]))
      return `its model's config differs: ${key} is ${showValue(config[key])} there, ${showValue(model.config[key])} here`;
  }
  if (s.weights !== model.weights) return `it was adapted from other weights (hash ${showValue(s.weights)}, this model's ${model.weights})`;
  return undefined;
}

/**
 * The tensors and counters of a state file saved by `method` from `model`,
 * checked against `expected` (key → shape): every key present with its
 * shape, no other key, every value finite and within STATE_VALUE_LIMIT.
 * Throws StateFormatError naming what is wrong, before the caller changes
 * anything.
 */
export function readState(
  bytes: Uint8Array | ArrayBuffer,
  method: string,
  expected: ReadonlyMap<string, readonly number[]>,
  model: ModelFingerprint,
): { tensors: Map<string, DecodedTensor>; counters: StateCounters } {
  let file: ReturnType<typeof readSafetensors>;
  try {
    file = readSafetensors(bytes);
  } catch (e) {
    if (e instanceof ModelFormatError) throw new StateFormatError(`not a saved adaptation state: ${e.message}`);
    throw e;
  }
  let meta: { version?: number; method?: string; steps?: number; updates?: number; resets?: number; model?: unknown };
  try {
    meta = JSON.parse(file.metadata[STATE_KEY] ?? 'null') ?? {};
  } catch {
    throw new StateFormatError('state metadata is not valid JSON');
  }
  if (meta.version !== VERSION && meta.version !== UNFINGERPRINTED) throw new StateFormatError(`unsupported state version ${showValue(meta.version)}`);
  if (meta.method !== method) throw new StateFormatError(`state was saved by method ${showValue(meta.method)}, this adapter runs ${method}`);
  if (meta.version === UNFINGERPRINTED) {
    if (!warnedUnfingerprinted)
      console.warn('wildtta: importing a version 1 adaptation state, which does not say which model it was adapted from; export it again to save it with one');
    warnedUnfingerprinted = true;
  } else {
    const why = modelDifference(meta.model, model);
    if (why !== undefined) throw new StateFormatError(`state is of another model: ${why}`);
  }
  for (const [key, shape] of expected) {
    const t = file.tensors.get(key);
    if (!t) throw new StateFormatError(`state lacks ${key}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new StateFormatError(`${key} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
  }
  for (const key of file.tensors.keys()) if (!expected.has(key)) throw new StateFormatError(`state has unexpected tensor ${key}`);
  for (const [key, t] of file.tensors) {
    const v = t.values;
    for (let i = 0; i < v.length; i++) {
      if (!(Math.abs(v[i]!) <= STATE_VALUE_LIMIT))
        throw new StateFormatError(`${key}: value ${i} is ${showValue(v[i])}; every state value must be finite and within ±${STATE_VALUE_LIMIT}`);
    }
  }
  for (const c of ['steps', 'updates', 'resets'] as const) {
    const n = meta[c];
    if (n !== undefined && !(Number.isSafeInteger(n) && n >= 0)) throw new StateFormatError(`state counter ${c} is ${showValue(n)}, not a whole number ≥ 0`);
  }
  return { tensors: file.tensors, counters: { steps: meta.steps ?? 0, updates: meta.updates ?? 0, resets: meta.resets ?? 0 } };
}
