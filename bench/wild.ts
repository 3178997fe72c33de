// The wild benchmark in a real browser: Playwright drives headless Chromium,
// which runs scenarios × methods × seeds on the shipped model, in the page.
//
//   npm run bench -- [--quick] [--backend wasm|webgpu|webgl] [--seeds 1,2,3] [--parallel 2] [--resume]
//                    [--scenarios per-corruption,mixed,label-shift] [--methods source,tent,eata,sar,deyo]
//                    [--per-corruption 300] [--severity 5] [--no-write] [--model fmnist-vit|fmnist-resnet-gn]
//                    [--stress]
//
// --stress runs the stress family (src/data/stress.ts: quarter turns and
// flips, never used for tuning) in place of the 15 test corruptions, by
// default the mixed and label-shift scenarios with source, sar and sar-align,
// into bench/results/stress-<regime>[-<model>]/ and its own section of
// BENCHMARKS.md (bench:wild:stress[:<model>]). The method entry
// sar-align-no-agreement is sar-align with its agreement rule off
// (agreementFloor 0), for a before/after of that rule.
//
// --model names a folder of public/models/ (default the shipped ViT). Another
// model reads its own tuning (bench/results/tuning-<model>.json), writes its
// records to bench/results/<regime>-<model>/ and its own section of
// BENCHMARKS.md. `npm run bench:gn-vs-ln` (gn-vs-ln.ts) runs both shipped
// models side by side.
// Hyperparameters come from bench/results/tuning.json (npm run bench:tune, which
// looks only at the 4 extra corruptions). Writes bench/results/<scenario>-<method>-s<seed>.json,
// accuracy-over-time PNGs for the mixed and label-shift streams, and the tables in BENCHMARKS.md.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CORRUPTIONS } from '../src/data/corruptions';
import { METHOD_NAMES, type AdapterOptions } from '../src/methods';
import { shutdown, withPage, type SessionPage } from '../tools/lib/session';
import type { StreamScore } from './run-stream';
import type { Scenario, WildRun } from './wild-page';
import type { ChartSpec } from './plot-page';
import { DEFAULT_MODEL, machineLine, mean, pct, std, tuningFile, writeSection } from './report';
import { CORRUPTION_REGIMES, REGIME_LABELS, type CorruptionRegime } from '../src/data/corruptions/regime';
import { STRESS_STREAMS, STRESS_TRANSFORMS } from '../src/data/stress';

/** Benchmark entries: the methods (the registry's order), plus `recenter` after no adaptation (no adaptation with re-centred features, sar-align's forward-only part). */
export const METHODS: readonly string[] = ['source', 'recenter', ...METHOD_NAMES.filter((m) => m !== 'source')];
export const SCENARIOS: readonly Scenario[] = ['per-corruption', 'mixed', 'label-shift'];

export interface WildBenchOptions {
  backend?: 'wasm' | 'webgpu' | 'webgl';
  seeds: number[];
  scenarios: Scenario[];
  methods: string[];
  corruptions: string[];
  perCorruption: number;
  severity: number;
  /** Corruption constants (default imagenet64). */
  regime?: CorruptionRegime;
  /** `corruptions` are the stress family's streams (src/data/stress.ts): its own report section. */
  stress?: boolean;
  outDir: string;
  /** Folder of public/models/ (default the shipped ViT, fmnist-vit). */
  model?: string;
  /** Per-method options (lr etc.), e.g. the tuning's choice. */
  methodOptions: Record<string, AdapterOptions>;
  plots: boolean;
  /** Clean images for EATA's Fisher (default 500). */
  fisherCount?: number;
  /** Pages run at once (default 1); each takes the next job when it is free. */
  parallel?: number;
  /** Keep the records already in outDir that match these options; run only the missing jobs. */
  resume?: boolean;
  /**
   * Run only slice `index` (1-based) of `count`: job k of the grid (seed ×
   * scenario × method, in that order) belongs to slice (k mod count) + 1, so
   * n machines running slices 1..n cover the grid once (bench:merge joins them).
   */
  shard?: { index: number; count: number };
  log?: (line: string) => void;
}

