/**
 * Blur corruptions: defocus_blur, glass_blur, motion_blur, zoom_blur,
 * gaussian_blur. Constants per regime (see regime.ts), from
 * hendrycks/robustness ImageNet-C/create_c/: make_imagenet_64_c.py
 * (imagenet64, 64×64 generator, R = 64) and make_cifar_c.py (cifar, 32×32
 * generator, R = 32), functions of the same names; the two scripts' formulas
 * are the same. Lengths in pixels there are multiplied by
 * s = max(1, min(H, W)/R) here (see index.ts for the size rule).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CorruptionContext } from './types';
import {
  atPooled,
  cropBoxes,
  filter2d,
  gatherPixels,
  gaussianBlur,
  geometryOf,
  imageRng,
  maxPooling,
  pad2d,
  pooledVariance,
  randInt,
  rangeInt,
  type Border,
  type Geometry,
} from './ops';
import { constantFor, type PerRegime } from './regime';

// defocus_blur c = (disk radius, σ of the Gaussian that antialiases the disk), in R-px pixels:
// make_imagenet_64_c.py [(0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)],
// make_cifar_c.py [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)].
const DEFOCUS: PerRegime<readonly [number, number]> = {
  imagenet64: [
    [0.5, 0.6],
    [1, 0.1],
    [1.5, 0.1],
    [2.5, 0.01],
    [3, 0.1],
  ],
  cifar: [
    [0.3, 0.4],
    [0.4, 0.5],
    [0.5, 0.6],
    [1, 0.2],
    [1.5, 0.1],
  ],
};
// glass_blur c = (Gaussian σ, largest pixel displacement, shuffle passes):
// make_imagenet_64_c.py [(0.1,1,1), (0.5,1,1), (0.6,1,2), (0.7,2,1), (0.9,2,2)],
// make_cifar_c.py [(0.05,1,1), (0.25,1,1), (0.4,1,1), (0.25,1,2), (0.4,1,2)].
const GLASS: PerRegime<readonly [number, number, number]> = {
  imagenet64: [
    [0.1, 1, 1],
    [0.5, 1, 1],
    [0.6, 1, 2],
    [0.7, 2, 1],
    [0.9, 2, 2],
  ],
  cifar: [
    [0.05, 1, 1],
    [0.25, 1, 1],
    [0.4, 1, 1],
    [0.25, 1, 2],
    [0.4, 1, 2],
  ],
};
// motion_blur c = (ImageMagick radius, sigma), angle drawn uniformly in [-45, 45) degrees:
// make_imagenet_64_c.py [(10,1), (10,1.5), (10,2), (10,2.5), (12,3)],
// make_cifar_c.py [(6,1), (6,1.5), (6,2), (8,2), (9,2.5)].
const MOTION: PerRegime<readonly [number, number]> = {
  imagenet64: [
    [10, 1],
    [10, 1.5],
    [10, 2],
    [10, 2.5],
    [12, 3],
  ],
  cifar: [
    [6, 1],
    [6, 1.5],
    [6, 2],
    [8, 2],
    [9, 2.5],
  ],
};
// zoom_blur, the same in make_imagenet_64_c.py and make_cifar_c.py: np.arange(1, 1.06, 0.01) ...
// np.arange(1, 1.26, 0.01). Floating-point arange makes these 1.00..1.06, 1.00..1.11, 1.00..1.15,
// 1.00..1.20, 1.00..1.25 (7, 12, 16, 21, 26 factors). Zoom factors have no length: nothing scales.
const ZOOM_LAST = [1.06, 1.11, 1.15, 1.2, 1.25];
// gaussian_blur c (σ): make_imagenet_64_c.py [.5, .75, 1, 1.25, 1.5], make_cifar_c.py [.4, .6, 0.7, .8, 1].
const GAUSSIAN_BLUR: PerRegime<number> = { imagenet64: [0.5, 0.75, 1, 1.25, 1.5], cifar: [0.4, 0.6, 0.7, 0.8, 1] };

const clip = (t: tf.Tensor4D) => tf.clipByValue(t, 0, 1);
const clampInt = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

/**
 * Gaussian blur of σ full-size pixels; σ above 2 px runs pooled (factor up to
 * σ/2, capped by maxPooling), the pooling's own spread taken off σ.
 */
export function scaledGaussianBlur(x: tf.Tensor4D, sigma: number, g: Geometry, mode: Border): tf.Tensor4D {
  const f = clampInt(Math.ceil(sigma / 2), 1, maxPooling(g));
  if (f === 1) return gaussianBlur(x, sigma, mode);
  const rest = Math.sqrt(Math.max(0, sigma * sigma - pooledVariance(f))) / f;
  return atPooled(x, f, (y) => gaussianBlur(y, rest, mode));
}

export function gaussianBlurCorruption(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const g = geometryOf(x, ctx.regime);
  const sigma = constantFor(GAUSSIAN_BLUR, ctx.regime, severity) * g.s;
  return tf.tidy(() => clip(scaledGaussianBlur(x, sigma, g, 'edge')));
}

// ---------------------------------------------------------------------------
// Defocus

