/**
 * Frame → model input, in plain JS so it runs the same in the page, in a
 * worker and in Node: center square crop, resize to the model's input size,
 * gray or RGB to match the model's channels, optional invert. Values come out
 * in [0, 1]; the model applies its own mean/std (see ViTConfig.mean/std).
 *
 * Downscaling averages every source pixel under each output pixel (a box
 * filter with fractional edge weights), so a 480-pixel crop shrunk to 28
 * pixels is not aliased the way nearest or bilinear sampling would alias it.
 * Upscaling (a 28×28 test image fed to a 224×224 model) is bilinear.
 */

export interface PixelFrame {
  /** Row-major interleaved pixels, `channels` values per pixel. */
  data: ArrayLike<number>;
  width: number;
  height: number;
  /** 1 (gray), 3 (RGB) or 4 (RGBA, alpha ignored). */
  channels: 1 | 3 | 4;
  /** What a full-intensity value is: 255 for bytes (default), 1 for floats. */
  maxValue?: number;
}

export type InvertMode = boolean | 'auto';

export interface PreprocessOptions {
  /** Output side length (the model's imageSize). */
  size: number;
  /** Output channels (the model's inChannels): 1 = luma, 3 = RGB. */
  channels: 1 | 3;
  /**
   * Invert intensities (x → 1 − x). 'auto' inverts when the crop's border is
   * mostly bright: Fashion-MNIST-like models expect a bright object on a dark
   * background, and a camera pointed at something on a desk sees the opposite.
   */
  invert?: InvertMode;
  /** Side of the centered square crop as a fraction of the short side (default 1). */
  cropFraction?: number;
}

export interface PreprocessResult {
  /** [size, size, channels] row-major, values in [0, 1]. */
  pixels: Float32Array;
  size: number;
  channels: 1 | 3;
  inverted: boolean;
  /** The crop in source pixels (for drawing its outline over the frame). */
  crop: { x: number; y: number; side: number };
}

export class FrameFormatError extends Error {
  override readonly name = 'FrameFormatError';
}

/** ITU-R BT.601 luma, as tf.image.rgbToGrayscale and most camera pipelines. */
const LUMA = [0.299, 0.587, 0.114] as const;

export function checkFrame(frame: PixelFrame): void {
  const { width, height, channels, data } = frame;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new FrameFormatError(`frame size must be positive integers, got ${width}×${height}`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new FrameFormatError(`frame must have 1, 3 or 4 channels, got ${String(channels)}`);
  if (data.length !== width * height * channels) {
    throw new FrameFormatError(`a ${width}×${height}×${channels} frame needs ${width * height * channels} values, got ${data.length}`);
  }
}

/** The centered square crop of a width×height frame. */
export function centerCrop(width: number, height: number, fraction = 1): { x: number; y: number; side: number } {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`cropFraction must be in (0, 1], got ${fraction}`);
  const side = Math.max(1, Math.round(Math.min(width, height) * fraction));
  return { x: Math.floor((width - side) / 2), y: Math.floor((height - side) / 2), side };
}

/**
 * Resamples one axis: for each output index, the source indices and weights
 * that make it (box filter when shrinking, linear interpolation when growing).
 */
function axisWeights(srcStart: number, srcLen: number, outLen: number): Array<{ idx: number[]; w: number[] }> {
  const out: Array<{ idx: number[]; w: number[] }> = [];
  const scale = srcLen / outLen;
  for (let o = 0; o < outLen; o++) {
    const idx: number[] = [];
    const w: number[] = [];
    if (scale > 1) {
      const a = o * scale;
      const b = a + scale;
      for (let s = Math.floor(a); s < Math.ceil(b); s++) {
        const cover = Math.min(b, s + 1) - Math.max(a, s);
        if (cover > 1e-9) {
          idx.push(srcStart + s);
          w.push(cover / scale);
        }
      }
    } else {
      // Pixel centers aligned (align_corners = false), clamped at the edges.
      const c = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), srcLen - 1);
      const lo = Math.floor(c);
      const hi = Math.min(lo + 1, srcLen - 1);
      const t = c - lo;
      idx.push(srcStart + lo);
      w.push(1 - t);
      if (hi !== lo && t > 0) {
        idx.push(srcStart + hi);
        w.push(t);
      }
    }
    out.push({ idx, w });
  }
  return out;
}

