// Chooses each method's hyperparameters on the 4 extra corruptions ONLY
// (speckle_noise, gaussian_blur, spatter, saturate); the 15 test corruptions
// are never looked at here. Runs in Node on the wasm backend.
//
//   npm run bench:tune -- [--per-corruption 250] [--severity 5] [--seeds 100,101,102] [--regime imagenet64]
//                         [--methods tent,eata,sar,deyo,sar-align] [--model public/models/fmnist-vit]
//                         [--out bench/results/tuning.json]
//
// Another model (--model public/models/fmnist-resnet-gn) is tuned into its own
// record (--out bench/results/tuning-fmnist-resnet-gn.json by default) and its
// own section of BENCHMARKS.md.
// Writes bench/results/tuning.json: every configuration's accuracy per
// scenario and the chosen one per method (best mean over the mixed and
// label-shift streams of the extra corruptions, averaged over the seeds; the
// spread over seeds is recorded, and a choice within it of the next is a tie).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXTRA_CORRUPTIONS, corrupt } from '../src/data/corruptions';
import { assertNotStress } from '../src/data/stress';
import { tuningCorruptions } from '../tools/lib/tune-corruptions';
import { resolveRegime } from '../src/data/corruptions/regime';
import { readSourceStats, SOURCE_STATS_FILE } from '../src/model/source-stats';
import { labelShiftStream, mixedStream, splitPools } from '../src/data/streams';
import { METHOD_NAMES, methodSpec, type AdapterOptions } from '../src/methods';
import { runStream } from './run-stream';
import { loadModelFolder, loadTestSplit, nodeSetup } from '../tools/lib/node-env';
import { DEFAULT_MODEL, machineLine, mean, pct, std, tuningFile, writeSection } from './report';

const { values: args } = parseArgs({
  options: {
    'per-corruption': { type: 'string', default: '250' },
    severity: { type: 'string', default: '5' },
    seeds: { type: 'string', default: '100,101,102' },
    regime: { type: 'string', default: 'imagenet64' },
    model: { type: 'string', default: `public/models/${DEFAULT_MODEL}` },
    out: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    methods: { type: 'string' },
    // Both refused by tuningCorruptions unless they name extra corruptions: a flag is accepted only to say no in words.
    corruptions: { type: 'string' },
    stress: { type: 'boolean', default: false },
  },
});

/** The search space of a method (its registry entry's): what bench:tune tries on the extra corruptions. */
export function searchSpace(method: string): AdapterOptions[] {
  return methodSpec(method).searchSpace.map((o) => ({ ...o, method }) as AdapterOptions);
}

/** Every method with something to tune. */
const TUNABLE = METHOD_NAMES.filter((m) => methodSpec(m).searchSpace.length > 0);

interface Row {
  options: AdapterOptions;
  /** Mean accuracy over the seeds per stream, their mean, and the spread (std over seeds) of that mean. */
  mixed: number;
  labelShift: number;
  mean: number;
  std: number;
  perSeed: number[];
}

const modelName = basename(args.model.replace(/\/$/, ''));
const shippedViT = modelName === DEFAULT_MODEL;
const outFile = args.out ?? tuningFile(modelName);

