/**
 * Corruption regimes: which public generator the constants come from. No
 * tfjs here, so a page that only offers the choice can import it.
 *
 *  - 'imagenet64' (the default, "paper strength"): hendrycks/robustness
 *    ImageNet-C/create_c/make_imagenet_64_c.py, the 64×64 Downsampled/Tiny
 *    ImageNet-C generator; reference side R = 64.
 *  - 'cifar' (mild): the same repository's make_cifar_c.py, the 32×32
 *    CIFAR-10-C generator; reference side R = 32.
 *
 * Lengths are scaled from the regime's reference side: s = max(1, min(H, W)/R).
 */

export const CORRUPTION_REGIMES = ['imagenet64', 'cifar'] as const;

export type CorruptionRegime = (typeof CORRUPTION_REGIMES)[number];

/** The regime `corrupt` uses when none is given. */
export const DEFAULT_REGIME: CorruptionRegime = 'imagenet64';

/** The image side each regime's constants were made for. */
export const REFERENCE_SIDE: Readonly<Record<CorruptionRegime, number>> = { imagenet64: 64, cifar: 32 };

/** Labels for a picker. */
export const REGIME_LABELS: Readonly<Record<CorruptionRegime, string>> = {
  imagenet64: 'ImageNet-C 64 px (paper strength)',
  cifar: 'CIFAR-10-C 32 px (mild)',
};

export function isCorruptionRegime(s: unknown): s is CorruptionRegime {
  return typeof s === 'string' && (CORRUPTION_REGIMES as readonly string[]).includes(s);
}

/** `regime` itself, DEFAULT_REGIME when undefined; anything else throws a RangeError. */
export function resolveRegime(regime: unknown): CorruptionRegime {
  if (regime === undefined) return DEFAULT_REGIME;
  if (!isCorruptionRegime(regime)) {
    throw new RangeError(`unknown corruption regime '${String(regime)}' (known: ${CORRUPTION_REGIMES.join(', ')})`);
  }
  return regime;
}

/** A constant per severity (1..5) for each regime. */
export type PerRegime<T> = Readonly<Record<CorruptionRegime, readonly T[]>>;

/** The constant of `table` for `regime` at `severity` (1..5). */
export function constantFor<T>(table: PerRegime<T>, regime: CorruptionRegime, severity: number): T {
  return table[regime][severity - 1]!;
}