export interface WildRunRecord {
  scenario: Scenario;
  method: string;
  seed: number;
  backend: string;
  /** Absent in records from before the regimes (they ran the cifar constants). */
  regime?: CorruptionRegime;
  /** Folder of public/models/ the run adapted (absent in records from before a second model: fmnist-vit). */
  model?: string;
  options: AdapterOptions;
  score: StreamScore;
}

const modelUrl = (model = DEFAULT_MODEL) => `/models/${model}/`;
const MODEL_URL = modelUrl();
const DATA_URL = '/data/fashion-mnist/';

/** The regime bench/results/tuning.json was chosen at (the first tuning, before the regimes, ran the cifar constants). */
function tunedAt(file = tuningFile()): string {
  return existsSync(file) ? ((JSON.parse(readFileSync(file, 'utf8')) as { regime?: string }).regime ?? 'cifar') : 'none';
}

/** The chosen hyperparameters from the tuning run, or the defaults when there is none. */
export function loadMethodOptions(file = tuningFile()): Record<string, AdapterOptions> {
  const chosen: Record<string, AdapterOptions> = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as { chosen: Record<string, AdapterOptions> }).chosen
    : {};
  const out: Record<string, AdapterOptions> = {};
  for (const m of METHODS) out[m] = m === 'recenter' ? { method: 'source', recenter: true } : (chosen[m] ?? ({ method: m } as AdapterOptions));
  // Not in the default list: sar-align as it was before its agreement rule (issue 25 item 7), for a before/after.
  out['sar-align-no-agreement'] = { ...out['sar-align']!, agreementFloor: 0 } as AdapterOptions;
  return out;
}

async function openBench(h: SessionPage): Promise<void> {
  await h.page.waitForFunction('window.wildttaWild !== undefined', undefined, { timeout: 120_000 });
}

/** Picks the fastest of webgpu, webgl and wasm for a batch-1 forward of the shipped model. */
async function fastestBackend(log: (s: string) => void): Promise<'wasm' | 'webgpu' | 'webgl'> {
  let best: { backend: 'wasm' | 'webgpu' | 'webgl'; ms: number } | undefined;
  for (const backend of ['webgpu', 'webgl', 'wasm'] as const) {
    try {
      const r = await withPage(
        async (h) => {
          await openBench(h);
          return (await h.page.evaluate(`window.wildttaWild.probeSpeed(${JSON.stringify({ backend, modelUrl: MODEL_URL, dataUrl: DATA_URL })})`)) as {
            backend: string;
            ms: number;
          };
        },
        { path: 'bench/wild.html' },
      );
      log(`  ${backend}: ${r.ms.toFixed(2)} ms per forward`);
      if (r.backend === backend && (!best || r.ms < best.ms)) best = { backend, ms: r.ms };
    } catch (e) {
      log(`  ${backend}: unavailable (${(e as Error).message.split('\n')[0]})`);
    }
  }
  if (!best) throw new Error('no backend could run the model');
  return best.backend;
}

