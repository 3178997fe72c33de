// Shared by the benchmark runners: machine description and BENCHMARKS.md section updates.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

/** The shipped ViT's folder in public/models/: the model the benchmarks run unless told otherwise. */
export const DEFAULT_MODEL = 'fmnist-vit';

/** Where a model's tuning record is (bench:tune writes it, bench reads it): the shipped ViT's is tuning.json. */
export const tuningFile = (model = DEFAULT_MODEL) => (model === DEFAULT_MODEL ? 'bench/results/tuning.json' : `bench/results/tuning-${model}.json`);

export function machineLine(browserVersion?: string): string {
  const cpu = cpus();
  const model = cpu[0]?.model.trim() ?? 'unknown CPU';
  const parts = [`${cpu.length} × ${model}`, `${Math.round(totalmem() / 2 ** 30)} GiB`, 'no GPU (WebGPU/WebGL on SwiftShader)'];
  if (browserVersion) parts.push(`Chromium ${browserVersion}`);
  return parts.join(', ');
}

/** Replaces (or appends) the section between `<!-- name -->` and `<!-- /name -->` in BENCHMARKS.md. */
export function writeSection(name: string, body: string, file = 'BENCHMARKS.md'): void {
  const open = `<!-- ${name} -->`;
  const close = `<!-- /${name} -->`;
  const text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Benchmarks\n\nEvery figure here comes from a command in this repository; each section names it, with the machine and backend.\n';
  const block = `${open}\n${body.trim()}\n${close}`;
  const start = text.indexOf(open);
  const end = text.indexOf(close);
  const next = start >= 0 && end > start ? text.slice(0, start) + block + text.slice(end + close.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next.endsWith('\n') ? next : `${next}\n`);
}

export const pct = (x: number, digits = 1) => (x * 100).toFixed(digits);

export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Sample standard deviation (n − 1); 0 for fewer than two values. */
export const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)));

/** Median (the mean of the middle two for an even count). */
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** a[i] / b[i], round by round. */
export const ratios = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!);
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
/** "median (min–max)" of ms samples. */
export const spread = (xs: number[]) => `${ms(median(xs))} (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})`;
/** The 1-minute load average. */
export const load1 = () => loadavg()[0]!.toFixed(2);
/** The three load averages and the core count. */
export const loadLine = () =>
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(', ')} on ${cpus().length} cores`;