async function main(): Promise<void> {
  // First, before anything loads: the stress family and the test corruptions are refused here.
  const corruptions = tuningCorruptions(args.corruptions, args.stress);
  await nodeSetup('wasm');
  const model = loadModelFolder(args.model);
  const statsFile = join(args.model, SOURCE_STATS_FILE);
  const sourceStats = existsSync(statsFile) ? readSourceStats(new Uint8Array(readFileSync(statsFile)), model) : undefined;
  const data = loadTestSplit();
  const pools = splitPools(data.labels, model.config.numClasses);
  const regime = resolveRegime(args.regime);
  const seeds = args.seeds.split(',').map(Number);
  const base = { corruptions, severity: Number(args.severity), perCorruption: Number(args['per-corruption']) };
  const streams = seeds.map((seed) => ({
    mixed: mixedStream(data.labels, pools.evaluation, { ...base, seed }),
    'label-shift': labelShiftStream(data.labels, pools.evaluation, { ...base, seed, numClasses: model.config.numClasses }),
  }));
  // And again on every stream built, whatever built it.
  for (const pair of streams) for (const stream of Object.values(pair)) assertNotStress(new Set(stream.items.map((i) => i.corruption)), 'bench:tune');
  const corruptAt = (x: Parameters<typeof corrupt>[0], name: string, severity: number, seed: number) => corrupt(x as never, name, severity, seed, { regime });
  const evaluate = async (options: AdapterOptions): Promise<Row> => {
    const mixed: number[] = [];
    const shift: number[] = [];
    for (const pair of streams) {
      for (const [name, stream] of Object.entries(pair)) {
        const acc = (await runStream({ model, images: data, stream, method: options, corrupt: corruptAt, cleanIndices: pools.clean, sourceStats })).accuracy;
        (name === 'mixed' ? mixed : shift).push(acc);
      }
    }
    const perSeed = mixed.map((m, i) => (m + shift[i]!) / 2);
    return { options, mixed: mean(mixed), labelShift: mean(shift), mean: mean(perSeed), std: std(perSeed), perSeed };
  };
  const previous = existsSync(outFile)
    ? (JSON.parse(readFileSync(outFile, 'utf8')) as { chosen?: Record<string, AdapterOptions>; results?: Row[]; regime?: string })
    : {};
  const methods = args.methods?.split(',') ?? TUNABLE;
  // Methods not rerun keep their earlier choice, with the regime it was made at (the first tuning ran at cifar).
  const chosen: Record<string, AdapterOptions> = { ...(previous.chosen ?? {}) };
  const chosenAt: Record<string, string> = {
    ...Object.fromEntries(Object.keys(chosen).map((m) => [m, previous.regime ?? 'cifar'])),
    ...((previous as { chosenAt?: Record<string, string> }).chosenAt ?? {}),
  };
  for (const m of methods) chosenAt[m] = regime;
  const results: Row[] = previous.regime === regime ? (previous.results ?? []).filter((r) => !methods.includes(r.options.method)) : [];
  const baseline = await evaluate({ method: 'source' });
  console.log(`no-adapt on the extra corruptions (${regime}): mixed ${pct(baseline.mixed)}%, label shift ${pct(baseline.labelShift)}%`);
  const recentred = sourceStats ? await evaluate({ method: 'source', recenter: true }) : undefined;
  if (recentred) console.log(`re-centring alone: mixed ${pct(recentred.mixed)}%, label shift ${pct(recentred.labelShift)}%`);
  for (const method of methods) {
    const rows: Row[] = [];
    for (const options of searchSpace(method)) {
      const row = await evaluate(options);
      rows.push(row);
      results.push(row);
      console.log(`${JSON.stringify(options)}: mixed ${pct(row.mixed)}%, label shift ${pct(row.labelShift)}%, mean ${pct(row.mean)} ± ${pct(row.std)}`);
    }
    const best = rows.reduce((a, b) => (b.mean > a.mean ? b : a));
    chosen[method] = best.options;
    console.log(`chosen for ${method}: ${JSON.stringify(best.options)}`);
  }
  mkdirSync('bench/results', { recursive: true });
  const command = `npm run bench:tune -- --per-corruption ${base.perCorruption} --severity ${base.severity} --seeds ${seeds.join(',')} --regime ${regime} --methods ${methods.join(',')}${args.corruptions ? ` --corruptions ${base.corruptions.join(',')}` : ''}${shippedViT ? '' : ` --model ${args.model}`}`;
  // The rows kept from an earlier run of the same regime keep its command beside this one.
  const commands = [...(previous.regime === regime ? ((previous as { commands?: string[] }).commands ?? []).filter((c) => c !== command) : []), command];
  const record = { ...base, model: args.model, seeds, regime, baseline, recentred, results, chosen, chosenAt, commands, date: new Date().toISOString() };
  writeFileSync(outFile, `${JSON.stringify(record, null, 1)}\n`);
  console.log(`wrote ${outFile}`);
  model.dispose();
  if (!args['no-write']) {
    const byMethod = new Map<string, Row[]>();
    for (const r of results) byMethod.set(r.options.method, [...(byMethod.get(r.options.method) ?? []), r]);
    const lines: string[] = [];
    for (const [method, rows] of byMethod) {
      const best = rows.find((r) => JSON.stringify(r.options) === JSON.stringify(chosen[method]));
      for (const r of rows) {
        const { method: _m, ...rest } = r.options as unknown as Record<string, unknown>;
        const isChosen = r === best;
        // A configuration whose mean lies within the chosen one's seed spread is a tie with it.
        const tie = !isChosen && best && Math.abs(best.mean - r.mean) <= Math.max(best.std, r.std);
        lines.push(
          `| ${method} | \`${JSON.stringify(rest)}\` | ${pct(r.mixed)} | ${pct(r.labelShift)} | ${pct(r.mean)} ± ${pct(r.std)}${isChosen ? ' **(chosen)**' : tie ? ' (tie with the chosen)' : ''} |`,
        );
      }
    }
    const extra = recentred
      ? `\nRe-centring alone (no adaptation, \`{"method":"source","recenter":true}\`): mixed ${pct(recentred.mixed)}%, label shift ${pct(recentred.labelShift)}%, mean ${pct(recentred.mean)} ± ${pct(recentred.std)}.`
      : '';
    writeSection(
      shippedViT ? 'bench:tune' : `bench:tune:${modelName}`,
      `## Hyperparameter choice${shippedViT ? '' : ` for ${modelName}`} (\`npm run bench:tune${shippedViT ? '' : ` -- --model ${args.model}`}\`)

Commands (each adds its methods' rows to the same record): ${commands.map((c) => `\`${c}\``).join(', ')}; last run ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, tfjs wasm backend (one thread). Machine: ${machineLine()}.
Only the extra corruptions (${base.corruptions.join(', ')}${base.corruptions.length < EXTRA_CORRUPTIONS.length ? ` of the 4: ${EXTRA_CORRUPTIONS.join(', ')}` : ''}) are looked at, never the stress family, regime ${regime}, severity ${base.severity}, ${base.perCorruption} images each (${base.corruptions.length * base.perCorruption} a stream), seeds ${seeds.join(', ')}, in the mixed stream and in the online imbalanced label-shift stream; the 15 test corruptions are never used here. The configuration with the best mean of the two (averaged over seeds; ± is the std over seeds of the per-seed mean) is chosen and saved in ${outFile}, which \`npm run bench\`${shippedViT ? ' and the demo read' : ' reads for this model'}; one whose mean is within the spread of the chosen one is marked as a tie.
No adaptation on these streams: mixed ${pct(baseline.mixed)}%, label shift ${pct(baseline.labelShift)}%, mean ${pct(baseline.mean)} ± ${pct(baseline.std)}.${extra}

Methods whose choice was made at another regime (kept from an earlier run, not rerun here): ${
        Object.entries(chosenAt)
          .filter(([, r]) => r !== regime)
          .map(([m, r]) => `${m} at ${r} (\`${JSON.stringify(chosen[m])}\`)`)
          .join(', ') || 'none'
      }.

| method | options | mixed | label shift | mean ± std over seeds |
|---|---|---|---|---|
${lines.join('\n')}`,
    );
  }
}

await main();
