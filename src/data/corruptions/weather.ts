/**
 * Weather corruptions: snow, frost, fog, spatter. Constants: hendrycks/
 * robustness, ImageNet-C/create_c/make_cifar_c.py (32×32 generator),
 * functions of the same names. The random layers are drawn on the reference
 * grid ((H/s)×(W/s), see ops.referenceGrid) with the 32×32 constants and
 * resized to the image; blur lengths are multiplied by s = max(1, min(H, W)/32).
 * No image assets: frost and spatter are generated from the seed.
 */
import * as tf from '@tensorflow/tfjs';
import type { CorruptionContext } from './types';
import { motionBlurWithAngles, scaledGaussianBlur } from './blur';
import { frostField, liquidField, normalField, plasmaField, waterShade } from './fields';
import { colourFor, fieldsToImage, geometryOf, imageRng, perImage, referenceGrid, rotate180, toChannels, toGray } from './ops';

// make_cifar_c.py snow: c = [(0.1,0.2,1,0.6,8,3,0.95), (0.1,0.2,1,0.5,10,4,0.9), (0.15,0.3,1.75,0.55,10,4,0.9),
// (0.25,0.3,2.25,0.6,12,6,0.85), (0.3,0.3,1.25,0.65,14,12,0.8)]: flake noise mean and σ, zoom of the noise,
// threshold, motion-blur radius and sigma, weight of the image against its whitened copy.
const SNOW = [
  [0.1, 0.2, 1, 0.6, 8, 3, 0.95],
  [0.1, 0.2, 1, 0.5, 10, 4, 0.9],
  [0.15, 0.3, 1.75, 0.55, 10, 4, 0.9],
  [0.25, 0.3, 2.25, 0.6, 12, 6, 0.85],
  [0.3, 0.3, 1.25, 0.65, 14, 12, 0.8],
] as const;
// make_cifar_c.py frost: c = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)] (image weight, frost weight).
const FROST = [[1, 0.2], [1, 0.3], [0.9, 0.4], [0.85, 0.4], [0.75, 0.45]] as const;
// make_cifar_c.py fog: c = [(.2,3), (.5,3), (0.75,2.5), (1,2), (1.5,1.75)] (fog strength, plasma wibble decay).
const FOG = [[0.2, 3], [0.5, 3], [0.75, 2.5], [1, 2], [1.5, 1.75]] as const;
// make_cifar_c.py spatter: c = [(0.62,0.1,0.7,0.7,0.5,0), (0.65,0.1,0.8,0.7,0.5,0), (0.65,0.3,1,0.69,0.5,0),
// (0.65,0.1,0.7,0.69,0.6,1), (0.65,0.1,0.5,0.68,0.6,1)]: liquid noise mean and σ, its blur σ (grid px),
// threshold, water strength (kind 0) or mud softening σ (kind 1, px × s), kind.
const SPATTER = [
  [0.62, 0.1, 0.7, 0.7, 0.5, 0],
  [0.65, 0.1, 0.8, 0.7, 0.5, 0],
  [0.65, 0.3, 1, 0.69, 0.5, 0],
  [0.65, 0.1, 0.7, 0.69, 0.6, 1],
  [0.65, 0.1, 0.5, 0.68, 0.6, 1],
] as const;
// make_cifar_c.py spatter colours: water "pale turquoise" (175, 238, 238), mud brown (63, 42, 20), RGB.
const WATER_RGB = [175, 238, 238] as const;
const MUD_RGB = [63, 42, 20] as const;
// Tint of the procedural frost (ours; the reference's frost photographs are bluish white).
const FROST_TINT = [0.88, 0.95, 1] as const;

const clip = (t: tf.Tensor) => tf.clipByValue(t, 0, 1) as tf.Tensor4D;

/**
 * Flakes: normal noise on a grid whose cells are `zoom` reference pixels,
 * resized to the image, zeroed under the threshold, motion-blurred along a
 * random angle in [-135, -45) degrees (radius and sigma × s), added to the
 * image together with its 180° rotation, over a whitened image
 * keep·x + (1 - keep)·max(x, 1.5·gray + 0.5).
 */
export function snow(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const g = geometryOf(x);
  const [mean, sd, zoom, thr, radius, sigma, keep] = SNOW[severity - 1]!;
  const [gh, gw] = referenceGrid(g.h, g.w, zoom);
  const fields = new Float32Array(g.b * gh * gw);
  const angles: number[] = [];
  for (let i = 0; i < g.b; i++) {
    const rng = imageRng(ctx.seed, ctx.salt, i);
    fields.set(normalField(gh * gw, mean, sd, rng), i * gh * gw);
    angles.push(-135 + 90 * rng());
  }
  return tf.tidy(() => {
    const noise = fieldsToImage(fields, g.b, gh, gw, g.h, g.w);
    const flakes = clip(tf.mul(noise, tf.cast(tf.greaterEqual(noise, thr), 'float32')));
    const streaks = motionBlurWithAngles(flakes, radius * g.s, sigma * g.s, angles, g);
    const light = toChannels(tf.add(tf.mul(toGray(x), 1.5), 0.5), g.c);
    const whitened = tf.add(tf.mul(x, keep), tf.mul(tf.maximum(x, light), 1 - keep));
    return clip(tf.add(whitened, toChannels(tf.add(streaks, rotate180(streaks)), g.c)));
  });
}

