// An adaptation state as a file: the adapted scale/shift, the momentum and
// the method's own state as safetensors tensors (param.<name>,
// momentum.<name>, state.<name>), and under the metadata key
// 'wildtta.state' the format version, the method and the counters.
import type * as tf from '@tensorflow/tfjs-core';
import { ModelFormatError } from '../model/errors';
import { readSafetensors, writeSafetensors, type DecodedTensor } from '../model/safetensors';
import { StateFormatError } from './errors';

const STATE_KEY = 'wildtta.state';
const VERSION = 1;

export interface StateCounters {
  steps: number;
  updates: number;
  resets: number;
}

/** The file for `tensors` (by key), saved by `method`. Reads each tensor's values (one read each). */
export async function writeState(tensors: Iterable<readonly [string, tf.Tensor]>, method: string, counters: StateCounters): Promise<Uint8Array> {
  const entries: Array<[string, { shape: number[]; values: Float32Array }]> = [];
  for (const [key, t] of tensors) entries.push([key, { shape: t.shape, values: (await t.data()) as Float32Array }]);
  return writeSafetensors(entries, { [STATE_KEY]: JSON.stringify({ version: VERSION, method, ...counters }) });
}

/**
 * The tensors and counters of a state file saved by `method`, checked
 * against `expected` (key → shape): every key present with its shape, no
 * other key. Throws StateFormatError naming what is wrong, before the
 * caller changes anything.
 */
export function readState(
  bytes: Uint8Array | ArrayBuffer,
  method: string,
  expected: ReadonlyMap<string, readonly number[]>,
): { tensors: Map<string, DecodedTensor>; counters: StateCounters } {
  let file: ReturnType<typeof readSafetensors>;
  try {
    file = readSafetensors(bytes);
  } catch (e) {
    if (e instanceof ModelFormatError) throw new StateFormatError(`not a saved adaptation state: ${e.message}`);
    throw e;
  }
  let meta: { version?: number; method?: string; steps?: number; updates?: number; resets?: number };
  try {
    meta = JSON.parse(file.metadata[STATE_KEY] ?? 'null') ?? {};
  } catch {
    throw new StateFormatError('state metadata is not valid JSON');
  }
  if (meta.version !== VERSION) throw new StateFormatError(`unsupported state version ${String(meta.version)}`);
  if (meta.method !== method) throw new StateFormatError(`state was saved by method ${String(meta.method)}, this adapter runs ${method}`);
  for (const [key, shape] of expected) {
    const t = file.tensors.get(key);
    if (!t) throw new StateFormatError(`state lacks ${key}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new StateFormatError(`${key} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
  }
  for (const key of file.tensors.keys()) if (!expected.has(key)) throw new StateFormatError(`state has unexpected tensor ${key}`);
  return { tensors: file.tensors, counters: { steps: meta.steps ?? 0, updates: meta.updates ?? 0, resets: meta.resets ?? 0 } };
}