/**
 * The reference's defocus kernel: the pixels within `radius` of the centre,
 * equal weights, then a Gaussian of σ `alias` over it, cut at ±`aliasHalf`
 * pixels (make_cifar_c.py's disk() uses a 3×3 Gaussian, ±1 pixel at R px,
 * for its radii, make_imagenet_64_c.py's the same); zero rows and columns trimmed.
 */
export function diskKernel(radius: number, alias: number, aliasHalf: number): { kernel: Float32Array; size: number } {
  const r = Math.max(0, Math.ceil(radius));
  const t = alias > 0 ? Math.max(1, Math.round(aliasHalf)) : 0;
  const n = 2 * r + 1;
  const disk = new Float64Array(n * n);
  let count = 0;
  for (let i = -r; i <= r; i++) {
    for (let j = -r; j <= r; j++) {
      if (i * i + j * j <= radius * radius) {
        disk[(i + r) * n + j + r] = 1;
        count++;
      }
    }
  }
  const g = new Float64Array(2 * t + 1);
  let gs = 0;
  for (let i = -t; i <= t; i++) gs += g[i + t] = t === 0 ? 1 : Math.exp((-i * i) / (2 * alias * alias));
  const size = n + 2 * t;
  const out = new Float64Array(size * size);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const v = disk[i * n + j]! / count;
      if (v === 0) continue;
      for (let a = 0; a <= 2 * t; a++) for (let b = 0; b <= 2 * t; b++) out[(i + a) * size + j + b]! += (v * g[a]! * g[b]!) / (gs * gs);
    }
  }
  // Trim borders that carry (almost) nothing, keeping the kernel square and centred.
  let trim = 0;
  const ringSum = (k: number) => {
    let sum = 0;
    for (let i = k; i < size - k; i++) {
      sum += out[k * size + i]! + out[(size - 1 - k) * size + i]!;
      if (i > k && i < size - 1 - k) sum += out[i * size + k]! + out[i * size + size - 1 - k]!;
    }
    return sum;
  };
  while (size - 2 * trim > 1 && ringSum(trim) < 1e-7) trim++;
  const m = size - 2 * trim;
  const kernel = new Float32Array(m * m);
  let total = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) total += kernel[i * m + j] = out[(i + trim) * size + j + trim]!;
  for (let k = 0; k < kernel.length; k++) kernel[k]! /= total;
  return { kernel, size: m };
}

export function defocusBlur(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const g = geometryOf(x, ctx.regime);
  const [r0, a0] = constantFor(DEFOCUS, ctx.regime, severity);
  const radius = r0 * g.s;
  const alias = a0 * g.s;
  // The antialiasing Gaussian reaches 1 reference pixel (s pixels) out. Kernels
  // reaching past 6 px run pooled; cv2.filter2D's border is reflect-101.
  const f = clampInt(Math.ceil((radius + g.s) / 6), 1, maxPooling(g));
  return tf.tidy(() =>
    clip(
      atPooled(x, f, (y) => {
        const restAlias = Math.sqrt(Math.max(0, alias * alias - pooledVariance(f))) / f;
        const { kernel, size } = diskKernel(radius / f, restAlias, g.s / f);
        return filter2d(y, kernel, size, size, 'reflect');
      }),
    ),
  );
}

// ---------------------------------------------------------------------------
// Glass

/**
 * Blur, shuffle each pixel with a random neighbour (sequential swaps over the
 * image, bottom-right to top-left, displacement drawn in [-d, d) per axis, as
 * the reference loop), blur again. The swaps are done on an index map in JS;
 * the pixels move in one gather.
 */
export function glassBlur(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const g = geometryOf(x, ctx.regime);
  const [s0, d0, passes] = constantFor(GLASS, ctx.regime, severity);
  const sigma = s0 * g.s;
  const d = Math.max(1, Math.round(d0 * g.s));
  const { b, h, w } = g;
  const src = new Int32Array(b * h * w);
  for (let i = 0; i < b; i++) {
    const rng = imageRng(ctx.seed, ctx.salt, i);
    const base = i * h * w;
    const perm = src.subarray(base, base + h * w);
    for (let k = 0; k < h * w; k++) perm[k] = base + k;
    for (let p = 0; p < passes; p++) {
      for (let row = h - d; row > d; row--) {
        for (let col = w - d; col > d; col--) {
          const dx = randInt(rng, -d, d);
          const dy = randInt(rng, -d, d);
          const a = row * w + col;
          const q = (row + dy) * w + col + dx;
          const t = perm[a]!;
          perm[a] = perm[q]!;
          perm[q] = t;
        }
      }
    }
  }
  return tf.tidy(() => {
    const once = scaledGaussianBlur(x, sigma, g, 'edge');
    const shuffled = gatherPixels(once, src);
    return clip(scaledGaussianBlur(shuffled, sigma, g, 'edge'));
  });
}

// ---------------------------------------------------------------------------
// Motion

