/**
 * The ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) for tfjs
 * image tensors: the 15 test corruptions and the 4 extra ones kept for
 * choosing hyperparameters, 5 severities each.
 *
 * Input: [H, W, C] or [B, H, W, C], C = 1 or 3, float values in [0, 1], any
 * size (28×28 Fashion-MNIST to 640×480 frames). Output: same shape, clipped
 * to [0, 1]. Seeded: one seed gives the same result on a backend every time;
 * image b of a batch draws from its own stream (seed, corruption, b), so it
 * does not depend on the batch size.
 *
 * Regimes (regime.ts): the constants come from one of two public generators
 * of hendrycks/robustness, ImageNet-C/create_c/, picked by the `regime`
 * option: 'imagenet64' (the default, "paper strength"), make_imagenet_64_c.py,
 * the 64×64 Downsampled/Tiny ImageNet-C script, reference side R = 64; or
 * 'cifar' (mild), make_cifar_c.py, the 32×32 CIFAR-10-C script, R = 32. Each
 * module holds a table per regime and cites the scripts. Size rule, with
 * s = max(1, min(H, W)/R):
 *  - images with a short side of R px or less (28×28 Fashion-MNIST under
 *    both regimes) get the R×R constants unchanged;
 *  - lengths in pixels (blur radii and σ, the defocus antialiasing reach,
 *    glass displacement, motion-blur radius and σ, the elastic affine jitter,
 *    spatter's mud softening) are multiplied by s;
 *  - random layers (fog's plasma, frost, spatter's liquid and shading,
 *    snow's flake noise, the elastic displacement field) are drawn on the
 *    reference grid, (H/s)×(W/s), with the R×R constants, and resized to
 *    H×W (elastic displacements then × s);
 *  - pixelate cuts floor(c·side/s) cells per side (blocks of s/c pixels);
 *  - zoom factors, colours, per-pixel noise and JPEG quality have no length
 *    and are used as they are;
 *  - wide blurs run on an average-pooled copy and are resized back, the
 *    pooling factor at most s/2 (half a reference pixel).
 * So a corrupted H×W image looks like the R×R corruption of the same
 * picture drawn at H×W; shrunk to the model's input, it is about what the
 * model would see from the R×R generator.
 *
 * Gray images: colour steps act on the luma (snow's whitening, spatter and
 * frost colours); brightness adds to the gray value (HSV value of a gray
 * pixel); saturate uses a gray analogue (see digital.saturate).
 *
 * Backends: everything but shot_noise and jpeg_compression is tfjs ops
 * (depthwise convolutions, gathers, cropAndResize, matMul) with kernels,
 * index maps and random fields built in JS. shot_noise (exact Poisson draws)
 * and jpeg_compression read the pixels and compute in JS.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CorruptionContext } from './types';
import { resolveRegime, type CorruptionRegime } from './regime';
import { defocusBlur, gaussianBlurCorruption, glassBlur, motionBlur, zoomBlur } from './blur';
import { brightness, contrast, elasticTransform, pixelate, saturate } from './digital';
import { jpegCompression } from './jpeg';
import { gaussianNoise, impulseNoise, shotNoise, speckleNoise } from './noise';
import { fog, frost, snow, spatter } from './weather';
import { ALL_CORRUPTIONS, type CorruptionName } from './names';

export { jpegRoundTrip, lumaTable, chromaTable } from './jpeg';
export { ALL_CORRUPTIONS, CORRUPTIONS, EXTRA_CORRUPTIONS, type CorruptionName, type ExtraCorruptionName, type TestCorruptionName } from './names';
export { CORRUPTION_REGIMES, DEFAULT_REGIME, REFERENCE_SIDE, REGIME_LABELS, isCorruptionRegime, resolveRegime, type CorruptionRegime } from './regime';

/** Corruptions whose result depends on the seed. */
export const RANDOM_CORRUPTIONS: ReadonlySet<CorruptionName> = new Set<CorruptionName>([
  'gaussian_noise',
  'shot_noise',
  'impulse_noise',
  'glass_blur',
  'motion_blur',
  'snow',
  'frost',
  'fog',
  'elastic_transform',
  'speckle_noise',
  'spatter',
]);

export const SEVERITIES = [1, 2, 3, 4, 5] as const;

type Impl = (x: tf.Tensor4D, severity: number, ctx: CorruptionContext) => tf.Tensor4D;

const IMPL: Record<CorruptionName, Impl> = {
  gaussian_noise: gaussianNoise,
  shot_noise: shotNoise,
  impulse_noise: impulseNoise,
  defocus_blur: defocusBlur,
  glass_blur: glassBlur,
  motion_blur: motionBlur,
  zoom_blur: zoomBlur,
  snow,
  frost,
  fog,
  brightness,
  contrast,
  elastic_transform: elasticTransform,
  pixelate,
  jpeg_compression: jpegCompression,
  speckle_noise: speckleNoise,
  gaussian_blur: gaussianBlurCorruption,
  spatter,
  saturate,
};

export function isCorruptionName(name: string): name is CorruptionName {
  return Object.prototype.hasOwnProperty.call(IMPL, name);
}

export interface CorruptOptions {
  /**
   * Whose constants: 'imagenet64' (make_imagenet_64_c.py, the default) or
   * 'cifar' (make_cifar_c.py). Anything else throws a RangeError.
   */
  regime?: CorruptionRegime;
}

/**
 * Applies corruption `name` at `severity` (1..5) with `seed` (an integer,
 * taken modulo 2^32), with the constants of `options.regime` (default
 * 'imagenet64'). The input is not disposed; the result is a new tensor of
 * the same shape, float32, in [0, 1].
 */
export function corrupt(image: tf.Tensor4D, name: string, severity: number, seed: number, options?: CorruptOptions): tf.Tensor4D;
export function corrupt(image: tf.Tensor3D, name: string, severity: number, seed: number, options?: CorruptOptions): tf.Tensor3D;
export function corrupt(image: tf.Tensor, name: string, severity: number, seed: number, options?: CorruptOptions): tf.Tensor;
export function corrupt(image: tf.Tensor, name: string, severity: number, seed: number, options?: CorruptOptions): tf.Tensor {
  if (!isCorruptionName(name)) throw new RangeError(`unknown corruption '${name}' (known: ${ALL_CORRUPTIONS.join(', ')})`);
  if (!Number.isInteger(severity) || severity < 1 || severity > 5) throw new RangeError(`severity must be 1..5, got ${severity}`);
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  const regime = resolveRegime(options?.regime);
  const rank = image.rank;
  if (rank !== 3 && rank !== 4) throw new RangeError(`image must be [H, W, C] or [B, H, W, C], got shape [${image.shape.join(', ')}]`);
  const c = image.shape[rank - 1]!;
  if (c !== 1 && c !== 3) throw new RangeError(`image must have 1 or 3 channels, got ${c}`);
  if (image.shape.some((d) => d < 1)) throw new RangeError(`empty image, shape [${image.shape.join(', ')}]`);
  const ctx: CorruptionContext = { seed: Math.trunc(seed) >>> 0, salt: ALL_CORRUPTIONS.indexOf(name), regime };
  const batch = tf.tidy(() => {
    const x = image.dtype === 'float32' ? image : tf.cast(image, 'float32');
    return (rank === 3 ? tf.expandDims(x, 0) : tf.clone(x)) as tf.Tensor4D;
  });
  try {
    const out = IMPL[name](batch, severity, ctx);
    if (rank === 4) return out;
    const squeezed = tf.squeeze(out, [0]);
    out.dispose();
    return squeezed;
  } finally {
    batch.dispose();
  }
}