export async function runWildBench(
  o: WildBenchOptions,
): Promise<{ records: WildRunRecord[]; backend: string; browser: string; seconds: number; kept: number }> {
  const log = o.log ?? ((s: string) => console.log(s));
  const t0 = Date.now();
  let backend = o.backend;
  if (!backend) {
    log('choosing the fastest backend:');
    backend = await fastestBackend(log);
  }
  log(`backend: ${backend}`);
  mkdirSync(o.outDir, { recursive: true });
  const records: WildRunRecord[] = [];
  let browser = '';
  const fileOf = (scenario: string, method: string, seed: number) => join(o.outDir, `${scenario}-${method.replace(/[^\w.-]+/g, '_')}-s${seed}.json`);
  // Seed by seed, so a run cut short has every scenario and method at the first seeds.
  let jobs = o.seeds.flatMap((seed) => o.scenarios.flatMap((scenario) => o.methods.map((method) => ({ scenario, seed, method }))));
  if (o.shard) jobs = jobs.filter((_, k) => k % o.shard!.count === o.shard!.index - 1);
  if (o.resume) {
    // A finished job's record is kept if it was run with the same options; the rest run again.
    jobs = jobs.filter(({ scenario, seed, method }) => {
      const file = fileOf(scenario, method, seed);
      if (!existsSync(file)) return true;
      const r = JSON.parse(readFileSync(file, 'utf8')) as WildRunRecord;
      const same =
        JSON.stringify(r.options) === JSON.stringify(o.methodOptions[method] ?? { method }) &&
        r.score.total === expectedTotal(scenario, o) &&
        r.backend === backend &&
        (r.model ?? DEFAULT_MODEL) === (o.model ?? DEFAULT_MODEL) &&
        (r.regime ?? 'cifar') === (o.regime ?? 'imagenet64');
      if (same) {
        records.push(r);
        log(`${scenario} seed ${seed} ${method}: kept from ${file}`);
      }
      return !same;
    });
  }
  const kept = records.length;
  // Each page is its own renderer process, so pages run side by side on separate cores.
  const lanes = Math.max(1, Math.min(o.parallel ?? 1, jobs.length));
  let next = 0;
  const lane = (id: number) =>
    withPage(
      async (h) => {
        browser = h.page.context().browser()?.version() ?? '';
        let label = '';
        await h.page.exposeFunction('wildttaProgress', (done: number, total: number) => {
          if (process.stdout.isTTY && lanes === 1) process.stdout.write(`\r${label} ${done}/${total}   `);
        });
        await openBench(h);
        while (next < jobs.length) {
          const { scenario, seed, method } = jobs[next++]!;
          const options = o.methodOptions[method] ?? ({ method } as AdapterOptions);
          label = `${lanes > 1 ? `[page ${id + 1}] ` : ''}${scenario} seed ${seed} ${method}:`;
          const run: WildRun = {
            backend: backend!,
            modelUrl: modelUrl(o.model),
            dataUrl: DATA_URL,
            scenario,
            corruptions: o.corruptions,
            severity: o.severity,
            regime: o.regime ?? 'imagenet64',
            perCorruption: o.perCorruption,
            seed,
            method: options,
            fisherCount: o.fisherCount,
            trace: scenario !== 'per-corruption',
          };
          const score = (await h.page.evaluate(`window.wildttaWild.run(${JSON.stringify(run)})`)) as StreamScore & { backend: string };
          if (process.stdout.isTTY && lanes === 1) process.stdout.write('\r');
          log(`${label} ${pct(score.accuracy)}% (${score.updates} updates, ${score.resets} resets, ${(score.ms / 1000).toFixed(0)} s)`);
          const record: WildRunRecord = {
            scenario,
            method,
            seed,
            backend: score.backend,
            regime: o.regime ?? 'imagenet64',
            model: o.model ?? DEFAULT_MODEL,
            options,
            score,
          };
          records.push(record);
          writeFileSync(fileOf(scenario, method, seed), `${JSON.stringify(record)}\n`);
        }
      },
      { path: 'bench/wild.html' },
    );
  await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));
  if (o.plots) await drawPlots(records, o);
  return { records, backend, browser, seconds: (Date.now() - t0) / 1000, kept };
}

/** Samples in one run of a scenario (the label-shift stream has whole blocks per class). */
function expectedTotal(scenario: Scenario, o: WildBenchOptions): number {
  // The shipped model has 10 classes: one block per class.
  const per = scenario === 'label-shift' ? Math.floor(o.perCorruption / 10) * 10 : o.perCorruption;
  return per * o.corruptions.length;
}

/** Percent accuracy per corruption and on average for one run. */
export function accuracyByCorruption(r: WildRunRecord, corruptions: string[]): { per: Record<string, number>; average: number } {
  const per: Record<string, number> = {};
  for (const c of corruptions) {
    const t = r.score.byCorruption[c];
    if (t && t.total > 0) per[c] = t.correct / t.total;
  }
  const vals = Object.values(per);
  return { per, average: vals.length ? mean(vals) : r.score.accuracy };
}