/** Center crop, resize, channel conversion and optional invert of one frame. */
export function preprocessFrame(frame: PixelFrame, opts: PreprocessOptions): PreprocessResult {
  checkFrame(frame);
  const { size, channels: outC } = opts;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new RangeError(`size must be an integer in 1..4096, got ${size}`);
  if (outC !== 1 && outC !== 3) throw new RangeError(`channels must be 1 or 3, got ${String(outC)}`);
  const { data, width, channels: inC } = frame;
  const scale = 1 / (frame.maxValue ?? 255);
  const crop = centerCrop(frame.width, frame.height, opts.cropFraction ?? 1);
  const xs = axisWeights(crop.x, crop.side, size);
  const ys = axisWeights(crop.y, crop.side, size);

  // Separable: rows first into an intermediate [crop.side rows × size cols × 3], then columns.
  const rgbIn = inC >= 3;
  const tmpC = rgbIn ? 3 : 1;
  const rowsNeeded = crop.side;
  const tmp = new Float32Array(rowsNeeded * size * tmpC);
  for (let r = 0; r < rowsNeeded; r++) {
    const rowBase = (crop.y + r) * width;
    for (let o = 0; o < size; o++) {
      const { idx, w } = xs[o]!;
      let a = 0;
      let b = 0;
      let c = 0;
      for (let k = 0; k < idx.length; k++) {
        const p = (rowBase + idx[k]!) * inC;
        const wk = w[k]!;
        a += data[p]! * wk;
        if (rgbIn) {
          b += data[p + 1]! * wk;
          c += data[p + 2]! * wk;
        }
      }
      const t = (r * size + o) * tmpC;
      tmp[t] = a;
      if (rgbIn) {
        tmp[t + 1] = b;
        tmp[t + 2] = c;
      }
    }
  }
  const pixels = new Float32Array(size * size * outC);
  for (let oy = 0; oy < size; oy++) {
    const { idx, w } = ys[oy]!;
    for (let ox = 0; ox < size; ox++) {
      let a = 0;
      let b = 0;
      let c = 0;
      for (let k = 0; k < idx.length; k++) {
        const t = ((idx[k]! - crop.y) * size + ox) * tmpC;
        const wk = w[k]!;
        a += tmp[t]! * wk;
        if (rgbIn) {
          b += tmp[t + 1]! * wk;
          c += tmp[t + 2]! * wk;
        }
      }
      const o = (oy * size + ox) * outC;
      if (outC === 1) {
        pixels[o] = clamp01((rgbIn ? LUMA[0] * a + LUMA[1] * b + LUMA[2] * c : a) * scale);
      } else if (rgbIn) {
        pixels[o] = clamp01(a * scale);
        pixels[o + 1] = clamp01(b * scale);
        pixels[o + 2] = clamp01(c * scale);
      } else {
        const g = clamp01(a * scale);
        pixels[o] = g;
        pixels[o + 1] = g;
        pixels[o + 2] = g;
      }
    }
  }
  const inverted = opts.invert === 'auto' ? borderMean(pixels, size, outC) > 0.5 : Boolean(opts.invert);
  if (inverted) for (let i = 0; i < pixels.length; i++) pixels[i] = 1 - pixels[i]!;
  return { pixels, size, channels: outC, inverted, crop };
}

/** Mean intensity of the outermost ring of pixels (the background, for a centered object). */
export function borderMean(pixels: Float32Array, size: number, channels: number): number {
  let sum = 0;
  let n = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (y !== 0 && y !== size - 1 && x !== 0 && x !== size - 1) continue;
      const o = (y * size + x) * channels;
      for (let c = 0; c < channels; c++) sum += pixels[o + c]!;
      n += channels;
    }
  }
  return n === 0 ? 0 : sum / n;
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/**
 * [size, size, 1 or 3] values in [0, 1] → RGBA bytes for an ImageData
 * (previews of the model's input). Non-finite values show as magenta so a
 * broken frame is visible rather than black.
 */
export function toRGBA(pixels: ArrayLike<number>, width: number, height: number, channels: 1 | 3): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(new ArrayBuffer(width * height * 4));
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) {
      const v = pixels[i * channels + (channels === 1 ? 0 : c)]!;
      out[i * 4 + c] = Number.isFinite(v) ? Math.round(v * 255) : c === 1 ? 0 : 255;
    }
    out[i * 4 + 3] = 255;
  }
  return out;
}
