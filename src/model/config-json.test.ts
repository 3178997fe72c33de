// The config reading every family shares: class names from any of the three
// config flavours, and the input normalization.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classNamesOf, inputNormalization } from './config-json';
import { ModelFormatError } from './errors';

test("class names: ours or timm's list, else Hugging Face's id2label, else numbered", () => {
  assert.deepEqual(classNamesOf({ id2label: { '1': 'b', '0': 'a' } }, 2), ['a', 'b']);
  assert.deepEqual(classNamesOf({ class_names: ['x'], id2label: { '0': 'y' } }, 1), ['x']);
  assert.deepEqual(classNamesOf({ label_names: ['p', 'q'] }, 2), ['p', 'q']);
  // An id2label that does not name every class once is not read.
  assert.deepEqual(classNamesOf({ id2label: { '0': 'a', '2': 'c' } }, 2), ['class 0', 'class 1']);
  assert.deepEqual(classNamesOf({ id2label: { '0': 'a', '1': 7 } }, 2), ['class 0', 'class 1']);
  assert.deepEqual(classNamesOf({}, 3), ['class 0', 'class 1', 'class 2']);
  assert.throws(
    () => classNamesOf({ id2label: { '0': 'a', '1': 'b' } }, 3),
    (e: unknown) => e instanceof ModelFormatError && /2 names for 3 classes/.test(e.message),
  );
  assert.throws(() => classNamesOf({ class_names: ['a', 1] }, 2), /must be a list of strings/);
});

test("input normalization: ours, else timm's pretrained_cfg, else 0.5; one value for every channel", () => {
  assert.deepEqual(inputNormalization({ mean: [0.1], std: [0.2] }, 3), { mean: [0.1, 0.1, 0.1], std: [0.2, 0.2, 0.2] });
  assert.deepEqual(inputNormalization({ pretrained_cfg: { mean: [0.4, 0.5, 0.6], std: [1, 2, 3] } }, 3), { mean: [0.4, 0.5, 0.6], std: [1, 2, 3] });
  assert.deepEqual(inputNormalization({}, 1), { mean: [0.5], std: [0.5] });
  assert.throws(() => inputNormalization({ mean: [0.1, 0.2] }, 3), /mean\/std need 3 values/);
  assert.throws(() => inputNormalization({ std: [0] }, 1), /std must not contain 0/);
});
