// How far sar-align's predictions drift from the source model's on ordinary
// shifts: the number its collapse watch's agreement floor is chosen below
// (collapse-watch.ts, agreementFloor). Runs sar-align, with the rule watching
// but never firing, on bench:tune's streams, the 4 extra corruptions ONLY
// (never the 15 test corruptions, never the stress family), and records the
// lowest moving agreement after the watch's warmup. Node, wasm backend.
//
//   npm run bench:agreement -- [--models fmnist-vit,fmnist-resnet-gn] [--seeds 100,101,102] [--per-corruption 250]
//
// Writes bench/results/agreement.json.
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXTRA_CORRUPTIONS, corrupt } from '../src/data/corruptions';
import { grayBatch } from '../src/data/images';
import { assertNotStress } from '../src/data/stress';
import { labelShiftStream, mixedStream, splitPools } from '../src/data/streams';
import { createAdapter, type AdapterOptions } from '../src/methods';
import { COLLAPSE_WATCH_DEFAULTS } from '../src/methods/collapse-watch';
import type { SarAlignAdapter } from '../src/methods/sar-align';
import { readSourceStats, SOURCE_STATS_FILE } from '../src/model/source-stats';
import { loadModelFolder, loadTestSplit, nodeSetup } from '../tools/lib/node-env';
import { loadMethodOptions } from './wild';
import { machineLine, tuningFile } from './report';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'fmnist-vit,fmnist-resnet-gn' },
    seeds: { type: 'string', default: '100,101,102' },
    'per-corruption': { type: 'string', default: '250' },
  },
});

const corruptions = [...EXTRA_CORRUPTIONS];
assertNotStress(corruptions, 'bench:agreement');
const seeds = args.seeds.split(',').map(Number);
const perCorruption = Number(args['per-corruption']);
const warmup = COLLAPSE_WATCH_DEFAULTS.collapseWarmup.value;

await nodeSetup('wasm');
const data = loadTestSplit();
const pools = splitPools(data.labels, 10);
const rows: Array<{ model: string; scenario: string; seed: number; segment: string; lowest: number; final: number; frames: number }> = [];
for (const name of args.models.split(',')) {
  const dir = `public/models/${name}`;
  const model = loadModelFolder(dir);
  const sourceStats = readSourceStats(new Uint8Array(readFileSync(join(dir, SOURCE_STATS_FILE))), model);
  // The tuned sar-align, its agreement watched but never acted on (a floor below any rate).
  const options = { ...loadMethodOptions(tuningFile(name))['sar-align'], agreementFloor: Number.MIN_VALUE, sourceStats } as AdapterOptions;
  for (const seed of seeds) {
    const o = { corruptions, severity: 5, perCorruption, seed };
    const streams = {
      mixed: mixedStream(data.labels, pools.evaluation, o),
      'label-shift': labelShiftStream(data.labels, pools.evaluation, { ...o, numClasses: 10 }),
    };
    for (const [scenario, stream] of Object.entries(streams)) {
      assertNotStress(new Set(stream.items.map((i) => i.corruption)), 'bench:agreement');
      for (const seg of stream.segments) {
        const adapter = (await createAdapter(model, options)) as SarAlignAdapter;
        let lowest = 1;
        let since = 0;
        for (let k = seg.start; k < seg.end; k++) {
          const item = stream.items[k]!;
          const x = tf.tidy(() => corrupt(grayBatch(data.images, item.index, 1, data.height, data.width), item.corruption, item.severity, item.seed));
          const r = await adapter.step(x);
          x.dispose();
          // The watch restarts after any reset; its rules look only after the warmup.
          since = r.update?.reset ? 0 : since + 1;
          if (since >= warmup) lowest = Math.min(lowest, adapter.sourceAgreement);
        }
        await adapter.flush();
        rows.push({ model: name, scenario, seed, segment: seg.name, lowest, final: adapter.sourceAgreement, frames: seg.end - seg.start });
        console.log(`${name} ${scenario} seed ${seed} ${seg.name}: lowest moving agreement ${lowest.toFixed(3)}`);
        adapter.dispose();
      }
    }
  }
  model.dispose();
}
const lowest = Math.min(...rows.map((r) => r.lowest));
console.log(`lowest over all: ${lowest.toFixed(3)} (the default agreementFloor is ${COLLAPSE_WATCH_DEFAULTS.agreementFloor.value})`);
mkdirSync('bench/results', { recursive: true });
const command = `npm run bench:agreement -- --models ${args.models} --seeds ${args.seeds} --per-corruption ${perCorruption}`;
writeFileSync(
  'bench/results/agreement.json',
  `${JSON.stringify({ command, corruptions, warmup, lowest, machine: machineLine(), node: process.version, date: new Date().toISOString(), rows }, null, 1)}\n`,
);
