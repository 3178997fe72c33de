/**
 * Shared pieces of the corruptions: the size rule, seeded draws, border
 * padding, separable and 2-D filters, and blurs run on a pooled copy.
 * Everything that touches pixels is a tfjs op, so it runs on any backend;
 * the JS side only builds kernels, index arrays and random fields.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mulberry32 } from '../random';
import { REFERENCE_SIDE, type CorruptionRegime } from './regime';

/** Geometry of a batch, with the spatial scale s. */
export interface Geometry {
  b: number;
  h: number;
  w: number;
  c: number;
  /** The regime's reference side R (64 or 32). */
  ref: number;
  /** max(1, min(H, W)/R): lengths of the R×R generator are multiplied by it. */
  s: number;
}

/**
 * The spatial scale of an H×W image for reference side `ref` (R):
 * max(1, min(H, W)/R). Images with a short side of R px or less use the R×R
 * constants as they are (scaling a 1-px disk or displacement below 1 px
 * would only round it away).
 */
export function scaleOf(h: number, w: number, ref: number): number {
  return Math.max(1, Math.min(h, w) / ref);
}

/** The batch's geometry under `regime` (its reference side and s). */
export function geometryOf(x: tf.Tensor4D, regime: CorruptionRegime): Geometry {
  const [b, h, w, c] = x.shape;
  const ref = REFERENCE_SIDE[regime];
  return { b, h, w, c, ref, s: scaleOf(h, w, ref) };
}

/**
 * The reference grid of an H×W image for reference side `ref` (R),
 * (H/s)×(W/s) rounded (divided further by `zoom`): the image itself up to an
 * R-px short side, else the same aspect with a short side of R. Random layers
 * (fog, frost, spatter, snow's flakes, the elastic field) are drawn on it
 * with the R×R constants unchanged and resized to H×W, so their structure
 * has the same size relative to the image at every resolution.
 */
export function referenceGrid(h: number, w: number, ref: number, zoom = 1): [number, number] {
  const s = scaleOf(h, w, ref) * zoom;
  return [Math.max(1, Math.round(h / s)), Math.max(1, Math.round(w / s))];
}

/**
 * Largest pooling factor a blur may run at: half a reference pixel (s/2), so
 * that the extra smoothing from pooling and resizing back stays well below
 * the detail an R×R image has. 1 (no pooling) below 4R px.
 */
export function maxPooling(g: Geometry): number {
  return Math.max(1, Math.floor(g.s / 2));
}

// ---------------------------------------------------------------------------
// Seeded draws

/** Mixes integers into one 32-bit seed (multiply-xorshift rounds). */
export function mixSeed(...parts: number[]): number {
  let h = 0x2545f491;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h, 0x85ebca77);
    h ^= h >>> 13;
  }
  return h >>> 0;
}

/**
 * The stream of image `index` of a batch for one corruption: it depends only
 * on (seed, corruption, index), so an image is corrupted the same way whatever
 * batch it is in, at the same index.
 */
export function imageRng(seed: number, salt: number, index: number): () => number {
  return mulberry32(mixSeed(seed, salt, index));
}

/** Standard normal draws (Box–Muller on the uniform stream, both values used). */
export function normalSource(rng: () => number): () => number {
  let spare = 0;
  let has = false;
  return () => {
    if (has) {
      has = false;
      return spare;
    }
    const u = 1 - rng(); // (0, 1]
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    has = true;
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Integer in [lo, hi) (numpy's randint convention). */
export function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo));
}

// ---------------------------------------------------------------------------
// Borders

/**
 * How an axis continues past its ends: 'edge' repeats the end value
 * (a a | a b c d | d d), 'reflect' mirrors about the end pixel without
 * repeating it (c b | a b c d | c b, OpenCV's default, reflect-101),
 * 'symmetric' mirrors about the end edge (b a | a b c d | d c, scipy's 'reflect').
 */
export type Border = 'edge' | 'reflect' | 'symmetric';

/** Index i of an axis of length n folded into range by `mode`. */
export function foldIndex(i: number, n: number, mode: Border): number {
  if (i >= 0 && i < n) return i;
  if (mode === 'edge' || n === 1) return i < 0 ? 0 : n - 1;
  if (mode === 'symmetric') {
    const p = 2 * n;
    const k = ((i % p) + p) % p;
    return k < n ? k : p - 1 - k;
  }
  const p = 2 * (n - 1);
  const k = ((i % p) + p) % p;
  return k < n ? k : p - k;
}