export function scenarioTable(records: WildRunRecord[], scenario: Scenario, methods: string[], corruptions: string[]): string {
  const short = (c: string) => c.replace('_noise', '').replace('_blur', '').replace('_transform', '').replace('_compression', '');
  const head = `| method | ${corruptions.map(short).join(' | ')} | **avg** |`;
  const sep = `|---|${corruptions.map(() => '---').join('|')}|---|`;
  const rows = methods.map((m) => {
    const runs = records.filter((r) => r.scenario === scenario && r.method === m).map((r) => accuracyByCorruption(r, corruptions));
    if (runs.length === 0) return `| ${m} | ${corruptions.map(() => '–').join(' | ')} | – |`;
    const cell = (xs: number[]) => (xs.length > 1 ? `${pct(mean(xs))} ± ${pct(std(xs))}` : pct(mean(xs)));
    return `| ${m} | ${corruptions.map((c) => cell(runs.map((r) => r.per[c] ?? NaN))).join(' | ')} | **${cell(runs.map((r) => r.average))}** |`;
  });
  return [head, sep, ...rows].join('\n');
}

/** Each method's average over the corruptions per scenario (mean ± std over seeds), and its difference from no adaptation. */
export function summaryTable(records: WildRunRecord[], scenarios: readonly Scenario[], methods: string[], corruptions: string[]): string {
  const avgs = (scenario: Scenario, m: string) =>
    records
      .filter((r) => r.scenario === scenario && r.method === m)
      .sort((a, b) => a.seed - b.seed)
      .map((r) => accuracyByCorruption(r, corruptions).average);
  const head = `| method | ${scenarios.join(' | ')} |`;
  const sep = `|---|${scenarios.map(() => '---').join('|')}|`;
  const rows = methods.map((m) => {
    const cells = scenarios.map((s) => {
      const v = avgs(s, m);
      if (v.length === 0) return '–';
      const base = avgs(s, 'source');
      // Paired by seed: the same stream with and without adaptation.
      const diffs = base.length === v.length && m !== 'source' ? v.map((x, i) => x - base[i]!) : [];
      const d = diffs.length ? ` (${mean(diffs) >= 0 ? '+' : ''}${pct(mean(diffs))}${diffs.length > 1 ? ` ± ${pct(std(diffs))}` : ''})` : '';
      return `${pct(mean(v))}${v.length > 1 ? ` ± ${pct(std(v))}` : ''}${d}`;
    });
    return `| ${m} | ${cells.join(' | ')} |`;
  });
  return [head, sep, ...rows].join('\n');
}

/** Moving accuracy (window w) sampled every `every` steps. */
function movingAccuracy(correct: number[], w: number, every: number): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  let sum = 0;
  for (let i = 0; i < correct.length; i++) {
    sum += correct[i]!;
    if (i >= w) sum -= correct[i - w]!;
    if (i >= w - 1 && (i + 1) % every === 0) {
      x.push(i + 1);
      y.push((100 * sum) / w);
    }
  }
  return { x, y };
}

export async function drawPlots(records: WildRunRecord[], o: WildBenchOptions): Promise<void> {
  const seed = o.seeds[0]!;
  await withPage(
    async (h) => {
      await h.page.waitForFunction('window.drawChart !== undefined', undefined, { timeout: 60_000 });
      for (const scenario of ['mixed', 'label-shift'] as const) {
        const runs = o.methods.map((m) => records.find((r) => r.scenario === scenario && r.method === m && r.seed === seed)).filter((r) => r?.score.trace);
        if (runs.length === 0) continue;
        const window = Math.max(20, Math.min(200, Math.floor(runs[0]!.score.total / 20)));
        const curves = runs.map((r) => ({ label: r!.method, ...movingAccuracy(r!.score.trace!.correct, window, Math.max(1, Math.floor(window / 4))) }));
        const spec: ChartSpec = {
          title: `${scenario === 'mixed' ? 'Mixed shifts' : 'Online imbalanced label shift'}: accuracy over the stream (moving window of ${window}, seed ${seed}, severity ${o.severity})`,
          xLabel: 'samples seen',
          yLabel: 'accuracy (%)',
          x: curves[0]!.x,
          series: curves.map((c) => ({ label: c.label, values: c.y })),
          yRange: [0, 100],
        };
        await h.page.evaluate(`window.drawChart(${JSON.stringify(spec)})`);
        await h.page.locator('#chart').screenshot({ path: join(o.outDir, `${scenario}-accuracy.png`) });
      }
    },
    { path: 'bench/plot.html' },
  );
}

