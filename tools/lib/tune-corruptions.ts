// Which corruptions bench:tune may look at: the 4 extra ones and nothing else.
// Never the 15 test corruptions (the benchmark reports them), and never the
// stress family (src/data/stress.ts), which tests shifts no hyperparameter
// was chosen on. Kept in tools/lib, apart from bench/tune.ts, so that a test can hold it to that.
import { EXTRA_CORRUPTIONS } from '../../src/data/corruptions';
import { assertNotStress, STRESS_TRANSFORMS } from '../../src/data/stress';

/**
 * The corruptions a tuning run uses: `requested` (comma-separated, a subset
 * of the extra ones, for a shorter run) or all 4 extra ones. `stress` (the
 * benchmark's --stress flag, passed to bench:tune) is refused, as is any
 * stress stream or any corruption outside the extra ones.
 */
export function tuningCorruptions(requested?: string, stress = false): string[] {
  if (stress)
    throw new RangeError(
      `bench:tune never runs the stress family (${STRESS_TRANSFORMS.join(', ')}): hyperparameters are chosen on the 4 extra corruptions only`,
    );
  const names = requested === undefined ? [...EXTRA_CORRUPTIONS] : requested.split(',').filter(Boolean);
  assertNotStress(names, 'bench:tune');
  const other = names.filter((n) => !(EXTRA_CORRUPTIONS as readonly string[]).includes(n));
  if (other.length > 0) throw new RangeError(`bench:tune looks only at the 4 extra corruptions (${EXTRA_CORRUPTIONS.join(', ')}), not ${other.join(', ')}`);
  if (names.length === 0) throw new RangeError('bench:tune needs at least one extra corruption');
  return names;
}