/** Same for a real coordinate (pixel centres at integers; 'symmetric' is taken as 'reflect'). */
export function foldCoord(x: number, n: number, mode: Border): number {
  if (x >= 0 && x <= n - 1) return x;
  if (mode === 'edge' || n === 1) return x < 0 ? 0 : n - 1;
  const p = 2 * (n - 1);
  const k = ((x % p) + p) % p;
  return k <= n - 1 ? k : p - k;
}

/**
 * Pads axes 1 (rows) and 2 (columns) of a [B, H, W, C] tensor, any width.
 * 'edge' tiles the end rows/columns and concatenates (cheap everywhere);
 * the mirrored modes gather rows and columns by index.
 */
export function pad2d(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number, mode: Border): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, , , c] = x.shape;
    let y = x;
    if (mode === 'edge') {
      if (top > 0 || bottom > 0) {
        const h = y.shape[1];
        const w = y.shape[2];
        const parts: tf.Tensor4D[] = [];
        if (top > 0) parts.push(tf.tile(tf.slice(y, [0, 0, 0, 0], [b, 1, w, c]), [1, top, 1, 1]));
        parts.push(y);
        if (bottom > 0) parts.push(tf.tile(tf.slice(y, [0, h - 1, 0, 0], [b, 1, w, c]), [1, bottom, 1, 1]));
        y = tf.concat(parts, 1);
      }
      if (left > 0 || right > 0) {
        const h = y.shape[1];
        const w = y.shape[2];
        const parts: tf.Tensor4D[] = [];
        if (left > 0) parts.push(tf.tile(tf.slice(y, [0, 0, 0, 0], [b, h, 1, c]), [1, 1, left, 1]));
        parts.push(y);
        if (right > 0) parts.push(tf.tile(tf.slice(y, [0, 0, w - 1, 0], [b, h, 1, c]), [1, 1, right, 1]));
        y = tf.concat(parts, 2);
      }
      return y;
    }
    const [, h, w] = x.shape;
    if (top > 0 || bottom > 0) {
      const idx = Int32Array.from({ length: h + top + bottom }, (_, i) => foldIndex(i - top, h, mode));
      y = tf.gather(y, tf.tensor1d(idx, 'int32'), 1);
    }
    if (left > 0 || right > 0) {
      const idx = Int32Array.from({ length: w + left + right }, (_, i) => foldIndex(i - left, w, mode));
      y = tf.gather(y, tf.tensor1d(idx, 'int32'), 2);
    }
    return y;
  });
}

// ---------------------------------------------------------------------------
// Kernels and filters

/**
 * Sampled Gaussian of radius floor(truncate·σ + 0.5), normalised (scipy's
 * gaussian_filter convention, truncate 4 as skimage.filters.gaussian uses).
 */
export function gaussianKernel(sigma: number, truncate = 4): Float32Array {
  const r = Math.floor(truncate * sigma + 0.5);
  if (sigma <= 0 || r < 1) return Float32Array.of(1);
  const k = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i]! /= sum;
  return k;
}

/** Depthwise filter [kh, kw, C, 1] holding the same 2-D kernel for every channel. */
function depthwiseFilter(kernel: Float32Array, kh: number, kw: number, c: number): tf.Tensor4D {
  const f = new Float32Array(kh * kw * c);
  for (let i = 0; i < kh * kw; i++) for (let ch = 0; ch < c; ch++) f[i * c + ch] = kernel[i]!;
  return tf.tensor4d(f, [kh, kw, c, 1]);
}

/** Correlates every channel with a separable kernel (odd lengths, centred), borders by `mode`. */
export function separableFilter(x: tf.Tensor4D, rows: Float32Array, cols: Float32Array, mode: Border): tf.Tensor4D {
  return tf.tidy(() => {
    const c = x.shape[3];
    const rh = (rows.length - 1) / 2;
    const rw = (cols.length - 1) / 2;
    let y = pad2d(x, rh, rh, rw, rw, mode);
    if (rows.length > 1) y = tf.depthwiseConv2d(y, depthwiseFilter(rows, rows.length, 1, c), 1, 'valid');
    if (cols.length > 1) y = tf.depthwiseConv2d(y, depthwiseFilter(cols, 1, cols.length, c), 1, 'valid');
    return y;
  });
}

/** Correlates every channel with a 2-D kernel [kh, kw] (odd sizes, centred), borders by `mode`. */
export function filter2d(x: tf.Tensor4D, kernel: Float32Array, kh: number, kw: number, mode: Border): tf.Tensor4D {
  if (kh === 1 && kw === 1) return tf.mul(x, kernel[0]!);
  return tf.tidy(() => {
    const rh = (kh - 1) / 2;
    const rw = (kw - 1) / 2;
    const y = pad2d(x, rh, rh, rw, rw, mode);
    return tf.depthwiseConv2d(y, depthwiseFilter(kernel, kh, kw, x.shape[3]), 1, 'valid');
  });
}