function parseCli() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      backend: { type: 'string' },
      seeds: { type: 'string' },
      scenarios: { type: 'string' },
      methods: { type: 'string' },
      'per-corruption': { type: 'string' },
      severity: { type: 'string', default: '5' },
      regime: { type: 'string', default: 'imagenet64' },
      out: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      parallel: { type: 'string', default: '1' },
      resume: { type: 'boolean', default: false },
      shard: { type: 'string' },
      model: { type: 'string', default: DEFAULT_MODEL },
      stress: { type: 'boolean', default: false },
    },
  });
  return values;
}

async function main(): Promise<void> {
  const a = parseCli();
  const quick = a.quick;
  const regime = a.regime as CorruptionRegime;
  if (!CORRUPTION_REGIMES.includes(regime)) throw new RangeError(`--regime must be one of ${CORRUPTION_REGIMES.join(', ')}, got ${a.regime}`);
  const model = a.model.replace(/^public\/models\//, '').replace(/\/$/, '');
  const suffix = model === DEFAULT_MODEL ? '' : `-${model}`;
  const stress = a.stress;
  const o: WildBenchOptions = {
    regime,
    model,
    stress,
    backend: a.backend as WildBenchOptions['backend'],
    seeds: (a.seeds ?? (quick ? '1' : '1,2,3')).split(',').map(Number),
    scenarios: (a.scenarios ?? (quick ? 'mixed' : stress ? 'mixed,label-shift' : SCENARIOS.join(','))).split(',') as Scenario[],
    methods: (a.methods ?? (stress ? 'source,sar,sar-align' : METHODS.join(','))).split(','),
    corruptions: stress ? [...STRESS_STREAMS] : [...CORRUPTIONS],
    perCorruption: Number(a['per-corruption'] ?? (quick ? '40' : '300')),
    severity: Number(a.severity),
    outDir: a.out ?? `bench/results/${quick ? 'quick-' : ''}${stress ? 'stress-' : ''}${regime}${suffix}`,
    methodOptions: loadMethodOptions(tuningFile(model)),
    plots: !quick && !stress,
    parallel: Number(a.parallel),
    resume: a.resume,
  };
  const shard = a.shard ? parseShard(a.shard) : undefined;
  if (shard) {
    o.shard = shard;
    o.plots = false;
  }
  const { records, backend, browser, seconds, kept } = await runWildBench(o);
  await shutdown();
  console.log(`\n${wildTables(records, o)}\n\n${seconds.toFixed(0)} s on ${backend}`);
  // A slice writes its records only; bench:merge writes the report of all slices.
  if (shard) {
    console.log(`slice ${shard.index}/${shard.count}: ${records.length} records in ${o.outDir} (npm run bench:merge -- --dir ${o.outDir} joins the slices)`);
    return;
  }
  if (!quick && !a['no-write']) {
    const command = `npm run bench -- ${stress ? '--stress ' : ''}--scenarios ${o.scenarios.join(',')} --regime ${regime} --seeds ${o.seeds.join(',')} --methods ${o.methods.join(',')} --per-corruption ${o.perCorruption} --severity ${o.severity}${suffix ? ` --model ${model}` : ''}${a.backend ? ` --backend ${a.backend}` : ''}${o.parallel! > 1 ? ` --parallel ${o.parallel}` : ''}${o.resume ? ' --resume' : ''}`;
    writeWildSection(records, o, { command, seconds, backend, browser, kept });
  }
}

/** "i/n" → { index: i, count: n }, 1 ≤ i ≤ n. */
export function parseShard(s: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!(count >= 1 && index >= 1 && index <= count)) throw new RangeError(`--shard must be i/n with 1 ≤ i ≤ n, got ${s}`);
  return { index, count };
}

/** The report's tables: the averages, then each scenario's per-corruption table. */
export function wildTables(records: WildRunRecord[], o: Pick<WildBenchOptions, 'scenarios' | 'methods' | 'corruptions'>): string {
  return [
    `### averages (Δ against no adaptation, in points)\n\n${summaryTable(records, o.scenarios, o.methods, o.corruptions)}`,
    ...o.scenarios.map((s) => `### ${s}\n\n${scenarioTable(records, s, o.methods, o.corruptions)}`),
  ].join('\n\n');
}

