/**
 * Noise corruptions: gaussian_noise, shot_noise, impulse_noise, speckle_noise.
 * Per-pixel noise has no spatial extent, so nothing is scaled with image size.
 * Constants per regime (see regime.ts), from hendrycks/robustness,
 * ImageNet-C/create_c/: make_imagenet_64_c.py (imagenet64, the 64×64
 * generator) and make_cifar_c.py (cifar, the 32×32 CIFAR-10-C generator),
 * functions of the same names. The formulas are the same in both scripts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CorruptionContext } from './types';
import { imageRng, normalSource } from './ops';
import { constantFor, type PerRegime } from './regime';

// gaussian_noise c (σ of additive N(0, c²)): make_imagenet_64_c.py [0.04, 0.08, .12, .15, .18],
// make_cifar_c.py [0.04, 0.06, .08, .09, .10].
const GAUSSIAN: PerRegime<number> = { imagenet64: [0.04, 0.08, 0.12, 0.15, 0.18], cifar: [0.04, 0.06, 0.08, 0.09, 0.1] };
// shot_noise c (photons per unit intensity; fewer is noisier): make_imagenet_64_c.py [250, 100, 50, 30, 15],
// make_cifar_c.py [500, 250, 100, 75, 50].
const SHOT: PerRegime<number> = { imagenet64: [250, 100, 50, 30, 15], cifar: [500, 250, 100, 75, 50] };
// impulse_noise c (salt-and-pepper amount): make_imagenet_64_c.py [.01, .02, .05, .08, .14],
// make_cifar_c.py [.01, .02, .03, .05, .07].
const IMPULSE: PerRegime<number> = { imagenet64: [0.01, 0.02, 0.05, 0.08, 0.14], cifar: [0.01, 0.02, 0.03, 0.05, 0.07] };
// speckle_noise c (σ of multiplicative noise): make_imagenet_64_c.py [.15, .2, 0.25, 0.3, 0.35],
// make_cifar_c.py [.06, .1, .12, .16, .2].
const SPECKLE: PerRegime<number> = { imagenet64: [0.15, 0.2, 0.25, 0.3, 0.35], cifar: [0.06, 0.1, 0.12, 0.16, 0.2] };

/** Standard normal noise for the whole batch, image b from its own stream. */
function normals(x: tf.Tensor4D, ctx: CorruptionContext): Float32Array {
  const [b, h, w, c] = x.shape;
  const per = h * w * c;
  const out = new Float32Array(b * per);
  for (let i = 0; i < b; i++) {
    const next = normalSource(imageRng(ctx.seed, ctx.salt, i));
    for (let k = i * per; k < (i + 1) * per; k++) out[k] = next();
  }
  return out;
}

/** x + N(0, c²), clipped. */
export function gaussianNoise(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const c = constantFor(GAUSSIAN, ctx.regime, severity);
  const n = normals(x, ctx);
  for (let k = 0; k < n.length; k++) n[k]! *= c;
  return tf.tidy(() => tf.clipByValue(tf.add(x, tf.tensor4d(n, x.shape)), 0, 1));
}

/** x + x·N(0, c²), clipped. */
export function speckleNoise(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const c = constantFor(SPECKLE, ctx.regime, severity);
  const n = normals(x, ctx);
  for (let k = 0; k < n.length; k++) n[k] = 1 + c * n[k]!;
  return tf.tidy(() => tf.clipByValue(tf.mul(x, tf.tensor4d(n, x.shape)), 0, 1));
}

/**
 * Salt and pepper on each value independently (channels too, as
 * skimage.util.random_noise 's&p' does): with probability `amount` the value
 * becomes 0 or 1, half and half.
 */
export function impulseNoise(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const amount = constantFor(IMPULSE, ctx.regime, severity);
  const [b, h, w, c] = x.shape;
  const per = h * w * c;
  const keep = new Float32Array(b * per).fill(1);
  const salt = new Float32Array(b * per);
  for (let i = 0; i < b; i++) {
    const rng = imageRng(ctx.seed, ctx.salt, i);
    for (let k = i * per; k < (i + 1) * per; k++) {
      if (rng() < amount) {
        keep[k] = 0;
        salt[k] = rng() < 0.5 ? 1 : 0;
      }
    }
  }
  return tf.tidy(() => tf.add(tf.mul(x, tf.tensor4d(keep, x.shape)), tf.tensor4d(salt, x.shape)));
}

/**
 * Poisson(x·c)/c, clipped. The counts are drawn in JS from the pixel values
 * (one read of the tensor): exact Poisson draws have no tfjs op.
 */
export function shotNoise(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const c = constantFor(SHOT, ctx.regime, severity);
  const [b, h, w, ch] = x.shape;
  const per = h * w * ch;
  // A synthetic corruption of test data (demo, benchmark), computed on the CPU: not the adaptation step's read.
  // eslint-disable-next-line no-restricted-properties
  const data = x.dataSync();
  const out = new Float32Array(data.length);
  for (let i = 0; i < b; i++) {
    const rng = imageRng(ctx.seed, ctx.salt, i);
    for (let k = i * per; k < (i + 1) * per; k++) {
      const v = Math.min(1, poisson(Math.max(0, data[k]!) * c, rng) / c);
      out[k] = v;
    }
  }
  return tf.tensor4d(out, x.shape);
}

// ---------------------------------------------------------------------------
// Poisson sampling

const LOG_FACT_TABLE = (() => {
  const t = new Float64Array(64);
  for (let k = 1; k < 64; k++) t[k] = t[k - 1]! + Math.log(k);
  return t;
})();

/** ln k! (table below 64, Stirling's series above). */
function logFactorial(k: number): number {
  if (k < 64) return LOG_FACT_TABLE[k]!;
  const inv = 1 / k;
  const inv2 = inv * inv;
  return k * Math.log(k) - k + 0.5 * Math.log(2 * Math.PI * k) + inv * (1 / 12 - inv2 * (1 / 360 - inv2 / 1260));
}

/**
 * One Poisson(λ) draw. λ < 10: inversion by sequential search of the CDF.
 * λ ≥ 10: transformed rejection with squeeze, "PTRS" (W. Hörmann, "The
 * transformed rejection method for generating Poisson random variables",
 * Insurance: Mathematics and Economics 12, 1993), constants from that paper.
 */
export function poisson(lambda: number, rng: () => number): number {
  if (!(lambda > 0)) return 0;
  if (lambda < 10) {
    const u = rng();
    let k = 0;
    let p = Math.exp(-lambda);
    let cdf = p;
    while (u > cdf && k < 200) {
      k++;
      p *= lambda / k;
      cdf += p;
    }
    return k;
  }
  const slam = Math.sqrt(lambda);
  const loglam = Math.log(lambda);
  const b = 0.931 + 2.53 * slam;
  const a = -0.059 + 0.02483 * b;
  const invAlpha = 1.1239 + 1.1328 / (b - 3.4);
  const vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const u = rng() - 0.5;
    const v = rng();
    const us = 0.5 - Math.abs(u);
    const k = Math.floor(((2 * a) / us + b) * u + lambda + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (Math.log(v) + Math.log(invAlpha) - Math.log(a / (us * us) + b) <= -lambda + k * loglam - logFactorial(k)) return k;
  }
}
