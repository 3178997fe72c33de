// A frozen conv's input gradient split by phase, and over dy spread out with
// zeros (conv-grad.ts), against tfjs's own (conv2dTranspose), over the
// strides, filter sizes, paddings and odd sizes the families use and some
// they do not; on cpu and wasm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { convInputGrad, DerivedFilters, phaseAxis } from './conv-grad';
import { convNoFilterGrad } from './resnet-ops';

// [kh, kw, stride, pad, H, W]: the ResNet's 7×7/2 stem and 3×3/2 and 1×1/2 downsampling convs at even and odd sizes,
// the ConvNeXt's 2×2/2 downsample and 4×4/4 stem, stride 1, and filters narrower than the stride.
const CASES: Array<[number, number, number, number, number, number]> = [
  [3, 3, 1, 1, 6, 5],
  [1, 1, 1, 0, 4, 4],
  [3, 3, 2, 1, 8, 8],
  [3, 3, 2, 1, 7, 9],
  [1, 1, 2, 0, 8, 8],
  [1, 1, 2, 0, 7, 7],
  [7, 7, 2, 3, 14, 13],
  [2, 2, 2, 0, 8, 6],
  [4, 4, 4, 0, 16, 12],
  [3, 3, 3, 1, 10, 11],
  [5, 3, 2, 2, 9, 8],
  [3, 3, 2, 0, 9, 10],
  [1, 1, 3, 0, 8, 7],
];

/** Each case's dy and filter, and tfjs's own input gradient from the cpu backend (see below for why not wasm's). */
async function references() {
  assert.ok(await tf.setBackend('cpu'));
  return CASES.map(([kh, kw, s, p, H, W], i) =>
    tf.tidy(() => {
      const w = tf.randomNormal([kh, kw, 3, 5], 0, 1, 'float32', i) as tf.Tensor4D;
      const x: [number, number, number, number] = [2, H, W, 3];
      const y = tf.conv2d(tf.zeros(x) as tf.Tensor4D, w, s, p);
      const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 100 + i) as tf.Tensor4D;
      const want = tf.conv2dTranspose(dy, w, x, s, p);
      return { x, s, p, w: w.arraySync(), dy: dy.arraySync(), want: want.arraySync() };
    }),
  );
}

for (const [backend, route, dilateBelow] of [
  ['cpu', 'by phase', 0],
  ['cpu', 'spread out where the paddings allow, else by phase', Infinity],
  ['wasm', 'by phase', 0],
  ['wasm', 'spread out where the paddings allow, else by phase', Infinity],
] as const) {
  // The reference is the cpu backend's conv2dTranspose even on wasm: tfjs-wasm's Conv2DBackpropInput writes out of
  // bounds for some of these shapes (a 5×3 filter at stride 2, pad 2, 9×8: it aborts the module), which is one more
  // reason the families never call it.
  test(`convInputGrad equals conv2dTranspose on every case, ${route} (${backend})`, async () => {
    const cases = await references();
    assert.ok(await tf.setBackend(backend), backend);
    const filters = new DerivedFilters();
    const before = tf.memory().numTensors;
    for (const [i, c] of cases.entries()) {
      tf.tidy(() => {
        const got = convInputGrad(tf.tensor4d(c.dy), tf.tensor4d(c.w), c.x, c.s, c.p, filters, `case${i}`, dilateBelow);
        const want = tf.tensor4d(c.want);
        assert.deepEqual(got.shape, want.shape, `case ${i}`);
        const diff = tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]!;
        assert.ok(diff < 1e-4, `case ${i} (${CASES[i]!.join(', ')}): off by ${diff}`);
      });
    }
    const kept = tf.memory().numTensors - before;
    assert.ok(kept > 0, 'the derived filters are kept between calls');
    filters.dispose();
    assert.equal(tf.memory().numTensors, before, 'and freed by dispose');
    // The backend is still sound after all that: a fresh tensor round-trips.
    tf.tidy(() => assert.deepEqual(Array.from(tf.add(tf.ones([64]), 1).dataSync()), Array<number>(64).fill(2)));
  });
}

test('through tf.grad: convNoFilterGrad with derived filters gives tfjs’s own gradient', async () => {
  await tf.setBackend('cpu');
  const filters = new DerivedFilters();
  tf.tidy(() => {
    const w = tf.randomNormal([3, 3, 4, 6], 0, 1, 'float32', 7) as tf.Tensor4D;
    const x = tf.randomNormal([1, 9, 9, 4], 0, 1, 'float32', 8) as tf.Tensor4D;
    const loss = (f: (x: tf.Tensor4D) => tf.Tensor4D) => (v: tf.Tensor) => tf.sum(tf.square(f(v as tf.Tensor4D)));
    const ours = tf.grad(loss((v) => convNoFilterGrad(v, w, 2, 1, { filters, key: 'w' })))(x);
    const theirs = tf.grad(loss((v) => tf.conv2d(v, w, 2, 1)))(x);
    assert.ok(tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0]! < 1e-4);
  });
  filters.dispose();
});

test('phaseAxis: the phases share out the taps, each once, and the input positions, each once', () => {
  for (const [k, s, p, H] of [
    [3, 2, 1, 8],
    [7, 2, 3, 13],
    [2, 2, 0, 6],
    [1, 2, 0, 7],
    [5, 3, 2, 11],
  ] as const) {
    const O = Math.floor((H + 2 * p - k) / s) + 1;
    const phases = Array.from({ length: s }, (_, a) => phaseAxis(k, s, p, H, O, a));
    assert.deepEqual(
      phases.flatMap((x) => x.taps).sort((a, b) => a - b),
      Array.from({ length: k }, (_, m) => m),
      `taps of ${k}/${s}`,
    );
    assert.equal(
      phases.reduce((n, x) => n + x.length, 0),
      H,
      `positions of ${H} at stride ${s}`,
    );
  }
});