/**
 * An adapting method's accuracy minus no adaptation's on the same seed's
 * stream, per stream (corruption) of one scenario: the paired differences the
 * stress family's check reads (issue 25 item 7: sar-align ≥ no adaptation − 2
 * points on every stream). Seeds without a no-adaptation run are left out.
 */
export function pairedDeltas(
  records: WildRunRecord[],
  scenario: Scenario,
  method: string,
  corruptions: string[],
): Map<string, Array<{ seed: number; d: number }>> {
  const out = new Map<string, Array<{ seed: number; d: number }>>(corruptions.map((c) => [c, []]));
  for (const r of records.filter((x) => x.scenario === scenario && x.method === method).sort((a, b) => a.seed - b.seed)) {
    const base = records.find((x) => x.scenario === scenario && x.method === 'source' && x.seed === r.seed);
    if (!base) continue;
    const mine = accuracyByCorruption(r, corruptions).per;
    const theirs = accuracyByCorruption(base, corruptions).per;
    for (const c of corruptions) {
      const d = (mine[c] ?? NaN) - (theirs[c] ?? NaN);
      if (Number.isFinite(d)) out.get(c)!.push({ seed: r.seed, d });
    }
  }
  return out;
}

const signed = (x: number) => `${x >= 0 ? '+' : ''}${pct(x)}`;

/** Each adapting method's worst stream: the lowest paired difference over streams and seeds, and where it falls. */
export function worstStreamTable(records: WildRunRecord[], scenarios: readonly Scenario[], methods: string[], corruptions: string[]): string {
  const rows = methods
    .filter((m) => m !== 'source')
    .map((m) => {
      const cells = scenarios.map((scenario) => {
        let worst: { d: number; where: string } | undefined;
        for (const [c, ds] of pairedDeltas(records, scenario, m, corruptions)) {
          for (const { seed, d } of ds) if (!worst || d < worst.d) worst = { d, where: `${c}, seed ${seed}` };
        }
        return worst ? `${signed(worst.d)} (${worst.where})` : '–';
      });
      return `| ${m} | ${cells.join(' | ')} |`;
    });
  return [`| method | ${scenarios.join(' | ')} |`, `|---|${scenarios.map(() => '---').join('|')}|`, ...rows].join('\n');
}

/**
 * Per scenario and stream, each adapting method's paired difference from no
 * adaptation: mean ± std over seeds, then the lowest seed's. The last column
 * is the method's lowest mean over the streams.
 */
export function streamDeltaTable(records: WildRunRecord[], scenarios: readonly Scenario[], methods: string[], corruptions: string[]): string {
  const rows: string[] = [];
  for (const scenario of scenarios) {
    for (const m of methods.filter((x) => x !== 'source')) {
      const deltas = pairedDeltas(records, scenario, m, corruptions);
      let lowest: { d: number; c: string } | undefined;
      const cells = corruptions.map((c) => {
        const ds = deltas.get(c)!.map((x) => x.d);
        if (ds.length === 0) return '–';
        const avg = mean(ds);
        if (!lowest || avg < lowest.d) lowest = { d: avg, c };
        return `${signed(avg)}${ds.length > 1 ? ` ± ${pct(std(ds))}` : ''} (${signed(Math.min(...ds))})`;
      });
      rows.push(`| ${scenario} | ${m} | ${cells.join(' | ')} | ${lowest ? `**${signed(lowest.d)}** (${lowest.c})` : '–'} |`);
    }
  }
  return [`| scenario | method | ${corruptions.join(' | ')} | lowest mean |`, `|---|---|${corruptions.map(() => '---').join('|')}|---|`, ...rows].join('\n');
}

/**
 * What --resume kept, as a sentence for a section's header (empty when
 * nothing was kept): the date, time and machine of a section are its last
 * call's, which ran only the other runs (`ran`: their methods).
 */
