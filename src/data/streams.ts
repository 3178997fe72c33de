/**
 * Seeded test streams over a labeled split, as in the SAR paper's wild settings.
 * A stream is a list of items (which image, which corruption and severity, a
 * per-item seed for the corruption's randomness) cut into segments; the model
 * is reset to its source weights at the start of each segment.
 */
import { mulberry32, shuffle } from './random';

export interface StreamItem {
  /** Index of the image in the split. */
  index: number;
  label: number;
  corruption: string;
  severity: number;
  /** Seed for the corruption's random draws on this item. */
  seed: number;
}

export interface StreamSegment {
  /** What the segment is (a corruption name, or 'mixed'). */
  name: string;
  start: number;
  end: number;
}

export interface Stream {
  scenario: 'per-corruption' | 'mixed' | 'label-shift';
  items: StreamItem[];
  /** The adapter is reset at the start of every segment (no reset inside one). */
  segments: StreamSegment[];
}

export interface SplitPools {
  /** Images the evaluation streams draw from. */
  evaluation: number[];
  /**
   * Clean in-distribution images kept out of every evaluation stream, for
   * what a method needs beforehand (EATA's Fisher) and for tuning.
   */
  clean: number[];
}

/** Holds the last `perClass` images of each class out of evaluation (deterministic, no seed). */
export function splitPools(labels: ArrayLike<number>, numClasses: number, perClass = 100): SplitPools {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  const clean = new Set(byClass.flatMap((idx) => idx.slice(-perClass)));
  const evaluation: number[] = [];
  for (let i = 0; i < labels.length; i++) if (!clean.has(i)) evaluation.push(i);
  return { evaluation, clean: [...clean].sort((a, b) => a - b) };
}

const seedFor = (seed: number, salt: number) => (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(salt + 1, 0x85ebca6b)) >>> 0;

export interface StreamOptions {
  corruptions: readonly string[];
  severity: number;
  /** Samples per corruption. */
  perCorruption: number;
  seed: number;
}

/** Batch size 1, one corruption at a time, each corruption's images shuffled; reset between corruptions. */
export function perCorruptionStream(labels: ArrayLike<number>, pool: number[], o: StreamOptions): Stream {
  const items: StreamItem[] = [];
  const segments: StreamSegment[] = [];
  o.corruptions.forEach((corruption, c) => {
    const rand = mulberry32(seedFor(o.seed, 1000 + c));
    const chosen = shuffle(pool, rand).slice(0, o.perCorruption);
    const start = items.length;
    chosen.forEach((index, k) => items.push({ index, label: labels[index]!, corruption, severity: o.severity, seed: seedFor(o.seed, start + k) }));
    segments.push({ name: corruption, start, end: items.length });
  });
  return { scenario: 'per-corruption', items, segments };
}

/** Every corruption's samples interleaved in one shuffled stream; no reset. */
export function mixedStream(labels: ArrayLike<number>, pool: number[], o: StreamOptions): Stream {
  const per = perCorruptionStream(labels, pool, o);
  const items = shuffle(per.items, mulberry32(seedFor(o.seed, 77)));
  return { scenario: 'mixed', items, segments: [{ name: 'mixed', start: 0, end: items.length }] };
}

export interface LabelShiftOptions extends StreamOptions {
  numClasses: number;
  /**
   * Imbalance ratio: in block k the block's class is `ratio` times as likely
   * as each other class. The paper's extreme setting is 500,000.
   */
  imbalanceRatio?: number;
}

/**
 * Online imbalanced label shift, per corruption, following the paper's
 * construction: the stream is cut into one block per class (classes in a
 * seeded random order); at each step the label is drawn from the block's
 * distribution, where the block's class has probability ratio/(ratio + C − 1)
 * and every other class 1/(ratio + C − 1); then an image of that label is
 * taken from the pool (without replacement while the class has unused images).
 * Reset between corruptions.
 */
export function labelShiftStream(labels: ArrayLike<number>, pool: number[], o: LabelShiftOptions): Stream {
  const C = o.numClasses;
  const ratio = o.imbalanceRatio ?? 500_000;
  const minor = 1 / (ratio + C - 1);
  const major = ratio * minor;
  const items: StreamItem[] = [];
  const segments: StreamSegment[] = [];
  o.corruptions.forEach((corruption, c) => {
    const rand = mulberry32(seedFor(o.seed, 2000 + c));
    const byClass: number[][] = Array.from({ length: C }, () => []);
    for (const i of shuffle(pool, rand)) byClass[labels[i]!]!.push(i);
    const cursor = new Array<number>(C).fill(0);
    const order = shuffle(
      Array.from({ length: C }, (_, k) => k),
      rand,
    );
    const perBlock = Math.floor(o.perCorruption / C);
    const start = items.length;
    for (const blockClass of order) {
      for (let t = 0; t < perBlock; t++) {
        // Inverse-CDF draw from the block's class distribution.
        let u = rand();
        let label = C - 1;
        for (let k = 0; k < C; k++) {
          u -= k === blockClass ? major : minor;
          if (u < 0) {
            label = k;
            break;
          }
        }
        const list = byClass[label]!;
        if (list.length === 0) throw new RangeError(`the pool has no image of class ${label}`);
        const index = list[cursor[label]! % list.length]!;
        cursor[label]!++;
        items.push({ index, label, corruption, severity: o.severity, seed: seedFor(o.seed, items.length) });
      }
    }
    segments.push({ name: corruption, start, end: items.length });
  });
  return { scenario: 'label-shift', items, segments };
}
