// Chooses each method's hyperparameters on the 4 extra corruptions ONLY
// (speckle_noise, gaussian_blur, spatter, saturate); the 15 test corruptions
// are never looked at here. Runs in Node on the wasm backend.
//
//   npm run bench:tune -- [--per-corruption 300] [--severity 5] [--seed 100] [--model public/models/fmnist-vit]
//
// Writes bench/results/tuning.json: every configuration's accuracy per
// scenario and the chosen one per method (best mean over the mixed and
// label-shift streams of the extra corruptions).
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EXTRA_CORRUPTIONS, corrupt } from '../src/data/corruptions';
import { labelShiftStream, mixedStream, splitPools } from '../src/data/streams';
import type { AdapterOptions } from '../src/methods';
import { runStream } from './run-stream';
import { loadModelFolder, loadTestSplit, nodeSetup } from './node-env';
import { machineLine, pct, writeSection } from './report';

const { values: args } = parseArgs({
  options: {
    'per-corruption': { type: 'string', default: '300' },
    severity: { type: 'string', default: '5' },
    seed: { type: 'string', default: '100' },
    model: { type: 'string', default: 'public/models/fmnist-vit' },
    out: { type: 'string', default: 'bench/results/tuning.json' },
    'no-write': { type: 'boolean', default: false },
    methods: { type: 'string', default: 'tent,eata,sar,deyo' },
  },
});

/** The search space: learning rates for every method, plus the knobs REFERENCE.md says matter for 10 classes. */
export function searchSpace(method: string): AdapterOptions[] {
  const lrs = [1e-4, 3e-4, 1e-3, 3e-3];
  switch (method) {
    case 'tent':
      return lrs.map((lr) => ({ method: 'tent', lr }));
    case 'eata':
      return lrs.flatMap((lr) => [0.05, 0.4].map((dMargin) => ({ method: 'eata' as const, lr, dMargin })));
    case 'sar':
      return lrs.flatMap((lr) => [0.067, 0.2].map((resetThreshold) => ({ method: 'sar' as const, lr, resetThreshold })));
    case 'deyo':
      return lrs.map((lr) => ({ method: 'deyo', lr }));
    default:
      throw new RangeError(`unknown method ${method}`);
  }
}

async function main(): Promise<void> {
  await nodeSetup('wasm');
  const model = loadModelFolder(args.model);
  const data = loadTestSplit();
  const pools = splitPools(data.labels, model.config.numClasses);
  const o = { corruptions: [...EXTRA_CORRUPTIONS], severity: Number(args.severity), perCorruption: Number(args['per-corruption']), seed: Number(args.seed) };
  const streams = {
    mixed: mixedStream(data.labels, pools.evaluation, o),
    'label-shift': labelShiftStream(data.labels, pools.evaluation, { ...o, numClasses: model.config.numClasses }),
  };
  const results: Array<{ options: AdapterOptions; mixed: number; labelShift: number; mean: number }> = [];
  const chosen: Record<string, AdapterOptions> = {};
  const baseline: Record<string, number> = {};
  for (const [name, stream] of Object.entries(streams)) {
    const s = await runStream({ model, images: data, stream, method: { method: 'source' }, corrupt, cleanIndices: pools.clean });
    baseline[name] = s.accuracy;
  }
  console.log(`no-adapt on the extra corruptions: mixed ${(baseline.mixed! * 100).toFixed(1)}%, label shift ${(baseline['label-shift']! * 100).toFixed(1)}%`);
  for (const method of args.methods.split(',')) {
    let best: { options: AdapterOptions; mean: number } | undefined;
    for (const options of searchSpace(method)) {
      const acc: Record<string, number> = {};
      for (const [name, stream] of Object.entries(streams)) {
        acc[name] = (await runStream({ model, images: data, stream, method: options, corrupt, cleanIndices: pools.clean })).accuracy;
      }
      const row = { options, mixed: acc.mixed!, labelShift: acc['label-shift']!, mean: (acc.mixed! + acc['label-shift']!) / 2 };
      results.push(row);
      console.log(`${JSON.stringify(options)}: mixed ${(row.mixed * 100).toFixed(1)}%, label shift ${(row.labelShift * 100).toFixed(1)}%`);
      if (!best || row.mean > best.mean) best = { options, mean: row.mean };
    }
    chosen[method] = best!.options;
    console.log(`chosen for ${method}: ${JSON.stringify(best!.options)}`);
  }
  mkdirSync('bench/results', { recursive: true });
  const record = { ...o, baseline, results, chosen, date: new Date().toISOString() };
  writeFileSync(args.out, `${JSON.stringify(record, null, 1)}\n`);
  console.log(`wrote ${args.out}`);
  model.dispose();
  if (!args['no-write']) {
    const rows = results.map((r) => {
      const { method, ...rest } = r.options as unknown as Record<string, unknown>;
      const isChosen = JSON.stringify(chosen[String(method)]) === JSON.stringify(r.options);
      return `| ${String(method)} | \`${JSON.stringify(rest)}\` | ${pct(r.mixed)} | ${pct(r.labelShift)} | ${pct(r.mean)}${isChosen ? ' **(chosen)**' : ''} |`;
    });
    writeSection(
      'bench:tune',
      `## Hyperparameter choice (\`npm run bench:tune\`)

Command: \`npm run bench:tune -- --per-corruption ${o.perCorruption} --severity ${o.severity} --seed ${o.seed}\`, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, tfjs wasm backend (one thread). Machine: ${machineLine()}.
Only the 4 extra corruptions (${EXTRA_CORRUPTIONS.join(', ')}) are looked at, at severity ${o.severity}, ${o.perCorruption} images each, in the mixed stream and in the online imbalanced label-shift stream; the 15 test corruptions are never used here. The configuration with the best mean of the two is chosen and saved in bench/results/tuning.json, which \`npm run bench\` reads.
No adaptation on these streams: mixed ${pct(baseline.mixed!)}%, label shift ${pct(baseline['label-shift']!)}%.

| method | options | mixed | label shift | mean |
|---|---|---|---|---|
${rows.join('\n')}`,
    );
  }
}

await main();
