// The options a method takes, declared with each method (its registry
// entry's `options`) and checked at the door (createAdapter) before anything
// is built: an unknown key is refused with the nearest known one, a number
// out of its range or of the wrong type with the range. A typo ("margin"
// for "marginFraction") or a string ("far") would otherwise run silently as
// the default, or as NaN arithmetic.
import { showValue } from '../model/errors';

/** One option: its type and, for numbers, its range. */
export type OptionRule =
  | {
      type: 'number';
      /** Lower bound, inclusive unless `above`. */
      min?: number;
      /** Strict lower bound. */
      above?: number;
      /** Upper bound, inclusive unless `below`. */
      max?: number;
      /** Strict upper bound. */
      below?: number;
      integer?: boolean;
      /** Infinity is a meaningful value (no clipping...). */
      infinite?: boolean;
    }
  | { type: 'boolean' }
  /** true/false, or an object of the nested options. */
  | { type: 'switch'; fields: OptionSchema }
  /** Given by code, not by a page (tensors, functions, statistics): not checked here. */
  | { type: 'code'; what: string };

export type OptionSchema = Readonly<Record<string, OptionRule>>;

/** Options every method takes (adapter.ts's CommonOptions), and the keys createAdapter itself reads. */
export const SHARED_OPTIONS: OptionSchema = {
  method: { type: 'code', what: "the method's name" },
  warmup: { type: 'boolean' },
  // 0 is a valid ablation: the forward and filters run, nothing moves.
  lr: { type: 'number', min: 0 },
  momentum: { type: 'number', min: 0, below: 1 },
  skipLastBlocks: { type: 'number', min: 0, integer: true },
  includeFinalNorm: { type: 'boolean' },
  recenter: { type: 'switch', fields: { decay: { type: 'number', min: 0, below: 1 }, biasCorrected: { type: 'boolean' } } },
  inputAlign: { type: 'switch', fields: { quantile: { type: 'number', min: 0, below: 0.5 } } },
  sourceStats: { type: 'code', what: "the model's source statistics" },
};

/** The reliable filter's margin (MarginOptions), for the methods that have one. */
export const MARGIN_OPTIONS: OptionSchema = { marginFraction: { type: 'number', min: 0 } };

function range(r: Extract<OptionRule, { type: 'number' }>): string {
  const lo = r.above !== undefined ? `> ${r.above}` : r.min !== undefined ? `≥ ${r.min}` : undefined;
  const hi = r.below !== undefined ? `< ${r.below}` : r.max !== undefined ? `≤ ${r.max}` : undefined;
  const kind = r.integer ? 'a whole number' : r.infinite ? 'a number' : 'a finite number';
  return [kind, [lo, hi].filter(Boolean).join(' and ')].filter(Boolean).join(' ');
}

function inRange(v: number, r: Extract<OptionRule, { type: 'number' }>): boolean {
  if (Number.isNaN(v) || (!Number.isFinite(v) && !r.infinite) || (r.integer && Number.isFinite(v) && !Number.isInteger(v))) return false;
  return !(
    (r.min !== undefined && v < r.min) ||
    (r.above !== undefined && v <= r.above) ||
    (r.max !== undefined && v > r.max) ||
    (r.below !== undefined && v >= r.below)
  );
}

/** Edit distance, for "did you mean": small strings, so the plain table. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diag + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** The known name nearest to `key`: by edit distance, or one that starts with it ("margin" → "marginFraction"). */
export function nearestName(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of known) {
    const prefix = k.toLowerCase().startsWith(lower) || lower.startsWith(k.toLowerCase());
    const score = prefix && Math.min(k.length, key.length) >= 3 ? 0.5 : distance(key, k);
    if (score < bestScore) [best, bestScore] = [k, score];
  }
  return bestScore <= Math.max(2, key.length / 3) ? best : undefined;
}

/**
 * Checks `options` against `schema`; throws a RangeError naming the option,
 * what it got and what it takes. `where`
 * prefixes the messages ("sar: option ...").
 */
export function checkOptions(where: string, schema: OptionSchema, options: object, path = ''): void {
  const known = Object.keys(schema);
  for (const [key, v] of Object.entries(options)) {
    const name = `${path}${key}`;
    const rule = schema[key];
    // A key given as undefined is a key not given (a caller spreading optional values).
    if (v === undefined) continue;
    if (rule === undefined) {
      const near = nearestName(key, known);
      throw new RangeError(
        `${where}: unknown option '${name}'${near ? `; did you mean '${path}${near}'?` : ''} (known: ${known.filter((k) => schema[k]!.type !== 'code' || k === 'sourceStats').join(', ')})`,
      );
    }
    if (rule.type === 'number') {
      if (typeof v !== 'number') throw new RangeError(`${where}: option ${name} must be ${range(rule)}, got ${showValue(v)} (${typeof v})`);
      if (!inRange(v, rule)) throw new RangeError(`${where}: option ${name} must be ${range(rule)}, got ${showValue(v)}`);
    } else if (rule.type === 'boolean') {
      if (typeof v !== 'boolean') throw new RangeError(`${where}: option ${name} must be true or false, got ${showValue(v)}`);
    } else if (rule.type === 'switch') {
      if (typeof v === 'boolean') continue;
      if (v === null || typeof v !== 'object' || Array.isArray(v))
        throw new RangeError(`${where}: option ${name} must be true, false or an object of ${Object.keys(rule.fields).join(', ')}; got ${showValue(v)}`);
      checkOptions(where, rule.fields, v, `${name}.`);
    }
  }
}
