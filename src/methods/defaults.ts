// Where a default comes from, said once per default. Each method's table of
// defaults lives in its own file (sar.ts's SAR_DEFAULTS…) and reaches the
// registry (registry.ts) with it; docs/methods.md prints them all (npm run
// defaults:table; tools/defaults-table.test.ts checks the page, and that the
// tuned ones are what bench/results/tuning.json chose). To change a default,
// change its line and rerun the command in its `from`.
//
// Fractions of ln C are given as fractions (E0 = 0.4 · ln C).

/** A default and where it came from. */
export interface Default<T = number> {
  value: T;
  /** The reference's value, or the tuning run (and regime) that chose it. */
  from: string;
  /** The option a caller passes, where it is not the key (e.g. inputAlign.quantile). */
  option?: string;
  /** How the default reads in the table, where it is not the bare value. */
  shown?: string;
}

/** A method's defaults, by option. */
export type Defaults = Readonly<Record<string, Default>>;

/** Chosen by the tuning run on the extra corruptions. */
export const TUNED = 'npm run bench:tune at imagenet64 on the 4 extra corruptions, 3 seeds (bench/results/tuning.json; a tie with its neighbours)';

/** The method's reference (its paper and code). */
export const REF = (what: string) => `the reference (${what})`;

/** The learning rates bench:tune tries for every method. */
export const TUNING_LRS: readonly number[] = [1e-4, 3e-4, 1e-3, 3e-3];
