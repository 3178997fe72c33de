// The 19 ImageNet-C corruptions: shapes, range, seeding, severity, leaks,
// batches, gray images, the pooled paths of large images, JPEG itself, and
// the two regimes (imagenet64, the default; cifar, the mild one).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { labeledImagesFromIdx } from '../idx';
import {
  ALL_CORRUPTIONS,
  CORRUPTIONS,
  CORRUPTION_REGIMES,
  DEFAULT_REGIME,
  EXTRA_CORRUPTIONS,
  RANDOM_CORRUPTIONS,
  REFERENCE_SIDE,
  SEVERITIES,
  chromaTable,
  corrupt,
  isCorruptionRegime,
  jpegRoundTrip,
  lumaTable,
  type CorruptionName,
  type CorruptionRegime,
} from '.';

await tf.setBackend('cpu');

/**
 * A test picture with flat areas, edges and fine detail, values in
 * [0.1, 0.9]: a gradient, a bright rectangle, a dark disc, a checker patch.
 * Colour for c = 3.
 */
function picture(h: number, w: number, c: 1 | 3): tf.Tensor3D {
  const out = new Float32Array(h * w * c);
  const tints =
    c === 3
      ? [
          [1, 0.6, 0.3],
          [0.2, 0.5, 1],
          [0.9, 0.9, 0.2],
        ]
      : [[1], [0.2], [0.85]];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let v = 0.3 + 0.3 * (y / h) + (c === 3 ? 0.15 * ch : 0.1) * (x / w);
        if (y > h * 0.15 && y < h * 0.45 && x > w * 0.1 && x < w * 0.4) v = 0.9 * tints[0]![ch]!;
        if ((y - h * 0.65) ** 2 + (x - w * 0.3) ** 2 < (Math.min(h, w) * 0.18) ** 2) v = 0.1 + 0.2 * tints[1]![ch]!;
        if (x > w * 0.55 && x < w * 0.9 && y > h * 0.2 && y < h * 0.85) {
          v = (Math.floor(x / 2) + Math.floor(y / 3)) % 2 ? 0.8 * tints[2]![ch]! : 0.2;
        }
        out[(y * w + x) * c + ch] = v;
      }
    }
  }
  return tf.tensor3d(out, [h, w, c]);
}

const SHIPPED = new URL('../../../public/data/fashion-mnist/', import.meta.url);

/** The first Fashion-MNIST test images as [n, 28, 28, 1], or null when the split is not there. */
function fashion(n: number): tf.Tensor4D | null {
  const images = new URL('t10k-images-idx3-ubyte', SHIPPED);
  const labels = new URL('t10k-labels-idx1-ubyte', SHIPPED);
  if (!existsSync(images) || !existsSync(labels)) return null;
  const split = labeledImagesFromIdx(new Uint8Array(readFileSync(images)), new Uint8Array(readFileSync(labels)));
  return tf.tensor4d(
    Float32Array.from(split.images.subarray(0, n * 784), (v) => v / 255),
    [n, 28, 28, 1],
  );
}

const meanAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.mean(tf.abs(tf.sub(a, b))).dataSync()[0]!);
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

