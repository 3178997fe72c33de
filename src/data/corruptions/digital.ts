/**
 * Digital and geometric corruptions: brightness, contrast, saturate,
 * elastic_transform, pixelate. Constants per regime (see regime.ts), from
 * hendrycks/robustness ImageNet-C/create_c/: make_imagenet_64_c.py
 * (imagenet64, 64×64 generator) and make_cifar_c.py (cifar, 32×32
 * generator), functions of the same names; the two scripts' formulas are
 * the same. Lengths there are in pixels of the R×R image (R = 64 or 32) and
 * are multiplied by s = max(1, min(H, W)/R) here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CorruptionContext } from './types';
import { filterField } from './fields';
import { foldCoord, gaussianKernel, geometryOf, imageRng, perImage, referenceGrid, sampleBilinear, spatialMean, toChannels } from './ops';
import { constantFor, type PerRegime } from './regime';

// brightness c (added to the HSV value): make_imagenet_64_c.py [.1, .2, .3, .4, .5],
// make_cifar_c.py [.05, .1, .15, .2, .3].
const BRIGHTNESS: PerRegime<number> = { imagenet64: [0.1, 0.2, 0.3, 0.4, 0.5], cifar: [0.05, 0.1, 0.15, 0.2, 0.3] };
// contrast c (factor on the distance to the channel mean): make_imagenet_64_c.py [.4, .3, .2, .1, 0.05],
// make_cifar_c.py [.75, .5, .4, .3, 0.15].
const CONTRAST: PerRegime<number> = { imagenet64: [0.4, 0.3, 0.2, 0.1, 0.05], cifar: [0.75, 0.5, 0.4, 0.3, 0.15] };
// saturate c (S ← clip(S·a + b)): make_imagenet_64_c.py [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)],
// make_cifar_c.py [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)].
const SATURATE: PerRegime<readonly [number, number]> = {
  imagenet64: [
    [0.3, 0],
    [0.1, 0],
    [2, 0],
    [5, 0.1],
    [30, 0.2],
  ],
  cifar: [
    [0.3, 0],
    [0.1, 0],
    [1.5, 0],
    [2, 0.1],
    [2.5, 0.2],
  ],
};
// elastic_transform c = (alpha, sigma of the displacement field, affine jitter), all IMSIZE·fraction;
// kept here as the fractions of IMSIZE (= the reference side R):
// make_imagenet_64_c.py, IMSIZE = 64: (0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02);
// make_cifar_c.py, IMSIZE = 32: (0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03).
const ELASTIC: PerRegime<readonly [number, number, number]> = {
  imagenet64: [
    [0, 0, 0.08],
    [0.05, 0.3, 0.06],
    [0.1, 0.08, 0.06],
    [0.1, 0.03, 0.03],
    [0.16, 0.03, 0.02],
  ],
  cifar: [
    [0, 0, 0.08],
    [0.05, 0.2, 0.07],
    [0.08, 0.06, 0.06],
    [0.1, 0.04, 0.05],
    [0.1, 0.03, 0.03],
  ],
};
// pixelate c (PIL BOX down to int(R·c), then back up): make_imagenet_64_c.py [0.9, 0.8, 0.7, 0.6, 0.5],
// make_cifar_c.py [0.95, 0.9, 0.85, 0.75, 0.65].
const PIXELATE: PerRegime<number> = { imagenet64: [0.9, 0.8, 0.7, 0.6, 0.5], cifar: [0.95, 0.9, 0.85, 0.75, 0.65] };

const clip = (t: tf.Tensor) => tf.clipByValue(t, 0, 1) as tf.Tensor4D;

/**
 * HSV value + c with hue and saturation kept: every channel scales by
 * V'/V with V the channel maximum, V' = min(V + c, 1); black becomes gray V'.
 * On gray images V is the gray value, so this is min(x + c, 1).
 */
export function brightness(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const c = constantFor(BRIGHTNESS, ctx.regime, severity);
  const ch = x.shape[3];
  return tf.tidy(() => {
    const v = tf.max(x, 3, true);
    const v2 = tf.minimum(tf.add(v, c), 1);
    const black = tf.cast(tf.lessEqual(v, 0), 'float32');
    const ratio = tf.div(v2, tf.maximum(v, 1e-12));
    return clip(tf.add(tf.mul(x, toChannels(ratio, ch)), toChannels(tf.mul(black, v2), ch)));
  });
}

/** (x - mean)·c + mean, mean per image and channel. */
export function contrast(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const c = constantFor(CONTRAST, ctx.regime, severity);
  return tf.tidy(() => clip(tf.add(tf.mul(x, c), perImage(tf.mul(spatialMean(x), 1 - c), x.shape))));
}

/**
 * RGB: HSV saturation S ← clip(S·a + b, 0, 1), hue and value kept. With
 * V = max, S = (V - min)/V, each channel is V - (V - x)·S'/S. Gray pixels
 * (S = 0) have hue 0 in the reference's HSV, so an offset b > 0 tints them
 * red: (V, V(1 - S'), V(1 - S')).
 *
 * Gray images have no saturation, so the same rule is applied to the gray
 * value's distance from the image mean μ, normalised to [0, 1] by
 * D = max(μ, 1 - μ): S = |x - μ|/D, x' = μ ± clip(S·a + b, 0, 1)·D (the sign
 * of x - μ kept). Severities 1–2 pull the image towards its mean, 3–5 push it
 * away (and b adds a fixed push), as saturation does to colours.
 */
