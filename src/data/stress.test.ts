import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ALL_CORRUPTIONS, CORRUPTIONS, EXTRA_CORRUPTIONS } from './corruptions';
import { assertNotStress, corruptOrStress, isStressName, parseStressName, STRESS_STREAMS, STRESS_TRANSFORMS, stressPermutation, transform } from './stress';

await tf.setBackend('cpu');

/** A frame whose every pixel (and channel) holds a distinct value, so a permutation can be read off it. */
function distinct(S: number, C = 1): tf.Tensor4D {
  return tf.tensor4d(
    Array.from({ length: S * S * C }, (_, k) => k),
    [1, S, S, C],
  );
}

/** The frame as rows of [channels], for comparing against a hand-written rule. */
async function grid(x: tf.Tensor4D): Promise<number[][][]> {
  return (await x.array())[0]!;
}

test('each transform is the permutation its name says, on a 3×3 frame (by hand)', async () => {
  // in:        rot90 (ccw):  rot180:     rot270 (cw):  hflip:      vflip:
  // 0 1 2      2 5 8         8 7 6       6 3 0         2 1 0       6 7 8
  // 3 4 5      1 4 7         5 4 3       7 4 1         5 4 3       3 4 5
  // 6 7 8      0 3 6         2 1 0       8 5 2         8 7 6       0 1 2
  const want: Record<string, number[]> = {
    rot90: [2, 5, 8, 1, 4, 7, 0, 3, 6],
    rot180: [8, 7, 6, 5, 4, 3, 2, 1, 0],
    rot270: [6, 3, 0, 7, 4, 1, 8, 5, 2],
    hflip: [2, 1, 0, 5, 4, 3, 8, 7, 6],
    vflip: [6, 7, 8, 3, 4, 5, 0, 1, 2],
  };
  const x = distinct(3);
  for (const t of STRESS_TRANSFORMS) {
    const y = transform(x, t);
    assert.deepEqual(Array.from(await y.data()), want[t], t);
    y.dispose();
  }
  x.dispose();
});

test('every transform is a bijection of the pixels, keeps channels together, and composes as the group of the square does', async () => {
  for (const S of [1, 2, 5, 28]) {
    for (const t of STRESS_TRANSFORMS) {
      const p = stressPermutation(t, S);
      assert.equal(new Set(p).size, S * S, `${t} at ${S}: a permutation`);
    }
  }
  const x = distinct(5, 3);
  const twice = (t: (typeof STRESS_TRANSFORMS)[number]) => tf.tidy(() => transform(transform(x, t), t));
  // Flips and the half turn undo themselves; two quarter turns make a half turn; rot270 undoes rot90.
  for (const t of ['hflip', 'vflip', 'rot180'] as const) assert.deepEqual(await grid(twice(t)), await grid(x), `${t} twice`);
  assert.deepEqual(await grid(twice('rot90')), await grid(transform(x, 'rot180')));
  assert.deepEqual(await grid(tf.tidy(() => transform(transform(x, 'rot90'), 'rot270'))), await grid(x));
  // A pixel's channels move together.
  const y = await grid(transform(x, 'rot90'));
  const xs = await grid(x);
  assert.deepEqual(y[0]![0], xs[0]![4], 'rot90: the top-right pixel goes to the top-left, all three channels');
  assert.throws(() => transform(tf.zeros([1, 2, 3, 1]) as tf.Tensor4D, 'rot90'), /square/);
});

test('a stress name is a transform, optionally after a corruption applied first; other names are ordinary corruptions', async () => {
  assert.deepEqual(parseStressName('rot90'), { transform: 'rot90' });
  assert.deepEqual(parseStressName('hflip+fog'), { transform: 'hflip', corruption: 'fog' });
  for (const bad of ['fog', 'rot45', 'rot90+nothing', 'rot90+fog+snow', '']) assert.equal(parseStressName(bad), undefined, bad);
  // The stress family is none of the benchmark's corruptions, test or extra.
  for (const c of ALL_CORRUPTIONS) assert.ok(!isStressName(c), c);
  assert.ok(STRESS_STREAMS.every(isStressName));

  const x = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
  const direct = transform(x, 'vflip');
  const named = corruptOrStress(x, 'vflip', 5, 1);
  assert.deepEqual(await named.data(), await direct.data());
  // Corruption first, then the exact transform of its output.
  const both = corruptOrStress(x, 'rot270+gaussian_noise', 5, 11);
  const byHand = tf.tidy(() => transform(corruptOrStress(x, 'gaussian_noise', 5, 11), 'rot270'));
  assert.deepEqual(await both.data(), await byHand.data());
  tf.dispose([x, direct, named, both, byHand]);
});

test('assertNotStress refuses any stress stream and lets the corruptions through', () => {
  assert.doesNotThrow(() => assertNotStress([...EXTRA_CORRUPTIONS, ...CORRUPTIONS]));
  assert.throws(() => assertNotStress(['speckle_noise', 'rot90']), /never look at the stress family \(rot90\)/);
  assert.throws(() => assertNotStress(['hflip+spatter']), /stress/);
});
