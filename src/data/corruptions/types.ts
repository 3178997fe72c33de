import type { CorruptionRegime } from './regime';

/** What a corruption function gets besides the image and the severity. */
export interface CorruptionContext {
  /** The caller's seed (an integer, taken modulo 2^32). */
  seed: number;
  /** Distinguishes the corruptions' streams for one seed (the corruption's index). */
  salt: number;
  /** Whose constants to use (see regime.ts); lengths scale from REFERENCE_SIDE[regime]. */
  regime: CorruptionRegime;
}