/**
 * a·x + b·frost, with a procedural frost texture per image (see
 * fields.frostField) drawn on the reference grid, tinted bluish for RGB (its
 * luma for gray), resized to the image.
 */
export function frost(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const g = geometryOf(x);
  const [a, b] = FROST[severity - 1]!;
  const [gh, gw] = referenceGrid(g.h, g.w);
  const fields = new Float32Array(g.b * gh * gw);
  for (let i = 0; i < g.b; i++) fields.set(frostField(gh, gw, imageRng(ctx.seed, ctx.salt, i)), i * gh * gw);
  const tint = g.c === 1 ? colourFor([255 * FROST_TINT[0], 255 * FROST_TINT[1], 255 * FROST_TINT[2]], 1) : [...FROST_TINT];
  return tf.tidy(() => {
    const tex = tf.mul(toChannels(fieldsToImage(fields, g.b, gh, gw, g.h, g.w), g.c), tf.tensor1d(tint.map((v) => v * b)));
    return clip(tf.add(tf.mul(x, a), tex));
  });
}

/**
 * (x + t·fog) · M/(M + t), M the image's maximum, fog a plasma fractal
 * (wibble decay per severity) on the reference grid, resized to the image.
 */
export function fog(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const g = geometryOf(x);
  const [t, decay] = FOG[severity - 1]!;
  const [gh, gw] = referenceGrid(g.h, g.w);
  const fields = new Float32Array(g.b * gh * gw);
  for (let i = 0; i < g.b; i++) fields.set(plasmaField(gh, gw, decay, imageRng(ctx.seed, ctx.salt, i)), i * gh * gw);
  return tf.tidy(() => {
    const layer = toChannels(fieldsToImage(fields, g.b, gh, gw, g.h, g.w), g.c);
    const max = tf.max(x, [1, 2, 3], true);
    return clip(tf.mul(tf.add(x, tf.mul(layer, t)), perImage(tf.div(max, tf.add(max, t)), x.shape)));
  });
}

/**
 * Water (severities 1–3): x + m·pale turquoise, m = liquid·shade normalised
 * to max `strength`. Mud (4–5): x·(1 - m) + m·brown, m = the puddle mask
 * under a Gaussian of σ (× s), values under 0.8 dropped. The liquid layer
 * (blurred normal noise) and the water shading (see fields.waterShade) are
 * drawn on the reference grid and resized to the image; the puddles are cut
 * at full size, so their outlines stay smooth on large images. Gray images
 * get the colour's luma.
 */
export function spatter(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const g = geometryOf(x);
  const [mean, sd, sigma, thr, strength, kind] = SPATTER[severity - 1]!;
  const mud = kind === 1;
  const [gh, gw] = referenceGrid(g.h, g.w);
  const liquids = new Float32Array(g.b * gh * gw);
  const shades = new Float32Array(mud ? 0 : g.b * gh * gw);
  for (let i = 0; i < g.b; i++) {
    const liquid = liquidField(gh, gw, mean, sd, sigma, imageRng(ctx.seed, ctx.salt, i));
    liquids.set(liquid, i * gh * gw);
    if (!mud) shades.set(waterShade(liquid, gh, gw, thr), i * gh * gw);
  }
  return tf.tidy(() => {
    const liquid = fieldsToImage(liquids, g.b, gh, gw, g.h, g.w);
    const col = tf.tensor1d(colourFor(mud ? MUD_RGB : WATER_RGB, g.c));
    if (mud) {
      const puddles = tf.cast(tf.greater(liquid, thr), 'float32') as tf.Tensor4D;
      const soft = scaledGaussianBlur(puddles, strength * g.s, g, 'edge');
      const m = toChannels(tf.mul(soft, tf.cast(tf.greaterEqual(soft, 0.8), 'float32')), g.c);
      return clip(tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(m, col)));
    }
    const wet = tf.mul(liquid, tf.cast(tf.greaterEqual(liquid, thr), 'float32'));
    const raw = tf.mul(wet, fieldsToImage(shades, g.b, gh, gw, g.h, g.w));
    const max = tf.max(raw, [1, 2, 3], true);
    const m = tf.mul(raw, perImage(tf.div(strength, tf.maximum(max, 1e-12)), raw.shape));
    return clip(tf.add(x, tf.mul(toChannels(m, g.c), col)));
  });
}
