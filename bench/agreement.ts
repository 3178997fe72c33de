// How far sar-align's predictions drift from the source model's on ordinary
// shifts: the number its collapse watch's agreement floor is chosen below
// (collapse-watch.ts, agreementFloor). Runs sar-align, with the rule watching
// but never firing, on bench:tune's streams, the 4 extra corruptions ONLY
// (never the 15 test corruptions, never the stress family), and records the
// lowest moving agreement after the watch's warmup. Node, wasm backend.
//
//   npm run bench:agreement -- [--models fmnist-vit,fmnist-resnet-gn] [--seeds 100,101,102] [--per-corruption 250]
//                              [--scenarios mixed,label-shift] [--floor F] [--out bench/results/agreement.json]
//
// --scenarios also takes per-corruption (each corruption its own stream).
//
// --floor runs sar-align with that agreementFloor (0: the rule off) instead
// of watching only, to see what the rule does to accuracy on these streams.
// Writes bench/results/agreement.json (or --out), with each segment's
// accuracy and resets.
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXTRA_CORRUPTIONS, corrupt } from '../src/data/corruptions';
import { grayBatch } from '../src/data/images';
import { assertNotStress } from '../src/data/stress';
import { labelShiftStream, mixedStream, perCorruptionStream, splitPools } from '../src/data/streams';
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
    scenarios: { type: 'string', default: 'mixed,label-shift' },
    floor: { type: 'string' },
    out: { type: 'string', default: 'bench/results/agreement.json' },
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
const rows: Array<{
  model: string;
  scenario: string;
  seed: number;
  segment: string;
  lowest: number;
  final: number;
  frames: number;
  accuracy: number;
  resets: number;
}> = [];
const floor = args.floor === undefined ? Number.MIN_VALUE : Number(args.floor);
const scenarios = args.scenarios.split(',');
for (const name of args.models.split(',')) {
  const dir = `public/models/${name}`;
  const model = loadModelFolder(dir);
  const sourceStats = readSourceStats(new Uint8Array(readFileSync(join(dir, SOURCE_STATS_FILE))), model);
  // The tuned sar-align, its agreement watched but never acted on (a floor below any rate), or at --floor.
  const options = { ...loadMethodOptions(tuningFile(name))['sar-align'], agreementFloor: floor, sourceStats } as AdapterOptions;
  for (const seed of seeds) {
    const o = { corruptions, severity: 5, perCorruption, seed };
    const streams = {
      'per-corruption': () => perCorruptionStream(data.labels, pools.evaluation, o),
      mixed: () => mixedStream(data.labels, pools.evaluation, o),
      'label-shift': () => labelShiftStream(data.labels, pools.evaluation, { ...o, numClasses: 10 }),
    };
    for (const [scenario, make] of Object.entries(streams)) {
      if (!scenarios.includes(scenario)) continue;
      const stream = make();
      assertNotStress(new Set(stream.items.map((i) => i.corruption)), 'bench:agreement');
      for (const seg of stream.segments) {
        const adapter = (await createAdapter(model, options)) as SarAlignAdapter;
        let lowest = 1;
        let since = 0;
        let correct = 0;
        for (let k = seg.start; k < seg.end; k++) {
          const item = stream.items[k]!;
          const x = tf.tidy(() => corrupt(grayBatch(data.images, item.index, 1, data.height, data.width), item.corruption, item.severity, item.seed));
          const r = await adapter.step(x);
          x.dispose();
          if (r.classes[0] === item.label) correct++;
          // The watch restarts after any reset; its rules look only after the warmup.
          since = r.update?.reset ? 0 : since + 1;
          if (since >= warmup && Number.isFinite(adapter.sourceAgreement)) lowest = Math.min(lowest, adapter.sourceAgreement);
        }
        await adapter.flush();
        const frames = seg.end - seg.start;
        rows.push({
          model: name,
          scenario,
          seed,
          segment: seg.name,
          lowest,
          final: adapter.sourceAgreement,
          frames,
          accuracy: correct / frames,
          resets: adapter.resetCount,
        });
        console.log(
          `${name} ${scenario} seed ${seed} ${seg.name}: lowest moving agreement ${lowest.toFixed(3)}, accuracy ${((100 * correct) / frames).toFixed(1)}%, ${adapter.resetCount} resets`,
        );
        adapter.dispose();
      }
    }
  }
  model.dispose();
}
const lowest = Math.min(...rows.map((r) => r.lowest));
console.log(`lowest over all: ${lowest.toFixed(3)} (the default agreementFloor is ${COLLAPSE_WATCH_DEFAULTS.agreementFloor.value})`);
mkdirSync('bench/results', { recursive: true });
const command = `npm run bench:agreement -- --models ${args.models} --seeds ${args.seeds} --per-corruption ${perCorruption} --scenarios ${args.scenarios}${args.floor === undefined ? '' : ` --floor ${args.floor}`} --out ${args.out}`;
writeFileSync(
  args.out,
  `${JSON.stringify({ command, corruptions, warmup, floor, lowest, machine: machineLine(), node: process.version, date: new Date().toISOString(), rows }, null, 1)}\n`,
);