export function saturate(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const [a, b] = constantFor(SATURATE, ctx.regime, severity);
  return tf.tidy(() => {
    if (x.shape[3] === 1) {
      const mu = tf.mean(x, [1, 2, 3], true);
      const d = tf.maximum(tf.maximum(mu, tf.sub(1, mu)), 1e-12);
      const muX = perImage(mu, x.shape);
      const dX = perImage(d, x.shape);
      const dev = tf.sub(x, muX);
      const s2 = tf.clipByValue(tf.add(tf.mul(tf.div(tf.abs(dev), dX), a), b), 0, 1);
      return clip(tf.add(tf.mul(tf.mul(tf.sign(dev), s2), dX), muX));
    }
    // out = (1-g)·(V - (V - x)·r) + g·V·(1 - S'·[0, 1, 1]), r = S'/S, g = 1 on gray pixels,
    // arranged as x·A + B - C·[0, 1, 1] with per-pixel A, B, C.
    const v = tf.max(x, 3, true);
    const mn = tf.min(x, 3, true);
    const s = tf.div(tf.sub(v, mn), tf.maximum(v, 1e-12));
    const s2 = tf.clipByValue(tf.add(tf.mul(s, a), b), 0, 1);
    const g = tf.cast(tf.lessEqual(s, 0), 'float32');
    const notG = tf.sub(1, g);
    const r = tf.div(s2, tf.maximum(s, 1e-12));
    const A = tf.mul(notG, r);
    const B = tf.add(tf.mul(tf.mul(notG, v), tf.sub(1, r)), tf.mul(g, v));
    const C = tf.mul(tf.mul(g, v), s2);
    const out = tf.sub(tf.add(tf.mul(x, toChannels(A, 3)), toChannels(B, 3)), tf.mul(toChannels(C, 3), tf.tensor1d([0, 1, 1])));
    return clip(out);
  });
}

// ---------------------------------------------------------------------------
// Elastic

/** Affine map (a0 x + a1 y + a2, b0 x + b1 y + b2) taking the points `from` to `to` (3 points each). */
function affineFromPoints(from: number[][], to: number[][]): [number[], number[]] {
  const det3 = (m: number[][]) =>
    m[0]![0]! * (m[1]![1]! * m[2]![2]! - m[1]![2]! * m[2]![1]!) -
    m[0]![1]! * (m[1]![0]! * m[2]![2]! - m[1]![2]! * m[2]![0]!) +
    m[0]![2]! * (m[1]![0]! * m[2]![1]! - m[1]![1]! * m[2]![0]!);
  const p = from.map(([x, y]) => [x!, y!, 1]);
  const d = det3(p);
  const solve = (rhs: number[]) => [0, 1, 2].map((col) => det3(p.map((row, i) => row.map((v, j) => (j === col ? rhs[i]! : v)))) / d);
  return [solve(to.map((q) => q[0]!)), solve(to.map((q) => q[1]!))];
}

/**
 * A random affine warp (three points around the centre jittered by up to
 * jitter·R·s pixels), then displacement by a smooth random field: uniform
 * [-1, 1] noise under a Gaussian of σ = sigma·R (truncate 3, mirrored
 * border), times alpha·R, drawn on the reference grid (so it has the same
 * shape relative to the image at every size), resized to the image and
 * multiplied by s. One bilinear sampling of the composed map, borders mirrored
 * (the reference resamples twice, affine then field).
 */
export function elasticTransform(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const g = geometryOf(x, ctx.regime);
  const [alpha, sigma, jitter] = constantFor(ELASTIC, ctx.regime, severity);
  const { b, h, w } = g;
  const m = Math.min(h, w);
  const jit = jitter * g.ref * g.s;
  const [gh, gw] = referenceGrid(h, w, g.ref);
  const ys = new Float32Array(b * h * w);
  const xs = new Float32Array(b * h * w);
  const kernel = gaussianKernel(sigma * g.ref, 3);
  for (let i = 0; i < b; i++) {
    const rng = imageRng(ctx.seed, ctx.salt, i);
    const cx = Math.floor(w / 2);
    const cy = Math.floor(h / 2);
    const sq = Math.floor(m / 3);
    const pts = [
      [cx + sq, cy + sq],
      [cx + sq, cy - sq],
      [cx - sq, cy - sq],
    ];
    const moved = pts.map(([px, py]) => [px! + (2 * rng() - 1) * jit, py! + (2 * rng() - 1) * jit]);
    // Output pixel q samples the source at the inverse map: the affine taking the moved points back.
    const [ax, ay] = affineFromPoints(moved, pts);
    let dx: Float64Array | null = null;
    let dy: Float64Array | null = null;
    if (alpha > 0) {
      const field = () => {
        const u = Float64Array.from({ length: gh * gw }, () => 2 * rng() - 1);
        const f = filterField(u, gh, gw, kernel, 'symmetric');
        for (let k = 0; k < f.length; k++) f[k]! *= alpha * g.ref;
        return smoothField(resizeField(f, gh, gw, h, w, g.s), h, w, 2 * Math.floor(g.s / 2) + 1);
      };
      dx = field();
      dy = field();
    }
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const k = r * w + c;
        const qx = c + (dx ? dx[k]! : 0);
        const qy = r + (dy ? dy[k]! : 0);
        const sx = ax[0]! * qx + ax[1]! * qy + ax[2]!;
        const sy = ay[0]! * qx + ay[1]! * qy + ay[2]!;
        xs[i * h * w + k] = foldCoord(sx, w, 'reflect');
        ys[i * h * w + k] = foldCoord(sy, h, 'reflect');
      }
    }
  }
  return tf.tidy(() => clip(sampleBilinear(x, ys, xs)));
}

