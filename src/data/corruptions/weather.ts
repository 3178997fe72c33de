/**
 * Weather corruptions: snow, frost, fog, spatter. Constants per regime (see
 * regime.ts), from hendrycks/robustness ImageNet-C/create_c/:
 * make_imagenet_64_c.py (imagenet64, 64×64 generator, R = 64) and
 * make_cifar_c.py (cifar, 32×32 generator, R = 32), functions of the same
 * names. The two scripts' formulas are the same; frost also differs in the
 * scale of its photographs (see FROST_TEXTURE_ZOOM). The random layers are
 * drawn on the reference grid ((H/s)×(W/s), see ops.referenceGrid) with the
 * R×R constants and resized to the image; blur lengths are multiplied by
 * s = max(1, min(H, W)/R). No image assets: frost and spatter are generated
 * from the seed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CorruptionContext } from './types';
import { motionBlurWithAngles, scaledGaussianBlur } from './blur';
import { frostField, liquidField, normalField, plasmaField, waterShade } from './fields';
import { colourFor, fieldsToImage, geometryOf, imageRng, perImage, referenceGrid, rotate180, toChannels, toGray } from './ops';
import { constantFor, type CorruptionRegime, type PerRegime } from './regime';

// snow c = (flake noise mean and σ, zoom of the noise, threshold, motion-blur radius and sigma, weight
// of the image against its whitened copy). make_cifar_c.py: (0.1,0.2,1,0.6,8,3,0.95),
// (0.1,0.2,1,0.5,10,4,0.9), (0.15,0.3,1.75,0.55,10,4,0.9), (0.25,0.3,2.25,0.6,12,6,0.85),
// (0.3,0.3,1.25,0.65,14,12,0.8). make_imagenet_64_c.py: the same but for the last entry (the image
// weight), 0.8, 0.8, 0.7, 0.65, 0.6.
const SNOW: PerRegime<readonly [number, number, number, number, number, number, number]> = {
  imagenet64: [
    [0.1, 0.2, 1, 0.6, 8, 3, 0.8],
    [0.1, 0.2, 1, 0.5, 10, 4, 0.8],
    [0.15, 0.3, 1.75, 0.55, 10, 4, 0.7],
    [0.25, 0.3, 2.25, 0.6, 12, 6, 0.65],
    [0.3, 0.3, 1.25, 0.65, 14, 12, 0.6],
  ],
  cifar: [
    [0.1, 0.2, 1, 0.6, 8, 3, 0.95],
    [0.1, 0.2, 1, 0.5, 10, 4, 0.9],
    [0.15, 0.3, 1.75, 0.55, 10, 4, 0.9],
    [0.25, 0.3, 2.25, 0.6, 12, 6, 0.85],
    [0.3, 0.3, 1.25, 0.65, 14, 12, 0.8],
  ],
};
// frost c = (image weight, frost weight): make_imagenet_64_c.py [(1, 0.3), (0.9, 0.4), (0.8, 0.45),
// (0.75, 0.5), (0.7, 0.55)], make_cifar_c.py [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)].
const FROST: PerRegime<readonly [number, number]> = {
  imagenet64: [
    [1, 0.3],
    [0.9, 0.4],
    [0.8, 0.45],
    [0.75, 0.5],
    [0.7, 0.55],
  ],
  cifar: [
    [1, 0.2],
    [1, 0.3],
    [0.9, 0.4],
    [0.85, 0.4],
    [0.75, 0.45],
  ],
};
// frost: the scripts shrink the frost photographs by fx = fy = 0.3 (make_imagenet_64_c.py) or 0.2
// (make_cifar_c.py) before cropping an R×R patch. Our procedural texture stands for the 0.2 scale; at
// 0.3 a reference pixel holds 0.2/0.3 as much frost, so the texture is drawn on a grid 0.3/0.2 = 1.5
// times coarser (its needles 1.5 times longer in reference pixels).
const FROST_TEXTURE_ZOOM: Readonly<Record<CorruptionRegime, number>> = { imagenet64: 1.5, cifar: 1 };
// fog c = (fog strength, plasma wibble decay): make_imagenet_64_c.py [(.4,3), (.7,3), (1,2.5), (1.5,2),
// (2,1.75)], make_cifar_c.py [(.2,3), (.5,3), (0.75,2.5), (1,2), (1.5,1.75)]. The plasma is R×R
// (mapsize 64 or 32), our reference grid.
const FOG: PerRegime<readonly [number, number]> = {
  imagenet64: [
    [0.4, 3],
    [0.7, 3],
    [1, 2.5],
    [1.5, 2],
    [2, 1.75],
  ],
  cifar: [
    [0.2, 3],
    [0.5, 3],
    [0.75, 2.5],
    [1, 2],
    [1.5, 1.75],
  ],
};
// spatter c = (liquid noise mean and σ, its blur σ (grid px), threshold, water strength (kind 0) or mud
// softening σ (kind 1, px × s), kind). make_imagenet_64_c.py: (0.62,0.1,0.7,0.7,0.6,0),
// (0.65,0.1,0.8,0.7,0.6,0), (0.65,0.3,1,0.69,0.6,0), (0.65,0.1,0.7,0.68,0.6,1), (0.65,0.1,0.5,0.67,0.6,1).
// make_cifar_c.py: (0.62,0.1,0.7,0.7,0.5,0), (0.65,0.1,0.8,0.7,0.5,0), (0.65,0.3,1,0.69,0.5,0),
// (0.65,0.1,0.7,0.69,0.6,1), (0.65,0.1,0.5,0.68,0.6,1).
const SPATTER: PerRegime<readonly [number, number, number, number, number, number]> = {
  imagenet64: [
    [0.62, 0.1, 0.7, 0.7, 0.6, 0],
    [0.65, 0.1, 0.8, 0.7, 0.6, 0],
    [0.65, 0.3, 1, 0.69, 0.6, 0],
    [0.65, 0.1, 0.7, 0.68, 0.6, 1],
    [0.65, 0.1, 0.5, 0.67, 0.6, 1],
  ],
  cifar: [
    [0.62, 0.1, 0.7, 0.7, 0.5, 0],
    [0.65, 0.1, 0.8, 0.7, 0.5, 0],
    [0.65, 0.3, 1, 0.69, 0.5, 0],
    [0.65, 0.1, 0.7, 0.69, 0.6, 1],
    [0.65, 0.1, 0.5, 0.68, 0.6, 1],
  ],
};
// spatter colours, the same in both scripts: water "pale turquoise" (175, 238, 238), mud brown (63, 42, 20), RGB.
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
  const g = geometryOf(x, ctx.regime);
  const [mean, sd, zoom, thr, radius, sigma, keep] = constantFor(SNOW, ctx.regime, severity);
  const [gh, gw] = referenceGrid(g.h, g.w, g.ref, zoom);
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
 * fields.frostField) drawn on the reference grid (made 1.5 times coarser in
 * the imagenet64 regime, see FROST_TEXTURE_ZOOM), tinted bluish for RGB (its
 * luma for gray), resized to the image.
 */
export function frost(x: tf.Tensor4D, severity: number, ctx: CorruptionContext): tf.Tensor4D {
  const g = geometryOf(x, ctx.regime);
  const [a, b] = constantFor(FROST, ctx.regime, severity);
  const [gh, gw] = referenceGrid(g.h, g.w, g.ref, FROST_TEXTURE_ZOOM[ctx.regime]);
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
  const g = geometryOf(x, ctx.regime);
  const [t, decay] = constantFor(FOG, ctx.regime, severity);
  const [gh, gw] = referenceGrid(g.h, g.w, g.ref);
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
  const g = geometryOf(x, ctx.regime);
  const [mean, sd, sigma, thr, strength, kind] = constantFor(SPATTER, ctx.regime, severity);
  const mud = kind === 1;
  const [gh, gw] = referenceGrid(g.h, g.w, g.ref);
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
