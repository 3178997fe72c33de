// Joins the slices of a sharded wild benchmark (`npm run bench -- --shard i/n`,
// one slice per machine, each writing its records) into the same report one
// unsharded run writes: the BENCHMARKS.md section and the plots.
//
//   npm run bench:merge -- [--dir bench/results/imagenet64] [--stress] [--no-write]
//
// --stress: the records are the stress family's (`npm run bench -- --stress`),
// written to that family's section.
//
// The slices' record files are copied into one folder first (a CI job's
// artifacts, for example); a job that appears twice, or records of two
// regimes or two option sets for one method, are refused.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CORRUPTIONS } from '../src/data/corruptions';
import { STRESS_STREAMS } from '../src/data/stress';
import type { AdapterOptions } from '../src/methods';
import { shutdown } from '../tools/lib/session';
import { DEFAULT_MODEL } from './report';
import { METHODS, SCENARIOS, drawPlots, wildTables, writeWildSection, type WildBenchOptions, type WildRunRecord } from './wild';
import type { CorruptionRegime } from '../src/data/corruptions/regime';

/** Every run record in `dir` (other JSON files are skipped), checked to form one grid. */
export function readRecords(dir: string): WildRunRecord[] {
  const records: WildRunRecord[] = [];
  const seen = new Set<string>();
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    const r = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Partial<WildRunRecord>;
    if (!r.scenario || !r.method || r.seed === undefined || !r.score) continue;
    const key = `${r.scenario}|${r.method}|${r.seed}`;
    if (seen.has(key)) throw new Error(`${dir}: ${key} appears twice`);
    seen.add(key);
    records.push(r as WildRunRecord);
  }
  if (records.length === 0) throw new Error(`${dir}: no run records`);
  const regimes = new Set(records.map((r) => r.regime ?? 'cifar'));
  if (regimes.size > 1) throw new Error(`${dir}: records of several regimes (${[...regimes].join(', ')})`);
  for (const m of new Set(records.map((r) => r.method))) {
    const opts = new Set(records.filter((r) => r.method === m).map((r) => JSON.stringify(r.options)));
    if (opts.size > 1) throw new Error(`${dir}: ${m} ran with different options: ${[...opts].join(' vs ')}`);
  }
  return records;
}

/** The benchmark options the records were run with, as far as the report needs them. */
export function optionsOf(records: WildRunRecord[], dir: string, stress = false): WildBenchOptions {
  const order = (xs: string[], known: readonly string[]) => [...known.filter((k) => xs.includes(k)), ...xs.filter((x) => !known.includes(x)).sort()];
  const methods = order([...new Set(records.map((r) => r.method))], METHODS);
  const one = records.find((r) => r.scenario !== 'label-shift') ?? records[0]!;
  const perCorruption = Math.max(...Object.values(one.score.byCorruption).map((t) => t.total));
  return {
    regime: (records[0]!.regime ?? 'cifar') as CorruptionRegime,
    seeds: [...new Set(records.map((r) => r.seed))].sort((a, b) => a - b),
    scenarios: order([...new Set(records.map((r) => r.scenario))], SCENARIOS) as WildBenchOptions['scenarios'],
    methods,
    corruptions: stress ? [...STRESS_STREAMS] : [...CORRUPTIONS],
    stress,
    model: records[0]!.model,
    perCorruption,
    severity: 5,
    outDir: dir,
    methodOptions: Object.fromEntries(methods.map((m) => [m, records.find((r) => r.method === m)!.options])) as Record<string, AdapterOptions>,
    plots: !stress,
  };
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const { values: a } = parseArgs({
    options: {
      dir: { type: 'string', default: 'bench/results/imagenet64' },
      stress: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const records = readRecords(a.dir);
  const o = optionsOf(records, a.dir, a.stress);
  console.log(
    `${records.length} records: ${o.scenarios.join(', ')} × ${o.methods.join(', ')} × seeds ${o.seeds.join(', ')}, ${o.perCorruption} per corruption, ${o.regime}`,
  );
  console.log(`\n${wildTables(records, o)}`);
  if (!a['no-write']) {
    if (o.plots) {
      await drawPlots(records, o);
      await shutdown();
    }
    const backends = [...new Set(records.map((r) => r.backend))].join(', ');
    const seconds = records.reduce((t, r) => t + r.score.ms / 1000, 0);
    const model = o.model && o.model !== DEFAULT_MODEL ? ` --model ${o.model}` : '';
    const run = `npm run bench -- ${o.stress ? `--stress --scenarios ${o.scenarios.join(',')} ` : ''}--regime ${o.regime} --seeds ${o.seeds.join(',')} --methods ${o.methods.join(',')} --per-corruption ${o.perCorruption}${model}`;
    const command = `${run} (whole, or --shard i/n on each machine), then npm run bench:merge -- --dir ${a.dir}${o.stress ? ' --stress' : ''}`;
    writeWildSection(records, o, { command, seconds, backend: backends, browser: '' });
    console.log(`wrote the bench:wild${o.stress ? ':stress' : ''} section of BENCHMARKS.md (the time is the runs' own, summed over slices)`);
  }
}