/** Gaussian blur with σ in pixels (skimage.filters.gaussian with truncate 4). */
export function gaussianBlur(x: tf.Tensor4D, sigma: number, mode: Border): tf.Tensor4D {
  const k = gaussianKernel(sigma);
  if (k.length === 1) return tf.clone(x);
  return separableFilter(x, k, k, mode);
}

/**
 * Runs `blur` on an f×f average-pooled copy of x and resizes the result back
 * to x's size (bilinear, pixel centres aligned). For blurs far wider than f
 * the result differs little from blurring at full size, at 1/f² of the cost.
 * `blur` must keep the shape of its input. Trailing rows/columns that do not
 * fill a pooling cell are left out of the pooled copy and interpolated from
 * their neighbours.
 */
export function atPooled(x: tf.Tensor4D, f: number, blur: (y: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D {
  const [b, h, w] = x.shape;
  if (f <= 1 || h < 2 * f || w < 2 * f) return blur(x);
  return tf.tidy(() => {
    const hp = Math.floor(h / f);
    const wp = Math.floor(w / f);
    const small = tf.avgPool(x, [f, f], [f, f], 'valid');
    // One pooled cell of edge padding, so every full-size pixel interpolates inside.
    const padded = pad2d(blur(small), 1, 1, 1, 1, 'edge');
    // Full-size pixel i sits at pooled coordinate (i - (f-1)/2) / f, +1 for the padding.
    const at = (i: number) => 1 + (i - (f - 1) / 2) / f;
    const box = [at(0) / (hp + 1), at(0) / (wp + 1), at(h - 1) / (hp + 1), at(w - 1) / (wp + 1)];
    const boxes = tf.tensor2d(
      Array.from({ length: b }, () => box),
      [b, 4],
    );
    const ind = tf.tensor1d(
      Int32Array.from({ length: b }, (_, i) => i),
      'int32',
    );
    return tf.image.cropAndResize(padded, boxes, ind, [h, w], 'bilinear');
  });
}

/**
 * Variance a pooled blur adds on its own (the f×f box, then the bilinear
 * resize back), in full-size pixels²; callers subtract it from their kernel.
 */
export function pooledVariance(f: number): number {
  return f <= 1 ? 0 : (f * f - 1) / 12 + (f * f) / 6;
}

// ---------------------------------------------------------------------------
// Resampling

/** The whole batch as rows of pixels [B·H·W, C]. */
export function pixelRows(x: tf.Tensor4D): tf.Tensor2D {
  const [b, h, w, c] = x.shape;
  return tf.reshape(x, [b * h * w, c]);
}

/**
 * Bilinear sampling of every image at its own real coordinates: ys[k], xs[k]
 * (row, column of output pixel k of the batch, pixel centres at integers,
 * already folded into [0, H-1] × [0, W-1]). Four gathers and a weighted sum.
 */
export function sampleBilinear(x: tf.Tensor4D, ys: Float32Array, xs: Float32Array): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const n = b * h * w;
  const idx: Int32Array[] = [new Int32Array(n), new Int32Array(n), new Int32Array(n), new Int32Array(n)];
  const wt: Float32Array[] = [new Float32Array(n * c), new Float32Array(n * c), new Float32Array(n * c), new Float32Array(n * c)];
  for (let k = 0; k < n; k++) {
    const base = Math.floor(k / (h * w)) * h * w;
    const y = ys[k]!;
    const xx = xs[k]!;
    const y0 = Math.min(Math.floor(y), h - 1);
    const x0 = Math.min(Math.floor(xx), w - 1);
    const y1 = Math.min(y0 + 1, h - 1);
    const x1 = Math.min(x0 + 1, w - 1);
    const fy = y - y0;
    const fx = xx - x0;
    idx[0]![k] = base + y0 * w + x0;
    idx[1]![k] = base + y0 * w + x1;
    idx[2]![k] = base + y1 * w + x0;
    idx[3]![k] = base + y1 * w + x1;
    const ws = [(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx];
    for (let q = 0; q < 4; q++) for (let ch = 0; ch < c; ch++) wt[q]![k * c + ch] = ws[q]!;
  }
  return tf.tidy(() => {
    const rows = pixelRows(x);
    let acc: tf.Tensor | null = null;
    for (let q = 0; q < 4; q++) {
      const term = tf.mul(tf.gather(rows, tf.tensor1d(idx[q]!, 'int32')), tf.tensor2d(wt[q]!, [n, c]));
      acc = acc === null ? term : tf.add(acc, term);
    }
    return tf.reshape(acc!, [b, h, w, c]);
  });
}

/** Pixel k of the batch takes pixel src[k] (flat index into [B·H·W]). */
export function gatherPixels(x: tf.Tensor4D, src: Int32Array): tf.Tensor4D {
  return tf.tidy(() => tf.reshape(tf.gather(pixelRows(x), tf.tensor1d(src, 'int32')), x.shape));
}

/** Boxes of one crop per image, in cropAndResize's normalised coordinates of an image of size [hi, wi]. */
export function cropBoxes(boxesPx: number[][], hi: number, wi: number): tf.Tensor2D {
  const sy = hi > 1 ? hi - 1 : 1;
  const sx = wi > 1 ? wi - 1 : 1;
  return tf.tensor2d(
    boxesPx.map(([y1, x1, y2, x2]) => [y1! / sy, x1! / sx, y2! / sy, x2! / sx]),
    [boxesPx.length, 4],
  );
}

/** [0, 1, ..., n-1] as an int32 tensor (cropAndResize's image index per box). */
export function rangeInt(n: number): tf.Tensor1D {
  return tf.tensor1d(
    Int32Array.from({ length: n }, (_, i) => i),
    'int32',
  );
}

/** Resizes a stack of single-channel fields [B, gh, gw] (JS) to a tensor [B, H, W, 1]. */
export function fieldsToImage(fields: Float32Array, b: number, gh: number, gw: number, h: number, w: number): tf.Tensor4D {
  return tf.tidy(() => {
    const t = tf.tensor4d(fields, [b, gh, gw, 1]);
    if (gh === h && gw === w) return t;
    return tf.image.resizeBilinear(t, [h, w], false, true);
  });
}

// ---------------------------------------------------------------------------
// Broadcasting that stays on fast paths
//
// Some backends (tfjs-cpu notably) broadcast a [B, H, W, 1] or [B, 1, 1, C]
// operand element by element, ten times slower than a same-shape op or one
// against a [C] vector. These helpers give operands those cheap shapes.

/** A per-pixel value [B, H, W, 1] repeated over c channels. */
export function toChannels(v: tf.Tensor, c: number): tf.Tensor4D {
  return (c === 1 ? v : tf.concat(new Array<tf.Tensor>(c).fill(v), 3)) as tf.Tensor4D;
}

/**
 * Per-image values [B, 1, 1, k] (k = 1 or C) in a shape that combines cheaply
 * with a [B, H, W, C] tensor: [k] when B = 1, else expanded to [B, H, W, k]
 * by one matrix product.
 */
export function perImage(v: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const k = v.shape[v.rank - 1]!;
  if (v.shape[0] === 1) return tf.reshape(v, [k]);
  const [b, h, w] = shape as [number, number, number];
  return tf.tidy(() => tf.reshape(tf.matMul(tf.ones([h * w, 1]), tf.reshape(v, [b, 1, k])), [b, h, w, k]));
}

/** Mean over rows and columns, per image and channel: [B, 1, 1, C], as one matrix product. */
export function spatialMean(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  return tf.tidy(() => tf.reshape(tf.matMul(tf.fill([1, h * w], 1 / (h * w)), tf.reshape(x, [b, h * w, c])), [b, 1, 1, c]));
}

/** Every image turned by 180° (one nearest-neighbour cropAndResize with a reversed box). */
export function rotate180(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w] = x.shape;
  return tf.tidy(() =>
    tf.image.cropAndResize(
      x,
      tf.tensor2d(
        Array.from({ length: b }, () => [1, 1, 0, 0]),
        [b, 4],
      ),
      rangeInt(b),
      [h, w],
      'nearest',
    ),
  );
}

// ---------------------------------------------------------------------------
// Colour

/** ITU-R BT.601 luma weights (what cv2's RGB2GRAY and JPEG's Y use). */
export const LUMA = [0.299, 0.587, 0.114] as const;

/** Gray version [B, H, W, 1] of an RGB or gray batch. */
export function toGray(x: tf.Tensor4D): tf.Tensor4D {
  if (x.shape[3] === 1) return tf.clone(x);
  const [b, h, w] = x.shape;
  return tf.tidy(() => tf.reshape(tf.matMul(tf.reshape(x, [b * h * w, 3]), tf.tensor2d([...LUMA], [3, 1])), [b, h, w, 1]));
}

/** A colour given in 0..255 RGB, as channel values in [0, 1] for C channels (its luma when C = 1). */
export function colourFor(rgb255: readonly [number, number, number], c: number): number[] {
  const v = rgb255.map((u) => u / 255);
  if (c === 1) return [LUMA[0] * v[0]! + LUMA[1] * v[1]! + LUMA[2] * v[2]!];
  return v;
}
