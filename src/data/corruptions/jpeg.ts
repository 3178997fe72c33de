/**
 * jpeg_compression: a baseline JPEG encode/decode round trip, without the
 * (lossless) entropy coding. Runs on the CPU in JS: it reads the tensor once,
 * codes every image, and builds a new tensor, whatever the backend.
 *
 * What it does, as libjpeg does it for PIL's Image.save(format='JPEG',
 * quality=q) followed by a decode with libjpeg's defaults:
 *  - samples rounded to 8 bits;
 *  - 3 channels: RGB → YCbCr (JFIF, ITU-R BT.601 full range), chroma
 *    subsampled 2×2 (4:2:0) by averaging; 1 channel: one gray component;
 *  - planes padded to whole MCUs by repeating the last row/column
 *    (16×16 pixels for 4:2:0, 8×8 for gray);
 *  - per 8×8 block: level shift by -128, 2-D DCT-II (orthonormal, which is
 *    JPEG's normalisation), divide by the quantisation table and round half
 *    away from zero, multiply back, inverse DCT, +128, round, clamp to 0..255;
 *  - tables: ITU-T T.81 Annex K (K.1 luminance, K.2 chrominance), scaled
 *    by the IJG quality rule: f = q < 50 ? floor(5000/q) : 200 - 2q,
 *    entry = clamp(floor((base·f + 50)/100), 1, 255) (baseline);
 *  - chroma upsampled with libjpeg's "fancy" triangle filter (3/4 nearer
 *    sample, 1/4 the next, in each direction), YCbCr → RGB, round, clamp.
 * Differences from libjpeg: float DCT instead of its integer "islow" one and
 * plain rounding in the colour conversions and the chroma averaging; values
 * can differ by a level here and there.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CorruptionContext } from './types';
import { constantFor, type PerRegime } from './regime';

// jpeg_compression c (PIL quality): hendrycks/robustness ImageNet-C/create_c/make_imagenet_64_c.py
// [65, 58, 50, 40, 25] (imagenet64), make_cifar_c.py [80, 65, 58, 50, 40] (cifar).
const QUALITY: PerRegime<number> = { imagenet64: [65, 58, 50, 40, 25], cifar: [80, 65, 58, 50, 40] };

// ITU-T T.81 Annex K, Table K.1 (luminance) and Table K.2 (chrominance), row-major.
const LUMA_BASE = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103,
  77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_BASE = [
  17,
  18,
  24,
  47,
  99,
  99,
  99,
  99,
  18,
  21,
  26,
  66,
  99,
  99,
  99,
  99,
  24,
  26,
  56,
  99,
  99,
  99,
  99,
  99,
  47,
  66,
  99,
  99,
  99,
  99,
  99,
  99,
  ...new Array<number>(32).fill(99),
];

/** The IJG quality scaling of a base table (libjpeg's jpeg_set_quality with force_baseline). */
export function quantTable(base: readonly number[], quality: number): Int32Array {
  const q = Math.max(1, Math.min(100, Math.round(quality)));
  const f = q < 50 ? Math.floor(5000 / q) : 200 - 2 * q;
  return Int32Array.from(base, (v) => Math.max(1, Math.min(255, Math.floor((v * f + 50) / 100))));
}

export const lumaTable = (quality: number) => quantTable(LUMA_BASE, quality);
export const chromaTable = (quality: number) => quantTable(CHROMA_BASE, quality);

/** Orthonormal DCT-II basis: COS[u·8 + x] = α(u)·cos((2x+1)uπ/16). */
const COS = (() => {
  const m = new Float64Array(64);
  for (let u = 0; u < 8; u++) {
    const a = u === 0 ? Math.sqrt(1 / 8) : Math.sqrt(2 / 8);
    for (let x = 0; x < 8; x++) m[u * 8 + x] = a * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  }
  return m;
})();

const roundHalfAway = (v: number) => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));
const clamp255 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * Codes one 8-bit plane (values 0..255, h×w, both multiples of 8) in place:
 * DCT, quantise, dequantise, inverse DCT per 8×8 block.
 */
function codePlane(plane: Float64Array, h: number, w: number, table: Int32Array): void {
  const blk = new Float64Array(64);
  const tmp = new Float64Array(64);
  for (let by = 0; by < h; by += 8) {
    for (let bx = 0; bx < w; bx += 8) {
      for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) blk[y * 8 + x] = plane[(by + y) * w + bx + x]! - 128;
      // Forward: tmp = C·blk (columns), blk = tmp·Cᵀ (rows).
      for (let u = 0; u < 8; u++) {
        for (let x = 0; x < 8; x++) {
          let s = 0;
          for (let y = 0; y < 8; y++) s += COS[u * 8 + y]! * blk[y * 8 + x]!;
          tmp[u * 8 + x] = s;
        }
      }
      for (let u = 0; u < 8; u++) {
        for (let v = 0; v < 8; v++) {
          let s = 0;
          for (let x = 0; x < 8; x++) s += tmp[u * 8 + x]! * COS[v * 8 + x]!;
          const q = table[u * 8 + v]!;
          blk[u * 8 + v] = roundHalfAway(s / q) * q;
        }
      }
      // Inverse: tmp = Cᵀ·blk, out = tmp·C.
      for (let y = 0; y < 8; y++) {
        for (let v = 0; v < 8; v++) {
          let s = 0;
          for (let u = 0; u < 8; u++) s += COS[u * 8 + y]! * blk[u * 8 + v]!;
          tmp[y * 8 + v] = s;
        }
      }
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          let s = 0;
          for (let v = 0; v < 8; v++) s += tmp[y * 8 + v]! * COS[v * 8 + x]!;
          plane[(by + y) * w + bx + x] = clamp255(Math.round(s + 128));
        }
      }
    }
  }
}