/** Bilinear resize of a field (pixel centres aligned, edges clamped), values times `gain`. */
function resizeField(f: Float64Array, gh: number, gw: number, h: number, w: number, gain: number): Float64Array {
  const out = new Float64Array(h * w);
  for (let r = 0; r < h; r++) {
    const y = Math.min(gh - 1, Math.max(0, ((r + 0.5) * gh) / h - 0.5));
    const y0 = Math.floor(y);
    const y1 = Math.min(y0 + 1, gh - 1);
    const fy = y - y0;
    for (let c = 0; c < w; c++) {
      const x = Math.min(gw - 1, Math.max(0, ((c + 0.5) * gw) / w - 0.5));
      const x0 = Math.floor(x);
      const x1 = Math.min(x0 + 1, gw - 1);
      const fx = x - x0;
      const top = f[y0 * gw + x0]! * (1 - fx) + f[y0 * gw + x1]! * fx;
      const bot = f[y1 * gw + x0]! * (1 - fx) + f[y1 * gw + x1]! * fx;
      out[r * w + c] = gain * (top * (1 - fy) + bot * fy);
    }
  }
  return out;
}

/**
 * Running mean over k×k (k odd, edges repeated): on a field resized up by s,
 * a mean over s pixels turns the bilinear field's kinks into smooth bends
 * (bilinear then box is the quadratic B-spline).
 */
function smoothField(f: Float64Array, h: number, w: number, k: number): Float64Array {
  if (k <= 1) return f;
  const r = (k - 1) / 2;
  const pass = (src: Float64Array, n: number, lines: number, at: (line: number, i: number) => number): Float64Array => {
    const out = new Float64Array(src.length);
    for (let line = 0; line < lines; line++) {
      let sum = 0;
      for (let i = -r; i <= r; i++) sum += src[at(line, Math.max(0, Math.min(n - 1, i)))]!;
      for (let i = 0; i < n; i++) {
        out[at(line, i)] = sum / k;
        sum += src[at(line, Math.min(n - 1, i + r + 1))]! - src[at(line, Math.max(0, i - r))]!;
      }
    }
    return out;
  };
  const rows = pass(f, w, h, (line, i) => line * w + i);
  return pass(rows, h, w, (line, i) => i * w + line);
}

// ---------------------------------------------------------------------------
// Pixelate

/**
 * PIL's BOX resampling from n to t samples as a [t, n] matrix: output i
 * averages the inputs whose centres fall in [i·n/t, (i+1)·n/t).
 */
export function boxMatrix(t: number, n: number): Float32Array {
  const m = new Float32Array(t * n);
  for (let i = 0; i < t; i++) {
    const lo = (i * n) / t;
    const hi = ((i + 1) * n) / t;
    let count = 0;
    for (let j = 0; j < n; j++) if (j + 0.5 >= lo && j + 0.5 < hi) count++;
    for (let j = 0; j < n; j++) if (j + 0.5 >= lo && j + 0.5 < hi) m[i * n + j] = 1 / count;
  }
  return m;
}

/**
 * Box-downsample to floor(c·side/s) per side (the reference's int(R·c) at
 * R px, floor(c·side) below, blocks of s/c pixels above), then back up by
 * nearest neighbour (PIL BOX upscaling).
 * Two matrix products and one resize, on any backend.
 */
export function pixelate(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const c = constantFor(PIXELATE, ctx.regime, severity);
  const [b, h, w, ch] = x.shape;
  const { s } = geometryOf(x, ctx.regime);
  const th = Math.max(1, Math.floor((c * h) / s));
  const tw = Math.max(1, Math.floor((c * w) / s));
  return tf.tidy(() => {
    const rows = tf.matMul(tf.tensor2d(boxMatrix(th, h), [th, h]), tf.reshape(x, [b, h, w * ch]));
    const cols = tf.matMul(tf.tensor2d(boxMatrix(tw, w), [tw, w]), tf.reshape(rows, [b * th, w, ch]));
    const small = tf.reshape(cols, [b, th, tw, ch]) as tf.Tensor4D;
    return clip(tf.image.resizeNearestNeighbor(small, [h, w], false, true));
  });
}
