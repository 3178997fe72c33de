/**
 * The stress family (issue 25, item 7): geometric shifts, quarter turns and
 * flips of square frames, optionally on top of a corruption. A camera held
 * sideways or a mirrored feed is a shift no ImageNet-C corruption makes, and
 * it is where entropy minimization collapsed with no reset noticing.
 *
 * NEVER used for tuning: these streams test whether a method holds up on a
 * shift no one chose its hyperparameters for. `npm run bench:tune` refuses
 * them (assertNotStress, called on every stream it builds), and they are kept
 * out of the 15 test and 4 extra corruptions' lists.
 *
 * A stress stream's name is `transform` or `transform+corruption`
 * (`rot90`, `hflip+fog`). The corruption, if any, is applied first and the
 * transform last, so the transform is an exact permutation of the pixels the
 * corruption produced (a turned camera sees the corrupted scene turned).
 */
import * as tf from '@tensorflow/tfjs-core';
import { corrupt, isCorruptionName, type CorruptOptions } from './corruptions';

/** The geometric transforms, each a permutation of a square frame's pixels. Quarter turns are counter-clockwise. */
export const STRESS_TRANSFORMS = ['rot90', 'rot180', 'rot270', 'hflip', 'vflip'] as const;

export type StressTransform = (typeof STRESS_TRANSFORMS)[number];

/** The stress streams the benchmark runs by default (`npm run bench -- --stress`): each transform on clean frames. */
export const STRESS_STREAMS: readonly string[] = [...STRESS_TRANSFORMS];

export function isStressTransform(s: string): s is StressTransform {
  return (STRESS_TRANSFORMS as readonly string[]).includes(s);
}

/** `transform` or `transform+corruption` → its parts; undefined when `name` is not a stress stream's name. */
export function parseStressName(name: string): { transform: StressTransform; corruption?: string } | undefined {
  const [transform, corruption, ...rest] = name.split('+');
  if (!transform || !isStressTransform(transform) || rest.length > 0) return undefined;
  if (corruption === undefined) return { transform };
  return isCorruptionName(corruption) ? { transform, corruption } : undefined;
}

export function isStressName(name: string): boolean {
  return parseStressName(name) !== undefined;
}

/**
 * Throws when any of `names` is a stress stream: what bench:tune calls on
 * the streams it builds, so that no hyperparameter is ever chosen on them.
 */
export function assertNotStress(names: Iterable<string>, who = 'tuning'): void {
  const bad = [...names].filter(isStressName);
  if (bad.length > 0) {
    throw new RangeError(`${who} must never look at the stress family (${bad.join(', ')}): it tests shifts no hyperparameter was chosen on`);
  }
}

/**
 * Where each output pixel comes from: out[i, j] = in[src[i·S + j]] on an
 * S×S grid (row-major). The single definition of each transform; `transform`
 * applies it.
 */
export function stressPermutation(t: StressTransform, S: number): Int32Array {
  const src = new Int32Array(S * S);
  for (let i = 0; i < S; i++) {
    for (let j = 0; j < S; j++) {
      const [r, c] =
        t === 'rot90'
          ? [j, S - 1 - i] // counter-clockwise: the top row becomes the left column, read bottom-up
          : t === 'rot180'
            ? [S - 1 - i, S - 1 - j]
            : t === 'rot270'
              ? [S - 1 - j, i]
              : t === 'hflip'
                ? [i, S - 1 - j]
                : [S - 1 - i, j];
      src[i * S + j] = r * S + c;
    }
  }
  return src;
}

/** Applies a transform to square frames [B, S, S, C]: a gather of the pixels along stressPermutation. */
export function transform(x: tf.Tensor4D, t: StressTransform): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  if (H !== W) throw new RangeError(`the stress transforms take square frames, got ${H}×${W}`);
  return tf.tidy(() => {
    const idx = tf.tensor1d(stressPermutation(t, H), 'int32');
    const flat = tf.reshape(x, [B, H * W, C]);
    return tf.reshape(tf.gather(flat, idx, 1), [B, H, W, C]) as tf.Tensor4D;
  });
}

/**
 * A stream item's frame: a stress name (`rot90`, `hflip+fog`) is its
 * corruption (if any) then its transform; any other name is an ordinary
 * corruption. The input is not disposed.
 */
export function corruptOrStress(x: tf.Tensor4D, name: string, severity: number, seed: number, options?: CorruptOptions): tf.Tensor4D {
  const stress = parseStressName(name);
  if (!stress) return corrupt(x, name, severity, seed, options);
  if (!stress.corruption) return transform(x, stress.transform);
  const c = corrupt(x, stress.corruption, severity, seed, options);
  try {
    return transform(c, stress.transform);
  } finally {
    c.dispose();
  }
}