/** Copies an h×w plane into a ph×pw one, repeating the last row and column. */
function padPlane(src: Float64Array, h: number, w: number, ph: number, pw: number): Float64Array {
  if (ph === h && pw === w) return src;
  const out = new Float64Array(ph * pw);
  for (let y = 0; y < ph; y++) {
    const sy = Math.min(y, h - 1);
    for (let x = 0; x < pw; x++) out[y * pw + x] = src[sy * w + Math.min(x, w - 1)]!;
  }
  return out;
}

/** 2×2 mean of a plane with even sides, rounded. */
function downsample2(src: Float64Array, h: number, w: number): Float64Array {
  const out = new Float64Array((h / 2) * (w / 2));
  for (let y = 0; y < h / 2; y++) {
    for (let x = 0; x < w / 2; x++) {
      const k = 2 * y * w + 2 * x;
      out[y * (w / 2) + x] = Math.round((src[k]! + src[k + 1]! + src[k + w]! + src[k + w + 1]!) / 4);
    }
  }
  return out;
}

/** libjpeg's h2v2 "fancy" upsampling: output (2y + a, 2x + b) mixes 3/4 of the nearer sample with 1/4 of the next, per axis. */
function upsample2(src: Float64Array, h: number, w: number): Float64Array {
  const oh = 2 * h;
  const ow = 2 * w;
  const out = new Float64Array(oh * ow);
  for (let oy = 0; oy < oh; oy++) {
    const y = oy >> 1;
    const y2 = Math.max(0, Math.min(h - 1, oy & 1 ? y + 1 : y - 1));
    for (let ox = 0; ox < ow; ox++) {
      const x = ox >> 1;
      const x2 = Math.max(0, Math.min(w - 1, ox & 1 ? x + 1 : x - 1));
      const near = 3 * src[y * w + x]! + src[y2 * w + x]!;
      const far = 3 * src[y * w + x2]! + src[y2 * w + x2]!;
      out[oy * ow + ox] = Math.round((3 * near + far) / 16);
    }
  }
  return out;
}

/** JPEG round trip of one image (h×w×c, c = 1 or 3, interleaved 0..1 floats) into `out`. */
function codeImage(src: Float32Array | Int32Array | Uint8Array, out: Float32Array, off: number, h: number, w: number, c: number, quality: number): void {
  const luma = lumaTable(quality);
  const to8 = (v: number) => clamp255(Math.round(v * 255));
  if (c === 1) {
    const ph = Math.ceil(h / 8) * 8;
    const pw = Math.ceil(w / 8) * 8;
    const plane = new Float64Array(h * w);
    for (let k = 0; k < h * w; k++) plane[k] = to8(src[off + k]!);
    const padded = padPlane(plane, h, w, ph, pw);
    codePlane(padded, ph, pw, luma);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[off + y * w + x] = padded[y * pw + x]! / 255;
    return;
  }
  const chroma = chromaTable(quality);
  const ph = Math.ceil(h / 16) * 16;
  const pw = Math.ceil(w / 16) * 16;
  const yy = new Float64Array(h * w);
  const cb = new Float64Array(h * w);
  const cr = new Float64Array(h * w);
  for (let k = 0; k < h * w; k++) {
    const r = to8(src[off + 3 * k]!);
    const g = to8(src[off + 3 * k + 1]!);
    const b = to8(src[off + 3 * k + 2]!);
    yy[k] = clamp255(Math.round(0.299 * r + 0.587 * g + 0.114 * b));
    cb[k] = clamp255(Math.round(-0.168736 * r - 0.331264 * g + 0.5 * b + 128));
    cr[k] = clamp255(Math.round(0.5 * r - 0.418688 * g - 0.081312 * b + 128));
  }
  const yp = padPlane(yy, h, w, ph, pw);
  const cbs = downsample2(padPlane(cb, h, w, ph, pw), ph, pw);
  const crs = downsample2(padPlane(cr, h, w, ph, pw), ph, pw);
  codePlane(yp, ph, pw, luma);
  codePlane(cbs, ph / 2, pw / 2, chroma);
  codePlane(crs, ph / 2, pw / 2, chroma);
  const cbu = upsample2(cbs, ph / 2, pw / 2);
  const cru = upsample2(crs, ph / 2, pw / 2);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const k = y * pw + x;
      const Y = yp[k]!;
      const Cb = cbu[k]! - 128;
      const Cr = cru[k]! - 128;
      const o = off + 3 * (y * w + x);
      out[o] = clamp255(Math.round(Y + 1.402 * Cr)) / 255;
      out[o + 1] = clamp255(Math.round(Y - 0.344136 * Cb - 0.714136 * Cr)) / 255;
      out[o + 2] = clamp255(Math.round(Y + 1.772 * Cb)) / 255;
    }
  }
}

/** JPEG round trip at a quality 1..100 of a batch [B, H, W, C], C = 1 or 3, values in [0, 1]. */
export function jpegRoundTrip(x: tf.Tensor4D, quality: number): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  if (c !== 1 && c !== 3) throw new RangeError(`jpeg: 1 or 3 channels, got ${c}`);
  // A synthetic corruption of test data (demo, benchmark), coded on the CPU: not the adaptation step's read.
  // eslint-disable-next-line no-restricted-properties
  const src = x.dataSync();
  const out = new Float32Array(src.length);
  for (let i = 0; i < b; i++) codeImage(src, out, i * h * w * c, h, w, c, quality);
  return tf.tensor4d(out, x.shape);
}

export function jpegCompression(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  return jpegRoundTrip(x, constantFor(QUALITY, ctx.regime, severity));
}
