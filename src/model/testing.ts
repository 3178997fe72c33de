// For the model families' tests against PyTorch (e2e/fixtures/<family>/):
// reading a fixture, comparing values, and breaking a file in one place for
// the loader's validation, so each family's test states only what differs.
// Nothing in the library imports this file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, writeSafetensors, type DecodedTensor } from './safetensors';
import { backboneFromTensors, loadBackbone } from './load';
import { ModelFormatError } from './errors';

export interface PyTorchFixture {
  model: Uint8Array;
  config: Record<string, unknown>;
  expected: Map<string, DecodedTensor>;
}

/** Reads fixture `name` from `dir`: the model file, its config.json, and PyTorch's inputs, logits and gradients. */
export function fixtureReader(dir: string): (name: string) => PyTorchFixture {
  return (name) => {
    const model = new Uint8Array(readFileSync(join(dir, name, 'model.safetensors')));
    const config = JSON.parse(readFileSync(join(dir, name, 'config.json'), 'utf8')) as Record<string, unknown>;
    const expected = readSafetensors(new Uint8Array(readFileSync(join(dir, name, 'expected.safetensors')))).tensors;
    return { model, config, expected };
  };
}

export const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

export const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** The fixture's `inputs` as an image batch; the caller disposes it. */
export function inputTensor(tensors: ReadonlyMap<string, DecodedTensor>): tf.Tensor4D {
  const inputs = tensors.get('inputs')!;
  return tf.tensor4d(inputs.values, inputs.shape as [number, number, number, number]);
}

/**
 * The tensors of model file `file`, with `variant` (a copy edited by `edit`,
 * written and read back as a file would be) and `rejects` (the loader must
 * refuse it with a ModelFormatError naming `tensor` and matching `pattern`).
 */
export function tensorVariants(file: Uint8Array) {
  const { tensors, metadata } = readSafetensors(file);
  const variant = (edit: (m: Map<string, DecodedTensor>) => void) => {
    const m = new Map([...tensors].map(([n, t]) => [n, { shape: t.shape, values: t.values.slice() }]));
    edit(m);
    return readSafetensors(new Uint8Array(writeSafetensors([...m], metadata))).tensors;
  };
  const rejects = (t: ReturnType<typeof variant>, config: object, tensor: string | undefined, pattern: RegExp) =>
    assert.throws(
      () => backboneFromTensors(t, metadata, config),
      (e: unknown) => e instanceof ModelFormatError && e.tensor === tensor && pattern.test(e.message),
      String(pattern),
    );
  return { tensors, metadata, variant, rejects };
}

/** logits() called outside tf.tidy must leave only its result behind, which the caller owns. */
export async function assertLogitsLeaveOnlyResult(f: PyTorchFixture): Promise<void> {
  const model = await loadBackbone(f.model, { config: f.config });
  const x = inputTensor(f.expected);
  try {
    const before = tf.memory().numTensors;
    const logits = model.logits(x);
    assert.equal(tf.memory().numTensors, before + 1, 'the forward left intermediates behind');
    logits.dispose();
  } finally {
    x.dispose();
    model.dispose();
  }
}
