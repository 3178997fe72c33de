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
import { autodiffGradient, AutodiffTape, type Backbone, type GradientLayout, type ParamLookup } from './backbone';

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

/** `names` of `model`'s norms laid end to end (what the methods' FlatLayout gives). */
function layoutOf(model: Backbone, names: string[]): GradientLayout {
  const offsets: number[] = [];
  let total = 0;
  for (const n of names) {
    offsets.push(total);
    total += model.variables.get(n)!.size;
  }
  return { names, offsets, total };
}

/**
 * A family's written-out backward (`gradient` of a saving `forward`) against
 * tf.grads through its differentiable forward (`summaries`), at norm values
 * moved off the model's own (as SAM's θ + ε are): for every skipLastBlocks
 * and with and without the final norm, with and without dFeatures; and a
 * forward lent the stem by an earlier tape of the same images giving the
 * same logits and gradient. Tensors and the backend's buffers flat once the
 * backward's derived filters exist. On the fixture's images, or on a batch of
 * two random ones at `imageSize` (where the last stage is more than 1×1).
 */
export async function assertBackwardIsAutodiff(f: PyTorchFixture, imageSize?: number): Promise<void> {
  const model = (await loadBackbone(f.model, { config: f.config })) as Backbone;
  const fixed = inputTensor(f.expected);
  // Another size: images of two at `imageSize`, random (what compares the two is tf.grads, not PyTorch).
  const x = imageSize ? (tf.randomUniform([2, imageSize, imageSize, fixed.shape[3]], 0, 1, 'float32', 9) as tf.Tensor4D) : fixed;
  if (x !== fixed) fixed.dispose();
  const [B] = x.shape;
  try {
    const all = layoutOf(model, [...model.variables.keys()]);
    tf.tidy(() => model.gradient(model.forward(x, model.param, true).tape!, tf.ones([B, model.config.numClasses]), all));
    const before = tf.memory().numTensors;
    const ids = tf.backend().numDataIds();
    const moved = new Map([...model.variables].map(([n, v]) => [n, tf.tidy(() => tf.add(v, tf.randomUniform(v.shape, -0.3, 0.3, 'float32', n.length)))]));
    const at: ParamLookup = (n) => moved.get(n) ?? model.param(n);
    const dLogits = tf.randomNormal([B, model.config.numClasses], 0, 1, 'float32', 5) as tf.Tensor2D;
    const dFeatures = tf.randomNormal([B, model.featureWidth], 0, 0.1, 'float32', 6) as tf.Tensor2D;
    const selections = new Set<string>();
    for (let skip = 0; skip <= model.normUnits; skip++)
      for (const includeFinalNorm of [false, true]) selections.add(JSON.stringify(model.selectNorms({ skipLastBlocks: skip, includeFinalNorm })));
    for (const selection of selections) {
      const names = JSON.parse(selection) as string[];
      const layout = layoutOf(model, names);
      for (const withFeatures of [false, true]) {
        const outs = tf.tidy(() => {
          const first = model.forward(x, model.param, true);
          const second = model.forward(x, at, true, first.tape);
          const alone = model.forward(x, at, true);
          const extra = withFeatures ? dFeatures : undefined;
          return [
            model.gradient(alone.tape!, dLogits, layout, extra),
            autodiffGradient((im, n) => model.summaries(im, n), new AutodiffTape(x, at), dLogits, layout, extra),
            second.logits,
            alone.logits,
            model.gradient(second.tape!, dLogits, layout, extra),
          ];
        });
        const [ours, reference, lentLogits, ownLogits, lentGrad] = await Promise.all(outs.map((t) => t.data()));
        tf.dispose(outs);
        const what = `${names.length} norms (${names[0] ?? 'none'} …)${withFeatures ? ', dFeatures' : ''}`;
        assert.equal(ours!.length, layout.total, what);
        const err = maxDiff(ours!, reference!);
        assert.ok(err <= 1e-4 * Math.max(1e-2, maxAbs(reference!)), `${what}: off autodiff by ${err} (largest ${maxAbs(reference!)})`);
        assert.deepEqual(lentLogits, ownLogits, `${what}: a lent stem changed the logits`);
        assert.deepEqual(lentGrad, ours, `${what}: a lent stem changed the gradient`);
      }
    }
    tf.dispose([...moved.values(), dLogits, dFeatures]);
    assert.equal(tf.memory().numTensors, before, 'tensors left by the forwards, tapes and gradients');
    assert.equal(tf.backend().numDataIds(), ids, "the backend's buffers: one left by a backward's own kernels");
  } finally {
    x.dispose();
    model.dispose();
  }
}
