// The demo's settings, read from and written back to the URL so a setup can be
// shared as a link (and so tests can start the page in a known state).
import type { BackendChoice } from '../src/runtime/backend';
// Types only: the registry's code would bring tfjs onto the page's thread (the engine's worker has it and sends its cards).
import type { MethodName } from '../src/methods/registry';
import type { MethodCard, MethodOptionValue } from '../src/runtime/engine-types';
import { ALL_CORRUPTIONS } from '../src/data/corruptions/names';
import { CORRUPTION_REGIMES, DEFAULT_REGIME, type CorruptionRegime } from '../src/data/corruptions/regime';

export type InputKind = 'camera' | 'stream';
export type InvertSetting = 'auto' | 'on' | 'off';

export interface DemoConfig {
  backend: BackendChoice;
  input: InputKind;
  /** 'none', a corruption name, 'cycle' or 'mixed'. */
  corruption: string;
  severity: number;
  /** Whose corruption constants: 'imagenet64' (paper strength) or 'cifar' (mild). */
  regime: CorruptionRegime;
  /** Frames per corruption in 'cycle' mode. */
  cycle: number;
  /** From the URL unchecked until the engine's cards come (see knownMethod). */
  method: MethodName;
  /** Learning rate; null means the method's tuned default. */
  lr: number | null;
  compare: boolean;
  /** Labeled-stream pace. */
  fps: number | 'max';
  /** Stop after this many frames (0: run until stopped). */
  frames: number;
  /** Model folder or .safetensors URL; '' is the shipped model. */
  model: string;
  invert: InvertSetting;
  seed: number;
}

const BACKENDS: readonly BackendChoice[] = ['auto', 'webgpu', 'webgl', 'wasm', 'cpu'];

/**
 * A method's learning rate and options: the library's own defaults (its
 * registry entry, sent by the engine as the method's card), so the demo runs
 * what `WildTTA.create({ method })` runs. No adaptation has no learning rate.
 */
export function tunedOptions(card: MethodCard): { lr: number; options: Record<string, MethodOptionValue> } {
  return { lr: card.lr ?? 0, options: {} };
}

export const DEFAULTS: DemoConfig = {
  backend: 'auto',
  input: 'camera',
  corruption: 'gaussian_noise',
  severity: 5,
  regime: DEFAULT_REGIME,
  cycle: 150,
  // The method the wild benchmark found best on the shipped model (BENCHMARKS.md), so the first minute shows a gain.
  method: 'sar-align',
  lr: null,
  compare: true,
  fps: 20,
  frames: 0,
  model: '',
  invert: 'auto',
  seed: 1,
};

/** The method picker's entries: the recommended method first, then the engine's order. */
export function methodChoices(cards: readonly MethodCard[]): Array<{ name: MethodName; text: string }> {
  const first = cards.filter((c) => c.name === DEFAULTS.method);
  return [...first, ...cards.filter((c) => c.name !== DEFAULTS.method)].map((c) => ({
    name: c.name,
    text: c.name === DEFAULTS.method ? `${c.label} (recommended)` : c.label,
  }));
}

/**
 * `method` when the engine runs it, else the default (or, should the engine
 * not know the default, its first method). A ?method= from the URL can only
 * be checked here: the page learns the names from the engine's worker.
 */
export function knownMethod(method: string, cards: readonly MethodCard[]): MethodName {
  if (cards.some((c) => c.name === method)) return method as MethodName;
  return cards.some((c) => c.name === DEFAULTS.method) ? DEFAULTS.method : (cards[0]?.name ?? DEFAULTS.method);
}

function oneOf<T extends string>(v: string | null, options: readonly T[], fallback: T): T {
  return v !== null && (options as readonly string[]).includes(v) ? (v as T) : fallback;
}

function intIn(v: string | null, lo: number, hi: number, fallback: number): number {
  const n = v === null ? NaN : Number(v);
  return Number.isInteger(n) && n >= lo && n <= hi ? n : fallback;
}

export function readConfig(search: string): DemoConfig {
  const p = new URLSearchParams(search);
  const corruption = p.get('corruption');
  const lr = p.get('lr') === null ? NaN : Number(p.get('lr'));
  const fps = p.get('fps');
  return {
    backend: oneOf(p.get('backend'), BACKENDS, DEFAULTS.backend),
    input: oneOf(p.get('input'), ['camera', 'stream'] as const, DEFAULTS.input),
    corruption:
      corruption !== null &&
      (corruption === 'none' || corruption === 'cycle' || corruption === 'mixed' || (ALL_CORRUPTIONS as readonly string[]).includes(corruption))
        ? corruption
        : DEFAULTS.corruption,
    severity: intIn(p.get('severity'), 1, 5, DEFAULTS.severity),
    regime: oneOf(p.get('regime'), CORRUPTION_REGIMES, DEFAULTS.regime),
    cycle: intIn(p.get('cycle'), 10, 5000, DEFAULTS.cycle),
    method: (p.get('method') ?? DEFAULTS.method) as MethodName,
    lr: Number.isFinite(lr) && lr >= 0 ? lr : null,
    compare: p.has('compare') ? p.get('compare') !== '0' : DEFAULTS.compare,
    fps: fps === 'max' ? 'max' : intIn(fps, 1, 120, DEFAULTS.fps as number),
    frames: intIn(p.get('frames'), 0, 10_000_000, DEFAULTS.frames),
    model: p.get('model') ?? DEFAULTS.model,
    invert: oneOf(p.get('invert'), ['auto', 'on', 'off'] as const, DEFAULTS.invert),
    seed: intIn(p.get('seed'), 0, 2 ** 31 - 1, DEFAULTS.seed),
  };
}

/** The settings that differ from the defaults, as a query string. */
export function writeConfig(c: DemoConfig): string {
  const p = new URLSearchParams();
  for (const key of Object.keys(DEFAULTS) as Array<keyof DemoConfig>) {
    const v = c[key];
    if (v === DEFAULTS[key] || v === null) continue;
    p.set(key, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}