export function resumedLine(total: number, kept: number, ran: readonly string[]): string {
  if (kept === 0) return '';
  if (kept === total)
    return `\nWith --resume: every run was kept from earlier runs of the same options (their records in the results folder); the date and machine above are of the call that wrote this section, which ran nothing.`;
  return `\nWith --resume: ${kept} of the ${total} runs were kept from an earlier run of the same options, backend, model and regime (their records in the results folder, their command and machine in git's history of this section); the date, time and machine above are of the run that added the other ${total - kept} (${[...new Set(ran)].join(', ')}).`;
}

/** Writes the regime's bench:wild section of BENCHMARKS.md from the records (one run, or merged slices). */
export function writeWildSection(
  records: WildRunRecord[],
  o: WildBenchOptions,
  meta: { command: string; seconds: number; backend: string; browser: string; kept?: number },
): void {
  const regime = o.regime ?? 'imagenet64';
  const model = o.model ?? DEFAULT_MODEL;
  const other = model !== DEFAULT_MODEL;
  const { seconds, backend, browser } = meta;
  const tuned = tunedAt(tuningFile(model));
  const opts = o.methods.map((m) => `\`${JSON.stringify(o.methodOptions[m])}\``).join(', ');
  const dir = o.outDir.replace(/\/$/, '');
  if (o.stress) {
    writeSection(
      `bench:wild:stress${other ? `:${model}` : ''}`,
      `## Stress family${other ? ` of ${model}` : ''}: quarter turns and flips, never used for tuning (\`npm run bench -- --stress${other ? ` --model ${model}` : ''}\`)

Command: \`${meta.command}\`, ${new Date().toISOString().slice(0, 10)}, ${seconds.toFixed(0)} s.
Backend: ${backend} in headless Chromium. Machine: ${machineLine(browser)}.
${other ? `Model public/models/${model}/` : 'Shipped model'}, the shipped Fashion-MNIST test split turned or mirrored (${STRESS_TRANSFORMS.join(', ')}: exact pixel permutations, src/data/stress.ts; no corruption on top), batch size 1, ${o.perCorruption} images per stream (from the 9,000 test images not held out), seeds ${o.seeds.join(', ')}; accuracy (%) of the prediction made before each update, mean ± std over seeds. No hyperparameter was chosen on these streams (bench:tune refuses them); the method options are the ones tuned on the 4 extra corruptions: ${opts}.

### Each stream against no adaptation (points, paired by seed: mean ± std over seeds, then the lowest seed in brackets)

${streamDeltaTable(records, o.scenarios, o.methods, o.corruptions)}

### Worst stream against no adaptation (points; the lowest over streams and seeds, paired by seed)

${worstStreamTable(records, o.scenarios, o.methods, o.corruptions)}

${wildTables(records, o)}`,
    );
    console.log('wrote the bench:wild:stress section of BENCHMARKS.md');
    return;
  }
  writeSection(
    `${regime === 'imagenet64' ? 'bench:wild' : `bench:wild:${regime}`}${other ? `:${model}` : ''}`,
    `## Wild benchmark${other ? ` of ${model}` : ''}, ${REGIME_LABELS[regime]} (\`npm run bench -- --regime ${regime}${other ? ` --model ${model}` : ''}\`)

Command: \`${meta.command}\`, ${new Date().toISOString().slice(0, 10)}, ${seconds.toFixed(0)} s.
Backend: ${backend} in headless Chromium. Machine: ${machineLine(browser)}.${resumedLine(
      records.length,
      meta.kept ?? 0,
      records.slice(meta.kept ?? 0).map((r) => r.method),
    )}
${other ? `Model public/models/${model}/` : 'Shipped model'}, severity ${o.severity}, batch size 1, ${o.perCorruption} images per corruption (from the 9,000 test images not held out), seeds ${o.seeds.join(', ')}; accuracy (%) of the prediction made before each update, mean ± std over seeds.
Method options (chosen by \`npm run bench:tune${other ? ` -- --model public/models/${model}` : ''}\` on the extra corruptions only, for this model, at regime ${tuned}${tuned === regime ? '' : `, not at ${regime}: no tuning ran at this regime`}): ${opts}.

${wildTables(records, o)}

![Mixed shifts](${dir}/mixed-accuracy.png)

![Online imbalanced label shift](${dir}/label-shift-accuracy.png)`,
  );
  console.log('wrote the bench:wild section of BENCHMARKS.md');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
