// Every method, one line each. The API and the engine create adapters from
// this table, the demo lists it, the benchmark and the tuning run it, and
// docs/methods.md prints its defaults. Adding a method is its own file (see
// method.ts) and one line here (docs/contributing.md).
import { deyo } from './deyo';
import { eata } from './eata';
import type { MethodSpec } from './method';
import { sar } from './sar';
import { sarAlign } from './sar-align';
import { sarMsam } from './sar-msam';
import { source } from './source';
import { tent } from './tent';

/** The methods, in the order the demo and the reports list them: no adaptation, the baselines, then ours. */
export const METHODS = {
  source,
  tent,
  eata,
  sar,
  deyo,
  'sar-align': sarAlign,
  'sar-msam': sarMsam,
} as const;

export type MethodName = keyof typeof METHODS;

type OptionsOf<S> = S extends MethodSpec<string, infer O, infer _D> ? O : never;

/** What createAdapter takes: a method's name and its options. */
export type AdapterOptions = { [K in MethodName]: { method: K } & OptionsOf<(typeof METHODS)[K]> }[MethodName];

export const METHOD_NAMES = Object.keys(METHODS) as MethodName[];

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && Object.hasOwn(METHODS, name);
}

/** The entry of `name`; a RangeError naming the known ones for anything else. */
export function methodSpec(name: unknown): MethodSpec {
  if (!isMethodName(name)) throw new RangeError(`unknown method ${String(name)} (known: ${METHOD_NAMES.join(', ')})`);
  return METHODS[name] as MethodSpec;
}
