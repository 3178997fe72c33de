// What a method is to the rest of the library: one entry in registry.ts,
// made with defineMethod in the method's own file. The API and the engine
// create adapters from it, the demo lists its label, the benchmark and the
// tuning run it, and docs/methods.md prints its defaults.
import type { Backbone } from '../model/backbone';
import type { Adapter } from './adapter';
import type { Defaults } from './defaults';
import { checkOptions, SHARED_OPTIONS, type OptionRule, type OptionSchema } from './options';

export interface MethodSpec<N extends string = string, O extends object = object, D extends Defaults = Defaults> {
  /** The name callers pass as `method`. */
  readonly name: N;
  /** How the demo and the reports show it. */
  readonly label: string;
  /** Its defaults, each with where it came from. */
  readonly defaults: D;
  /** The options it takes beyond the shared ones (options.ts), with their types and ranges. */
  readonly options: OptionSchema;
  /** A method whose options this one also takes (sar-align takes SAR's). */
  readonly extends?: MethodSpec;
  /** Whether it needs the model's source statistics (sourceStats). */
  readonly needsSourceStats: boolean;
  /** Whether clean in-distribution images (fisherImages) improve it: EATA's anti-forgetting term. */
  readonly usesCleanImages: boolean;
  /** The adapter for `model` with `options` (already checked against `options`). */
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
 * Checks `options` against what `spec` declares (its own options, those of
 * the method it extends, the shared ones): unknown keys, wrong types and
 * values out of range are refused before anything is built.
 */
export function checkMethodOptions(spec: MethodSpec, options: object): void {
  checkOptions(spec.name, optionSchema(spec), options);
}

/** Every option `spec` takes: the shared ones, its own, and those of the method it extends. */
export function optionSchema(spec: MethodSpec): OptionSchema {
  const schema: Record<string, OptionRule> = { ...SHARED_OPTIONS };
  for (let s: MethodSpec | undefined = spec; s; s = s.extends) for (const [k, r] of Object.entries(s.options)) schema[k] ??= r;
  return schema;
}