function sameBits(a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

const gray = picture(28, 28, 1);
const colour = picture(48, 64, 3);
const fmnist = fashion(1);

// Restated on purpose, not imported from names.ts: the order is the benchmark's and each
// corruption's random stream (its salt is its index), so a reordering or rename must fail here.
test('the lists: 15 test corruptions in the benchmark order, 4 extra ones, no overlap', () => {
  assert.deepEqual(
    [...CORRUPTIONS],
    [
      'gaussian_noise',
      'shot_noise',
      'impulse_noise',
      'defocus_blur',
      'glass_blur',
      'motion_blur',
      'zoom_blur',
      'snow',
      'frost',
      'fog',
      'brightness',
      'contrast',
      'elastic_transform',
      'pixelate',
      'jpeg_compression',
    ],
  );
  assert.deepEqual([...EXTRA_CORRUPTIONS], ['speckle_noise', 'gaussian_blur', 'spatter', 'saturate']);
  assert.equal(new Set(ALL_CORRUPTIONS).size, 19);
  assert.deepEqual([...SEVERITIES], [1, 2, 3, 4, 5]);
});

/**
 * Corruptions whose distance from the clean image need not grow from
 * severity 1 to 5. Elastic (both regimes): the reference's random affine
 * jitter falls from 8% to 3% (cifar) or 2% (imagenet64) of the image while
 * its local displacement field grows (a NumPy re-run of the 32×32 formula on
 * Fashion-MNIST gives mean |Δ| 0.096 at severity 1, 0.060 at 5). Frost
 * (imagenet64): severity 1 keeps the whole image and adds 0.3·frost, severity
 * 5 keeps 0.7 of it and adds 0.55·frost, which on mid-gray pictures moves
 * them less on average.
 */
const MONOTONE_EXCEPTIONS: Record<CorruptionRegime, ReadonlySet<CorruptionName>> = {
  cifar: new Set<CorruptionName>(['elastic_transform']),
  imagenet64: new Set<CorruptionName>(['elastic_transform', 'frost']),
};

for (const regime of CORRUPTION_REGIMES) {
  for (const name of ALL_CORRUPTIONS) {
    test(`${name} (${regime}): shape, [0, 1], same result for a seed, other seeds differ when random, severity 5 > 1, no leaks`, () => {
      const images: [string, tf.Tensor][] = [
        ['gray 28×28×1', gray],
        ['colour 48×64×3', colour],
      ];
      if (fmnist) images.push(['Fashion-MNIST [1, 28, 28, 1]', fmnist]);
      for (const [label, x] of images) {
        const mad: number[] = [];
        for (const severity of SEVERITIES) {
          const before = tf.memory().numTensors;
          const a = corrupt(x, name, severity, 11, { regime });
          const b = corrupt(x, name, severity, 11, { regime });
          const what = `${label}, severity ${severity}`;
          assert.deepEqual(a.shape, x.shape, what);
          assert.equal(a.dtype, 'float32', what);
          const da = a.dataSync() as Float32Array;
          assert.ok(sameBits(da, b.dataSync() as Float32Array), `${what}: two calls with one seed differ`);
          for (let i = 0; i < da.length; i++) {
            if (!(da[i]! >= 0 && da[i]! <= 1)) assert.fail(`${what}: value ${da[i]} at ${i} outside [0, 1]`);
          }
          if (RANDOM_CORRUPTIONS.has(name)) {
            const c = corrupt(x, name, severity, 12, { regime });
            assert.ok(!sameBits(da, c.dataSync() as Float32Array), `${what}: seeds 11 and 12 give the same image`);
            c.dispose();
          }
          mad.push(meanAbsDiff(a, x));
          a.dispose();
          b.dispose();
          assert.equal(tf.memory().numTensors, before, `${what}: tensors leaked`);
        }
        // Severity ordering on the synthetic pictures; Fashion-MNIST is nearly
        // binary, where e.g. desaturation (severity 1) moves more than saturation.
        if (label.startsWith('Fashion')) continue;
        for (const [k, m] of mad.entries()) assert.ok(m > 1e-3, `${label}: severity ${k + 1} leaves the image unchanged (${m})`);
        if (!MONOTONE_EXCEPTIONS[regime].has(name)) {
          assert.ok(mad[4]! > mad[0]!, `${label}: severity 5 (mean |Δ| ${mad[4]}) should change more than severity 1 (${mad[0]})`);
        }
      }
    });
  }
}

for (const regime of CORRUPTION_REGIMES) {
  test(`batches (${regime}): image 0 is the single-image result; deterministic corruptions act on each image alone; [H, W, C] in gives [H, W, C] out`, () => {
    const grayBatch = tf.stack([gray, tf.reverse(gray, 1), tf.transpose(gray, [1, 0, 2])]) as tf.Tensor4D;
    const colourBatch = tf.stack([colour, tf.reverse(colour, 0)]) as tf.Tensor4D;
    for (const name of ALL_CORRUPTIONS) {
      for (const batch of [grayBatch, colourBatch]) {
        const out = corrupt(batch, name, 3, 5, { regime });
        const n = batch.shape[0];
        for (let i = 0; i < n; i++) {
          if (i > 0 && RANDOM_CORRUPTIONS.has(name)) continue;
          const one = tf.slice(batch, [i, 0, 0, 0], [1, -1, -1, -1]);
          const alone = corrupt(one, name, 3, 5, { regime });
          const got = tf.slice(out, [i, 0, 0, 0], [1, -1, -1, -1]);
          assert.ok(maxAbsDiff(got, alone) < 1e-5, `${name}: image ${i} of a batch of ${n} differs from its own result`);
          tf.dispose([one, alone, got]);
        }
        if (RANDOM_CORRUPTIONS.has(name) && batch === grayBatch) {
          // Same picture twice in a batch: each image has its own draws.
          const twice = tf.stack([gray, gray]) as tf.Tensor4D;
          const o = corrupt(twice, name, 3, 5, { regime });
          const [p, q] = tf.unstack(o);
          assert.ok(maxAbsDiff(p!, q!) > 0, `${name}: two images of a batch got the same draws`);
          tf.dispose([twice, o, p!, q!]);
        }
        out.dispose();
      }
      const r3 = corrupt(colour, name, 2, 9, { regime });
      const r4 = corrupt(tf.expandDims(colour, 0), name, 2, 9, { regime });
      assert.deepEqual(r3.shape, colour.shape);
      assert.ok(sameBits(r3.dataSync() as Float32Array, r4.dataSync() as Float32Array), `${name}: rank 3 and rank 4 inputs disagree`);
      tf.dispose([r3, r4]);
    }
    tf.dispose([grayBatch, colourBatch]);
  });
}

for (const regime of CORRUPTION_REGIMES) {
  // 4R on the short side, where the blurs first run pooled (s = 4, pooling factor 2).
  const bh = 4 * REFERENCE_SIDE[regime];
  const bw = 5 * REFERENCE_SIDE[regime];
  test(`large images take the pooled paths (${regime}, ${bh}×${bw}): range, shape, no leaks, a constant image stays constant under the blurs`, () => {
    const big = picture(bh, bw, 3);
    for (const name of ALL_CORRUPTIONS) {
      const before = tf.memory().numTensors;
      const y = corrupt(big, name, 5, 1, { regime });
      assert.deepEqual(y.shape, big.shape);
      const d = y.dataSync();
      assert.ok(
        d.every((v) => v >= 0 && v <= 1),
        `${name}: values outside [0, 1]`,
      );
      assert.ok(meanAbsDiff(y, big) > 1e-3, `${name}: no change at severity 5`);
      y.dispose();
      assert.equal(tf.memory().numTensors, before, `${name}: tensors leaked`);
    }
    const flat = tf.fill([bh, bw, 3], 0.4);
    for (const name of ['defocus_blur', 'gaussian_blur', 'motion_blur', 'zoom_blur', 'glass_blur'] as const) {
      for (const severity of [1, 5]) {
        const y = corrupt(flat, name, severity, 3, { regime });
        assert.ok(maxAbsDiff(y, flat) < 1e-5, `${name} ${severity}: a constant image changed`);
        y.dispose();
      }
    }
    // A symmetric blur keeps a linear ramp in the interior: checks that the pooled copy is aligned.
    const ramp = tf.tidy(() => tf.tile(tf.reshape(tf.linspace(0.1, 0.9, bw), [1, bw, 1]), [bh, 1, 1]));
    const blurred = corrupt(ramp, 'gaussian_blur', 5, 0, { regime });
    const inner = (t: tf.Tensor) => tf.slice(t, [20, 20, 0], [bh - 40, bw - 40, 1]);
    assert.ok(tf.tidy(() => maxAbsDiff(inner(blurred), inner(ramp))) < 2e-3, 'pooled Gaussian blur moved a ramp');
    tf.dispose([big, flat, ramp, blurred]);
  });
}

test('gray images: brightness adds to the gray value (0.3 cifar, 0.5 imagenet64, severity 5); saturate uses its gray analogue and changes the image', () => {
  for (const [regime, c] of [
    ['cifar', 0.3],
    ['imagenet64', 0.5],
  ] as const) {
    const y = corrupt(gray, 'brightness', 5, 0, { regime });
    const want = tf.minimum(tf.add(gray, c), 1);
    assert.ok(maxAbsDiff(y, want) < 1e-6, regime);
    tf.dispose([y, want]);
    for (const severity of SEVERITIES) {
      const s = corrupt(gray, 'saturate', severity, 0, { regime });
      assert.ok(meanAbsDiff(s, gray) > 0.02, `${regime}: saturate ${severity} hardly changes a gray image`);
      s.dispose();
    }
  }
});

test('bad input is refused', () => {
  assert.throws(() => corrupt(gray, 'rain', 1, 0), RangeError);
  for (const severity of [0, 6, 2.5]) assert.throws(() => corrupt(gray, 'fog', severity, 0), RangeError);
  assert.throws(() => corrupt(gray, 'fog', 1, Number.NaN), RangeError);
  const two = tf.zeros([8, 8, 2]);
  assert.throws(() => corrupt(two, 'fog', 1, 0), RangeError);
  const flat = tf.zeros([8, 8]);
  assert.throws(() => corrupt(flat, 'fog', 1, 0), RangeError);
  tf.dispose([two, flat]);
});

// ---------------------------------------------------------------------------
// Regimes

/** Standard deviation of y - x over all values. */
const residualStd = (y: tf.Tensor, x: tf.Tensor) =>
  tf.tidy(() => {
    const r = tf.sub(y, x);
    return Math.sqrt(tf.mean(tf.square(tf.sub(r, tf.mean(r)))).dataSync()[0]!);
  });

test('regimes: imagenet64 (the default) and cifar; the guard; unknown regimes are refused with the known ones named', () => {
  assert.deepEqual([...CORRUPTION_REGIMES], ['imagenet64', 'cifar']);
  assert.equal(DEFAULT_REGIME, 'imagenet64');
  assert.deepEqual({ ...REFERENCE_SIDE }, { imagenet64: 64, cifar: 32 });
  for (const r of CORRUPTION_REGIMES) assert.ok(isCorruptionRegime(r));
  for (const r of ['imagenet', 'CIFAR', '', 'imagenet224', undefined, null, 64]) assert.ok(!isCorruptionRegime(r), String(r));
  for (const bad of ['imagenet224', 'CIFAR', '']) {
    assert.throws(
      () => corrupt(gray, 'fog', 1, 0, { regime: bad as CorruptionRegime }),
      (e: unknown) => e instanceof RangeError && e.message.includes('imagenet64') && e.message.includes('cifar') && e.message.includes(`'${bad}'`),
    );
  }
  // An options object without a regime, or none at all, is the default.
  const before = tf.memory().numTensors;
  for (const name of ALL_CORRUPTIONS) {
    const plain = corrupt(colour, name, 4, 21);
    const empty = corrupt(colour, name, 4, 21, {});
    const named = corrupt(colour, name, 4, 21, { regime: 'imagenet64' });
    const mild = corrupt(colour, name, 4, 21, { regime: 'cifar' });
    const p = plain.dataSync() as Float32Array;
    assert.ok(sameBits(p, named.dataSync() as Float32Array), `${name}: the default is not imagenet64`);
    assert.ok(sameBits(p, empty.dataSync() as Float32Array), `${name}: {} is not the default`);
    // Zoom blur has the same factors in both scripts; every other corruption differs at severity 4.
    if (name !== 'zoom_blur') assert.ok(!sameBits(p, mild.dataSync() as Float32Array), `${name}: imagenet64 and cifar agree`);
    tf.dispose([plain, empty, named, mild]);
  }
  assert.equal(tf.memory().numTensors, before);
});

test("regimes: per-pixel noise on mid-gray has the scripts' strength (gaussian σ 0.18 vs 0.10, shot 15 vs 50 photons, impulse 0.14 vs 0.07, speckle 0.35 vs 0.20)", () => {
  const mid = tf.fill([64, 64, 3], 0.5);
  const std = (name: string, regime: CorruptionRegime) => {
    const y = corrupt(mid, name, 5, 4, { regime });
    const v = residualStd(y, mid);
    y.dispose();
    return v;
  };
  // 12288 values: the standard error of a std estimate is about σ/157; clipping at 0 and 1 is 2.8σ away or more.
  assert.ok(Math.abs(std('gaussian_noise', 'imagenet64') - 0.18) < 0.004, `gaussian imagenet64 ${std('gaussian_noise', 'imagenet64')}`);
  assert.ok(Math.abs(std('gaussian_noise', 'cifar') - 0.1) < 0.003, `gaussian cifar ${std('gaussian_noise', 'cifar')}`);
  // Poisson(0.5·c)/c has σ sqrt(0.5/c).
  assert.ok(Math.abs(std('shot_noise', 'imagenet64') - Math.sqrt(0.5 / 15)) < 0.005);
  assert.ok(Math.abs(std('shot_noise', 'cifar') - Math.sqrt(0.5 / 50)) < 0.003);
  // x + x·N(0, c²): σ 0.5·c.
  assert.ok(Math.abs(std('speckle_noise', 'imagenet64') - 0.5 * 0.35) < 0.004);
  assert.ok(Math.abs(std('speckle_noise', 'cifar') - 0.5 * 0.2) < 0.003);
  for (const [regime, amount] of [
    ['imagenet64', 0.14],
    ['cifar', 0.07],
  ] as const) {
    const y = corrupt(mid, 'impulse_noise', 5, 4, { regime });
    const d = y.dataSync();
    const hit = d.filter((v) => v === 0 || v === 1).length / d.length;
    assert.ok(Math.abs(hit - amount) < 0.01, `impulse ${regime}: ${hit} of the values hit, want ${amount}`);
    y.dispose();
  }
  mid.dispose();
});

test('regimes: contrast (0.05 vs 0.15), brightness (+0.5 vs +0.3) and JPEG quality (25 vs 40) at severity 5', () => {
  const x = tf.expandDims(colour, 0) as tf.Tensor4D;
  const mean = tf.mean(x, [1, 2], true);
  for (const [regime, c] of [
    ['imagenet64', 0.05],
    ['cifar', 0.15],
  ] as const) {
    const y = corrupt(x, 'contrast', 5, 0, { regime });
    const want = tf.tidy(() => tf.add(tf.mul(tf.sub(x, mean), c), mean));
    assert.ok(maxAbsDiff(y, want) < 1e-6, `contrast ${regime}`);
    tf.dispose([y, want]);
  }
  // On colour: HSV value + c, so the largest channel of each pixel rises by c (up to 1).
  for (const [regime, c] of [
    ['imagenet64', 0.5],
    ['cifar', 0.3],
  ] as const) {
    const y = corrupt(x, 'brightness', 5, 0, { regime });
    const want = tf.tidy(() => tf.minimum(tf.add(tf.max(x, 3), c), 1));
    assert.ok(tf.tidy(() => maxAbsDiff(tf.max(y, 3), want)) < 1e-5, `brightness ${regime}`);
    tf.dispose([y, want]);
  }
  const qualities: Record<CorruptionRegime, number[]> = { imagenet64: [65, 58, 50, 40, 25], cifar: [80, 65, 58, 50, 40] };
  for (const regime of CORRUPTION_REGIMES) {
    for (const severity of SEVERITIES) {
      const y = corrupt(x, 'jpeg_compression', severity, 0, { regime });
      const want = jpegRoundTrip(x, qualities[regime][severity - 1]!);
      assert.ok(sameBits(y.dataSync() as Float32Array, want.dataSync() as Float32Array), `jpeg ${regime} severity ${severity}`);
      tf.dispose([y, want]);
    }
  }
  const q25 = jpegRoundTrip(x, 25);
  const q40 = jpegRoundTrip(x, 40);
  assert.ok(meanAbsDiff(q25, x) > meanAbsDiff(q40, x), 'quality 25 should lose more than 40');
  tf.dispose([x, mean, q25, q40]);
});

test("regimes: lengths scale from the regime's reference side (pixelate cells, gaussian blur σ)", () => {
  // Pixelate at severity 5 on a 64×64 image: imagenet64 (R = 64, s = 1) cuts int(64·0.5) = 32 cells per
  // side, 2×2 blocks; cifar (R = 32, s = 2) cuts floor(0.65·64/2) = 20.
  const noise = tf.tidy(() => tf.randomUniform([64, 64, 1], 0, 1, 'float32', 3));
  const cells = (regime: CorruptionRegime) => {
    const y = corrupt(noise, 'pixelate', 5, 0, { regime });
    const row = Array.from(y.dataSync().subarray(0, 64));
    y.dispose();
    return row.filter((v, i) => i === 0 || v !== row[i - 1]).length;
  };
  assert.equal(cells('imagenet64'), 32);
  assert.equal(cells('cifar'), 20);
  // Gaussian blur σ at severity 5 is 1.5 px at 64 px (imagenet64) and 1 px at 32 px (cifar): on a 64×64
  // image that is 1.5 px against 2 px, so imagenet64 blurs a 64-px image less, a 32-px one more.
  const impulse = (side: number) => tf.tidy(() => tf.scatterND(tf.tensor2d([[side / 2, side / 2, 0]], [1, 3], 'int32'), tf.tensor1d([1]), [side, side, 1]));
  const spread = (side: number, regime: CorruptionRegime) => {
    const x = impulse(side);
    const y = corrupt(x, 'gaussian_blur', 5, 0, { regime });
    const d = y.dataSync();
    let sum = 0;
    let m2 = 0;
    for (let k = 0; k < d.length; k++) {
      const dx = (k % side) - side / 2;
      sum += d[k]!;
      m2 += d[k]! * dx * dx;
    }
    tf.dispose([x, y]);
    return Math.sqrt(m2 / sum);
  };
  assert.ok(Math.abs(spread(64, 'imagenet64') - 1.5) < 0.05, `σ ${spread(64, 'imagenet64')}`);
  assert.ok(Math.abs(spread(64, 'cifar') - 2) < 0.05, `σ ${spread(64, 'cifar')}`);
  assert.ok(Math.abs(spread(32, 'imagenet64') - 1.5) < 0.05, `σ ${spread(32, 'imagenet64')}`);
  assert.ok(Math.abs(spread(32, 'cifar') - 1) < 0.05, `σ ${spread(32, 'cifar')}`);
  noise.dispose();
});

// ---------------------------------------------------------------------------
// JPEG

const to8 = (x: tf.Tensor) => tf.tidy(() => tf.div(tf.round(tf.mul(x, 255)), 255));

test('JPEG tables follow the IJG quality rule', () => {
  const base = [16, 11, 10, 16, 24, 40, 51, 61];
  assert.deepEqual([...lumaTable(50).slice(0, 8)], base);
  assert.ok(lumaTable(100).every((v) => v === 1));
  assert.ok(chromaTable(100).every((v) => v === 1));
  // quality 25: scale 5000/25 = 200, so each entry doubles; quality 75: scale 50, entries halve (rounded).
  assert.deepEqual(
    [...lumaTable(25).slice(0, 8)],
    base.map((v) => v * 2),
  );
  assert.deepEqual(
    [...lumaTable(75).slice(0, 8)],
    base.map((v) => Math.floor((v * 50 + 50) / 100)),
  );
  assert.equal(chromaTable(50)[63], 99);
  assert.ok(lumaTable(1).every((v) => v <= 255));
});

test('JPEG: quality 100 is nearly lossless, lower quality loses more', () => {
  // An RGB picture of gray values has flat chroma, which 4:2:0 subsampling keeps.
  const grayRgb = tf.tile(gray, [1, 1, 3]);
  for (const [label, x, lossless] of [
    ['gray', gray, true],
    ['gray as RGB', grayRgb, true],
    ['colour', colour, false],
  ] as const) {
    const x8 = tf.expandDims(to8(x), 0) as tf.Tensor4D;
    const errors = [100, 80, 50, 20, 5].map((q) => {
      const y = jpegRoundTrip(x8, q);
      const e = meanAbsDiff(y, x8);
      if (q === 100 && lossless) assert.ok(maxAbsDiff(y, x8) <= 2 / 255 + 1e-6, `${label}: quality 100 off by more than 2 levels`);
      y.dispose();
      return e;
    });
    if (lossless) assert.ok(errors[0]! < 0.5 / 255, `${label}: quality 100 error ${errors[0]! * 255} levels`);
    // Colour edges lose detail in the 2×2 chroma subsampling even at quality 100.
    else assert.ok(errors[0]! < errors[3]! / 2, `${label}: quality 100 error ${errors[0]! * 255} levels`);
    for (let k = 1; k < errors.length; k++) {
      assert.ok(errors[k]! > errors[k - 1]!, `${label}: error did not grow as quality fell: ${errors.map((e) => (e * 255).toFixed(2))}`);
    }
    x8.dispose();
  }
  grayRgb.dispose();
});

test('JPEG works on 8×8 blocks: a change inside one block stays in that block (gray)', () => {
  const x = to8(picture(32, 40, 1));
  const data = x.dataSync().slice();
  data[3 * 40 + 3] = 1 - data[3 * 40 + 3]!; // block (0, 0)
  data[17 * 40 + 26] = 1 - data[17 * 40 + 26]!; // block (2, 3)
  const poked = tf.tensor4d(data, [1, 32, 40, 1]);
  const a = jpegRoundTrip(tf.expandDims(x, 0) as tf.Tensor4D, 50).dataSync();
  const b = jpegRoundTrip(poked, 50).dataSync();
  const touched = new Set<string>();
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) touched.add(`${Math.floor(Math.floor(i / 40) / 8)},${Math.floor((i % 40) / 8)}`);
  assert.deepEqual([...touched].sort(), ['0,0', '2,3']);
  // Flat blocks have only a DC term, 8·(v - 128). At quality 40 the DC step is 20: v = 63 gives -520,
  // a multiple, and comes back exactly; v = 64 gives -512, which rounds to -520, so it comes back as 63.
  assert.equal(lumaTable(40)[0], 20);
  for (const [v, back] of [
    [63, 63],
    [64, 63],
  ] as const) {
    const flat = jpegRoundTrip(tf.fill([1, 16, 24, 1], v / 255) as tf.Tensor4D, 40).dataSync();
    assert.ok(
      flat.every((u) => Math.round(u * 255) === back),
      `flat ${v} did not come back as ${back}`,
    );
  }
  tf.dispose([x, poked]);
});
