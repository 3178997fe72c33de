// What a method is to the rest of the library: one entry in registry.ts,
// made with defineMethod in the method's own file. The API and the engine
// create adapters from it, the demo lists its label, the benchmark and the
// tuning run it, and docs/methods.md prints its defaults.
import type { Backbone } from '../model/backbone';
import type { Adapter } from './adapter';
import type { Defaults } from './defaults';
import { showValue } from '../model/errors';

export interface MethodSpec<N extends string = string, O extends object = object, D extends Defaults = Defaults> {
  /** The name callers pass as `method`. */
  readonly name: N;
  /** How the demo and the reports show it. */
  readonly label: string;
  /** Its defaults, each with where it came from. */
  readonly defaults: D;
  /** A method whose options this one also takes (sar-align takes SAR's). */
  readonly extends?: MethodSpec;
  /** Whether it needs the model's source statistics (sourceStats). */
  readonly needsSourceStats: boolean;
  /** Whether clean in-distribution images (fisherImages) improve it: EATA's anti-forgetting term. */
  readonly usesCleanImages: boolean;
  /** The adapter for `model` with `options` (already checked: every number option finite). */
  create(model: Backbone, options: O): Adapter | Promise<Adapter>;
  /** The configurations bench:tune tries on the 4 extra corruptions (none: nothing to tune). */
  readonly searchSpace: readonly O[];
}

type Flags = 'needsSourceStats' | 'usesCleanImages';

/** A method's registry entry, typed by its name and options; the flags default to false. */
export function defineMethod<N extends string, O extends object, D extends Defaults>(
  spec: Omit<MethodSpec<N, O, D>, Flags> & Partial<Pick<MethodSpec, Flags>>,
): MethodSpec<N, O, D> {
  return { ...spec, needsSourceStats: spec.needsSourceStats ?? false, usesCleanImages: spec.usesCleanImages ?? false };
}

/**
 * Every number-valued option of the method (its defaults, and those of the
 * method it extends, and the shared lr, momentum and skipLastBlocks) must be
 * a finite number when given: a string or a NaN would otherwise run silently
 * wrong (a NaN learning rate, a SAM radius of "far").
 */
export function checkNumberOptions(spec: MethodSpec, options: object): void {
  const keys = new Set(['lr', 'momentum', 'skipLastBlocks']);
  for (let s: MethodSpec | undefined = spec; s; s = s.extends) {
    for (const [key, d] of Object.entries(s.defaults)) if (typeof d.value === 'number' && !(d.option ?? '').includes('.')) keys.add(d.option ?? key);
  }
  const given = options as Record<string, unknown>;
  for (const key of keys) {
    const v = given[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v)))
      throw new RangeError(`${spec.name}: option ${key} must be a finite number, got ${showValue(v)}`);
  }
}
