// WildTTA.create's options, checked before anything starts: an unknown key
// is refused with the nearest known one, a value of the wrong type or out of
// range with what it takes. The method's own options (methodOptions) are
// checked by the engine against the method's declared ones
// (methods/options.ts), the same way, whichever thread it runs on.
import { METHOD_NAMES, isMethodName } from '../methods/registry';
import { nearestName } from '../methods/options';
import { showValue } from '../model/errors';
import { AUTO_ORDER } from '../runtime/backend';

/** How long a worker may take to answer its first message before create() gives up (CreateOptions.workerTimeoutMs). */
export const DEFAULT_WORKER_TIMEOUT_MS = 30_000;

const KEYS = [
  'model',
  'revision',
  'hubUrl',
  'cache',
  'config',
  'sourceStats',
  'method',
  'lr',
  'methodOptions',
  'backend',
  'worker',
  'workerTimeoutMs',
  'invert',
  'cropFraction',
  'assetsUrl',
  'snapshotEvery',
  'onProgress',
] as const;

const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);

function refuse(key: string, takes: string, v: unknown): never {
  throw new RangeError(
    `WildTTA.create: option ${key} must be ${takes}, got ${showValue(v)}${typeof v === 'string' && takes.includes('number') ? ' (a string)' : ''}`,
  );
}

/** Throws a RangeError for the first option that is unknown or wrong. */
export function checkCreateOptions(o: Record<string, unknown>): void {
  for (const key of Object.keys(o)) {
    if (o[key] === undefined || (KEYS as readonly string[]).includes(key)) continue;
    const near = nearestName(key, KEYS);
    throw new RangeError(`WildTTA.create: unknown option '${key}'${near ? `; did you mean '${near}'?` : ''} (known: ${KEYS.join(', ')})`);
  }
  const given = <K extends (typeof KEYS)[number]>(k: K) => o[k] !== undefined;
  if (given('method') && !isMethodName(o.method)) {
    const near = typeof o.method === 'string' ? nearestName(o.method, METHOD_NAMES) : undefined;
    throw new RangeError(`WildTTA.create: unknown method ${showValue(o.method)}${near ? `; did you mean '${near}'?` : ''} (known: ${METHOD_NAMES.join(', ')})`);
  }
  if (given('lr') && !(typeof o.lr === 'number' && Number.isFinite(o.lr) && o.lr >= 0)) refuse('lr', 'a finite number ≥ 0', o.lr);
  if (given('methodOptions') && !isObject(o.methodOptions)) refuse('methodOptions', 'an object', o.methodOptions);
  if (given('config') && !isObject(o.config)) refuse('config', 'an object (config.json)', o.config);
  if (given('backend') && !['auto', ...AUTO_ORDER].includes(o.backend as string))
    refuse('backend', `one of 'auto', ${AUTO_ORDER.map((b) => `'${b}'`).join(', ')}`, o.backend);
  if (given('cache') && typeof o.cache !== 'boolean') refuse('cache', 'true or false', o.cache);
  if (given('revision') && typeof o.revision !== 'string') refuse('revision', 'a branch, tag or commit sha (a string)', o.revision);
  if (given('hubUrl') && typeof o.hubUrl !== 'string') refuse('hubUrl', "the hub's address (a string)", o.hubUrl);
  if (given('worker') && typeof o.worker !== 'boolean') refuse('worker', 'true or false', o.worker);
  if (given('workerTimeoutMs') && !(typeof o.workerTimeoutMs === 'number' && o.workerTimeoutMs > 0 && !Number.isNaN(o.workerTimeoutMs)))
    refuse('workerTimeoutMs', 'a number of milliseconds > 0 (Infinity: wait forever)', o.workerTimeoutMs);
  if (given('invert') && !(typeof o.invert === 'boolean' || o.invert === 'auto')) refuse('invert', "true, false or 'auto'", o.invert);
  if (given('cropFraction') && !(typeof o.cropFraction === 'number' && o.cropFraction > 0 && o.cropFraction <= 1))
    refuse('cropFraction', 'a number > 0 and ≤ 1', o.cropFraction);
  if (given('assetsUrl') && typeof o.assetsUrl !== 'string') refuse('assetsUrl', 'a folder URL (a string)', o.assetsUrl);
  if (given('snapshotEvery') && !(typeof o.snapshotEvery === 'number' && Number.isInteger(o.snapshotEvery) && o.snapshotEvery >= 1))
    refuse('snapshotEvery', 'a whole number ≥ 1', o.snapshotEvery);
  if (given('onProgress') && typeof o.onProgress !== 'function') refuse('onProgress', 'a function', o.onProgress);
}