/**
 * ImageMagick's MotionBlurImage (what the reference calls through Wand): a
 * one-sided kernel of width 2·ceil(radius)+1 with weights exp(-i²/2σ²),
 * normalised, sampling the pixels at round(i·(cos θ, sin θ)) from each output
 * pixel, edges repeated. Weights below 1e-3 of the first are dropped. Long
 * kernels run pooled (the pooled kernel bins the weights by f). θ per image,
 * in degrees.
 */
export function motionBlurWithAngles(x: tf.Tensor4D, radius: number, sigma: number, anglesDeg: number[], g: Geometry): tf.Tensor4D {
  const width = 2 * Math.ceil(radius) + 1;
  const last = Math.min(width - 1, Math.floor(sigma * Math.sqrt(2 * Math.log(1000))));
  const weights = Array.from({ length: last + 1 }, (_, i) => Math.exp((-i * i) / (2 * sigma * sigma)));
  const f = clampInt(Math.ceil((last + 1) / 24), 1, maxPooling(g));
  const binned: number[] = [];
  weights.forEach((wt, i) => {
    const j = Math.round(i / f);
    binned[j] = (binned[j] ?? 0) + wt;
  });
  const total = binned.reduce((a, v) => a + v, 0);
  return tf.tidy(() =>
    atPooled(x, f, (y): tf.Tensor4D => {
      const [, h, w] = y.shape;
      const pad = binned.length - 1;
      if (pad === 0) return tf.clone(y);
      const padded = pad2d(y, pad, pad, pad, pad, 'edge');
      const taps = binned.map((wt, j) => ({ j, wt: wt / total })).filter((t) => t.j > 0 && t.wt > 0);
      // Taps are cut from the padded batch a group at a time (one cropAndResize,
      // tap-major), then weighted and summed by one matrix product.
      const group = Math.max(1, Math.floor(8e6 / y.size));
      let acc: tf.Tensor4D = tf.mul(y, binned[0]! / total);
      for (let i = 0; i < taps.length; i += group) {
        const chunk = taps.slice(i, i + group);
        const next = tf.tidy(() => {
          const boxes: number[][] = [];
          const ind: number[] = [];
          for (const { j } of chunk) {
            anglesDeg.forEach((deg, k) => {
              const rad = (deg * Math.PI) / 180;
              const dx = Math.ceil(j * Math.cos(rad) - 0.5);
              const dy = Math.ceil(j * Math.sin(rad) - 0.5);
              boxes.push([pad + dy, pad + dx, pad + dy + h - 1, pad + dx + w - 1]);
              ind.push(k);
            });
          }
          const crops = tf.image.cropAndResize(padded, cropBoxes(boxes, h + 2 * pad, w + 2 * pad), tf.tensor1d(ind, 'int32'), [h, w], 'nearest');
          const weights = tf.tensor2d(
            chunk.map((t) => t.wt),
            [1, chunk.length],
          );
          const sum = tf.matMul(weights, tf.reshape(crops, [chunk.length, y.size]));
          return tf.add(acc, tf.reshape(sum, y.shape)) as tf.Tensor4D;
        });
        acc.dispose();
        acc = next;
      }
      return acc;
    }),
  );
}

export function motionBlur(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const g = geometryOf(x, ctx.regime);
  const [r0, s0] = constantFor(MOTION, ctx.regime, severity);
  const angles = Array.from({ length: g.b }, (_, i) => -45 + 90 * imageRng(ctx.seed, ctx.salt, i)());
  return tf.tidy(() => clip(motionBlurWithAngles(x, r0 * g.s, s0 * g.s, angles, g)));
}

// ---------------------------------------------------------------------------
// Zoom

/**
 * Mean of the image and its centre zooms by each factor (zoom factors are
 * relative, so nothing is scaled). Each zoom is one bilinear cropAndResize of
 * the central 1/z of every image of the batch; the zooms are summed in
 * groups by addN, holding at most ~8M values at a time.
 */
export function zoomBlur(x: tf.Tensor4D, severity: number): tf.Tensor4D {
  const [b, h, w] = x.shape;
  const last = ZOOM_LAST[severity - 1]!;
  const factors: number[] = [];
  for (let k = 0; 1 + k / 100 <= last + 1e-9; k++) factors.push(1 + k / 100);
  const group = Math.max(1, Math.floor(8e6 / x.size));
  return tf.tidy(() => {
    const ind = rangeInt(b);
    // The factor 1.00 is the image itself, so x counts twice, as in the reference.
    let acc: tf.Tensor4D = tf.mul(x, 2);
    const rest = factors.slice(1);
    for (let i = 0; i < rest.length; i += group) {
      const next = tf.tidy(() => {
        const parts: tf.Tensor4D[] = [acc];
        for (const z of rest.slice(i, i + group)) {
          const lo = 0.5 - 0.5 / z;
          const hi = 0.5 + 0.5 / z;
          const boxes = tf.tensor2d(
            Array.from({ length: b }, () => [lo, lo, hi, hi]),
            [b, 4],
          );
          parts.push(tf.image.cropAndResize(x, boxes, ind, [h, w], 'bilinear'));
        }
        return tf.addN(parts);
      });
      acc.dispose();
      acc = next;
    }
    return clip(tf.div(acc, factors.length + 1));
  });
}
