// Parity of the tfjs ViT with a PyTorch reference (tools/make_fixtures.py):
// logits, and the gradients of the mean softmax entropy with respect to the
// LayerNorm weights (what test-time adaptation differentiates).
//
//   node --import tsx --test src/model/vit.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { vitFromSafetensors } from './load';
import { readSafetensors, type DecodedTensor } from './safetensors';
import type { ViT } from './vit';
import { softmaxEntropy } from '../kernels';

const FIXTURES = join(import.meta.dirname, '..', '..', 'e2e', 'fixtures');
const NAMES = ['vit-gray28-p4-token', 'vit-rgb32-p8-avg', 'vit-rgb16-p4-avgnorm'];
const LOW_PRECISION = { fixture: 'vit-gray28-p4-token', tags: ['f16', 'bf16'] };
const LOGIT_TOL = 1e-4;
const GRAD_REL_TOL = 1e-4;

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

function fixturePath(name: string, file: string): string {
  return join(FIXTURES, name, file);
}

function loadModel(name: string, weightsFile = 'model.safetensors'): ViT {
  const config: unknown = JSON.parse(readFileSync(fixturePath(name, 'config.json'), 'utf8'));
  return vitFromSafetensors(new Uint8Array(readFileSync(fixturePath(name, weightsFile))), config);
}

function loadExpected(name: string, file = 'expected.safetensors'): Map<string, DecodedTensor> {
  return readSafetensors(new Uint8Array(readFileSync(fixturePath(name, file)))).tensors;
}

function get(expected: Map<string, DecodedTensor>, key: string): DecodedTensor {
  const t = expected.get(key);
  assert.ok(t, `expected file has no tensor ${key}`);
  return t;
}

/** Largest |a - b|; the shapes must agree. */
function maxAbsDiff(actual: { shape: number[]; values: ArrayLike<number> }, want: DecodedTensor): number {
  assert.deepEqual(actual.shape, want.shape);
  let worst = 0;
  for (let i = 0; i < want.values.length; i++) {
    const d = Math.abs(actual.values[i]! - want.values[i]!);
    if (Number.isNaN(d)) return Infinity; // a NaN anywhere must fail the tolerance check
    worst = Math.max(worst, d);
  }
  return worst;
}

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]!));
  return m;
}

function inputsOf(expected: Map<string, DecodedTensor>): tf.Tensor4D {
  const x = get(expected, 'inputs');
  return tf.tensor4d(x.values, x.shape as [number, number, number, number]);
}

function checkLogits(model: ViT, expected: Map<string, DecodedTensor>): void {
  const want = get(expected, 'logits');
  const got = tf.tidy(() => model.logits(inputsOf(expected)));
  const err = maxAbsDiff({ shape: got.shape, values: got.dataSync() }, want);
  got.dispose();
  assert.ok(err <= LOGIT_TOL, `logits max-abs error ${err.toExponential(2)} > ${LOGIT_TOL}`);
}

for (const name of NAMES) {
  test(`${name}: logits match PyTorch`, () => {
    const model = loadModel(name);
    try {
      checkLogits(model, loadExpected(name));
    } finally {
      model.dispose();
    }
  });

  test(`${name}: LayerNorm gradients of the mean entropy match PyTorch`, () => {
    const model = loadModel(name);
    const expected = loadExpected(name);
    try {
      const wantNames = [...expected.keys()]
        .filter((k) => k.startsWith('grad.'))
        .map((k) => k.slice(5))
        .sort();
      assert.ok(wantNames.length > 0, 'fixture holds no gradients');
      // The model's adapted variables are exactly the LayerNorm affine tensors the reference differentiated.
      assert.deepEqual([...model.variables.keys()].sort(), wantNames);

      const x = inputsOf(expected);
      const { value, grads } = tf.variableGrads(() => tf.mean(softmaxEntropy(model.logits(x))) as tf.Scalar, [...model.variables.values()]);
      x.dispose();
      value.dispose();
      const byName = new Map<string, tf.Tensor>();
      for (const [varName, v] of model.variables) {
        const g = grads[v.name];
        assert.ok(g, `no gradient for ${varName}`);
        byName.set(varName, g);
      }

      const scale = Math.max(...wantNames.map((n) => maxAbs(get(expected, `grad.${n}`).values)));
      assert.ok(scale > 0, 'reference gradients are all zero');
      const errors = wantNames.map((n) => {
        const g = byName.get(n)!;
        return [n, maxAbsDiff({ shape: g.shape, values: g.dataSync() }, get(expected, `grad.${n}`))] as const;
      });
      tf.dispose(Object.values(grads));
      const [worstName, worst] = errors.reduce((a, b) => (b[1] > a[1] ? b : a));
      assert.ok(
        worst <= GRAD_REL_TOL * scale,
        `gradient of ${worstName}: max-abs error ${worst.toExponential(2)} > ${GRAD_REL_TOL} × ${scale.toExponential(2)}`,
      );
    } finally {
      model.dispose();
    }
  });
}

for (const tag of LOW_PRECISION.tags) {
  test(`${LOW_PRECISION.fixture}: ${tag.toUpperCase()} weights give the rounded model's logits`, () => {
    const name = LOW_PRECISION.fixture;
    const model = loadModel(name, `model.${tag}.safetensors`);
    try {
      const expected = loadExpected(name, `expected.${tag}.safetensors`);
      checkLogits(model, expected);
      // The rounding moves the logits well beyond the tolerance, so the
      // comparison above tells the rounded weights from the float32 ones.
      const f32 = get(loadExpected(name), 'logits');
      assert.ok(maxAbsDiff(f32, get(expected, 'logits')) > 10 * LOGIT_TOL, `${tag} fixture too close to F32 to test anything`);
    } finally {
      model.dispose();
    }
  });
}

/** The low-precision fixture's model and its first input image (the caller disposes both). */
function modelAndOneImage(): { model: ReturnType<typeof loadModel>; one: tf.Tensor4D } {
  const name = LOW_PRECISION.fixture;
  const model = loadModel(name);
  const all = get(loadExpected(name), 'inputs');
  const [, H, W, C] = all.shape as [number, number, number, number];
  return { model, one: tf.tensor4d(all.values.subarray(0, H * W * C), [1, H, W, C]) };
}

test('1,000 inferences inside tf.tidy leak no tensors', () => {
  const { model, one } = modelAndOneImage();
  try {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 1000; i++) {
      tf.tidy(() => {
        model.logits(one);
      });
    }
    assert.equal(tf.memory().numTensors, before);
  } finally {
    one.dispose();
    model.dispose();
  }
});

test('logits() outside tf.tidy leaves only its result (the caller owns it)', () => {
  const { model, one } = modelAndOneImage();
  try {
    const before = tf.memory().numTensors;
    const logits = model.logits(one);
    assert.equal(tf.memory().numTensors, before + 1, 'the forward left intermediates behind');
    logits.dispose();
  } finally {
    one.dispose();
    model.dispose();
  }
});
