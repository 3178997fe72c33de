// Why does (or doesn't) entropy minimization help the shipped model? A
// diagnostic, not a tuning run: nothing here chooses a hyperparameter.
//
//   npm run bench:diagnose -- [--per-corruption 300] [--severity 5] [--regime imagenet64] [--seed 1] [--sweep] [--no-write]
//
// Part 1, every corruption (15 test + 4 extra) with no adaptation: accuracy,
// mean entropy, the share of samples SAR's filter calls reliable (E < 0.4·ln C)
// and how often those reliable predictions are right, and the share of the
// most-predicted class. Entropy minimization pushes each reliable prediction
// further toward its own class, so it can only help where reliable
// predictions are mostly right and spread over the classes.
// Part 2 (--sweep): Tent and SAR over a range of learning rates, and SAR with
// more or fewer blocks adapted, on the per-corruption stream of the test
// corruptions, to see whether any choice would have helped. Node, wasm backend.
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { ALL_CORRUPTIONS, CORRUPTIONS, corrupt } from '../src/data/corruptions';
import { resolveRegime } from '../src/data/corruptions/regime';
import { FASHION_MNIST_CLASSES } from '../src/data/idx';
import { grayBatch } from '../src/data/images';
import { perCorruptionStream, splitPools } from '../src/data/streams';
import type { AdapterOptions } from '../src/methods';
import { loadModelFolder, loadTestSplit, nodeSetup } from '../tools/lib/node-env';
import { machineLine, pct, writeSection } from './report';
import { runStream } from './run-stream';

const { values: args } = parseArgs({
  options: {
    'per-corruption': { type: 'string', default: '300' },
    severity: { type: 'string', default: '5' },
    regime: { type: 'string', default: 'imagenet64' },
    seed: { type: 'string', default: '1' },
    sweep: { type: 'boolean', default: false },
    'sweep-lrs': { type: 'string', default: '0.0001,0.001,0.003,0.01' },
    // SAR at the tuned lr with 0..depth−1 last blocks left out of adaptation (default: a quarter).
    'sweep-skip': { type: 'string', default: '0,1,2,3' },
    'sweep-skip-lr': { type: 'string', default: '0.001' },
    model: { type: 'string', default: 'public/models/fmnist-vit' },
    'no-write': { type: 'boolean', default: false },
  },
});

interface SourceProfile {
  corruption: string;
  accuracy: number;
  meanEntropy: number;
  reliable: number;
  reliableAccuracy: number;
  topClass: number;
  topShare: number;
}

const t0 = Date.now();
await nodeSetup('wasm');
const model = loadModelFolder(args.model);
const data = loadTestSplit();
const C = model.config.numClasses;
const margin = 0.4 * Math.log(C);
const pools = splitPools(data.labels, C);
const severity = Number(args.severity);
const regime = resolveRegime(args.regime);
const perCorruption = Number(args['per-corruption']);
const seed = Number(args.seed);

async function profile(name: string): Promise<SourceProfile> {
  // The stream only picks the images here (clean ones are never corrupted below); it draws the same images for every name.
  const stream = perCorruptionStream(data.labels, pools.evaluation, {
    corruptions: [name === 'clean' ? 'gaussian_noise' : name],
    severity,
    perCorruption,
    seed,
  });
  const counts = new Array<number>(C).fill(0);
  let correct = 0,
    entropy = 0,
    reliable = 0,
    reliableCorrect = 0;
  for (const item of stream.items) {
    const p = tf.tidy(() => {
      const x = grayBatch(data.images, item.index, 1, data.height, data.width);
      return tf.softmax(model.logits(name === 'clean' ? x : corrupt(x, name, severity, item.seed, { regime })));
    });
    const probs = await p.data();
    p.dispose();
    let k = 0;
    let h = 0;
    for (let j = 0; j < C; j++) {
      if (probs[j]! > probs[k]!) k = j;
      if (probs[j]! > 0) h -= probs[j]! * Math.log(probs[j]!);
    }
    counts[k] = counts[k]! + 1;
    entropy += h;
    const ok = k === item.label;
    if (ok) correct++;
    if (h < margin) {
      reliable++;
      if (ok) reliableCorrect++;
    }
  }
  const n = stream.items.length;
  const topClass = counts.indexOf(Math.max(...counts));
  return {
    corruption: name,
    accuracy: correct / n,
    meanEntropy: entropy / n,
    reliable: reliable / n,
    reliableAccuracy: reliable ? reliableCorrect / reliable : NaN,
    topClass,
    topShare: counts[topClass]! / n,
  };
}

const profiles: SourceProfile[] = [];
for (const name of ['clean', ...ALL_CORRUPTIONS]) {
  const r = await profile(name);
  profiles.push(r);
  console.log(
    `${name.padEnd(18)} acc ${pct(r.accuracy)}  H ${r.meanEntropy.toFixed(2)}  reliable ${pct(r.reliable)}% (right ${pct(r.reliableAccuracy)}%)  top class ${FASHION_MNIST_CLASSES[r.topClass] ?? r.topClass} ${pct(r.topShare)}%`,
  );
}
const profileTable = [
  '| corruption | no-adapt acc. | mean entropy (nats) | reliable (E < E0) | reliable and right | most-predicted class (share) |',
  '|---|---|---|---|---|---|',
  ...profiles.map(
    (r) =>
      `| ${r.corruption}${(CORRUPTIONS as readonly string[]).includes(r.corruption) || r.corruption === 'clean' ? '' : ' (extra)'} | ${pct(r.accuracy)} | ${r.meanEntropy.toFixed(2)} | ${pct(r.reliable)}% | ${pct(r.reliableAccuracy)}% | ${FASHION_MNIST_CLASSES[r.topClass] ?? r.topClass} (${pct(r.topShare)}%) |`,
  ),
].join('\n');

let sweepTable = '';
if (args.sweep) {
  const stream = perCorruptionStream(data.labels, pools.evaluation, { corruptions: [...CORRUPTIONS], severity, perCorruption, seed });
  const lrs = args['sweep-lrs'].split(',').map(Number);
  const skipLr = Number(args['sweep-skip-lr']);
  const configs: AdapterOptions[] = [
    { method: 'source' },
    ...lrs.map((lr) => ({ method: 'tent' as const, lr })),
    ...lrs.map((lr) => ({ method: 'sar' as const, lr })),
    ...args['sweep-skip'].split(',').map((k) => ({ method: 'sar' as const, lr: skipLr, skipLastBlocks: Number(k) })),
  ];
  const rows: string[] = [];
  for (const options of configs) {
    const s = await runStream({ model, images: data, stream, method: options, corrupt: (x, n, sv, sd) => corrupt(x, n, sv, sd, { regime }) });
    const per = CORRUPTIONS.map((c) => s.byCorruption[c]!.correct / s.byCorruption[c]!.total);
    const skip =
      'skipLastBlocks' in options && options.skipLastBlocks !== undefined ? `, last ${options.skipLastBlocks} of ${model.normUnits} blocks frozen` : '';
    const label = options.method === 'source' ? 'no-adapt' : `${options.method} lr ${options.lr}${skip}`;
    console.log(`${label}: ${pct(s.accuracy)}%`);
    rows.push(`| ${label} | ${per.map((a) => pct(a)).join(' | ')} | **${pct(s.accuracy)}** |`);
  }
  const short = (c: string) => c.replace(/_(noise|blur|transform|compression)$/, '');
  sweepTable = [`| run | ${CORRUPTIONS.map(short).join(' | ')} | **avg** |`, `|---|${CORRUPTIONS.map(() => '---').join('|')}|---|`, ...rows].join('\n');
}

const seconds = ((Date.now() - t0) / 1000).toFixed(0);
if (!args['no-write']) {
  writeSection(
    'bench:diagnose',
    `## Diagnosis: where entropy minimization can help this model (\`npm run bench:diagnose\`)

Command: \`npm run bench:diagnose -- --per-corruption ${perCorruption} --severity ${severity} --regime ${regime} --seed ${seed}${args.sweep ? ' --sweep' : ''}\`, ${new Date().toISOString().slice(0, 10)}, ${seconds} s.
Node ${process.version}, tfjs wasm backend (one thread). Machine: ${machineLine()}.
Nothing here chooses a hyperparameter; it explains the benchmark. Shipped model, no adaptation, severity ${severity}, ${perCorruption} images per corruption (seed ${seed}). "Reliable" is SAR's first filter, E < E0 = 0.4·ln ${C} = ${margin.toFixed(2)} nats; "reliable and right" is the accuracy of those samples, which are the ones entropy minimization pushes further toward their predicted class.

${profileTable}
${sweepTable ? `\nLearning-rate and adapted-block sweep on the per-corruption stream of the 15 test corruptions (a diagnostic: these rates are not used anywhere; the benchmark's options come from the extra corruptions only). SAR runs with its default reset threshold here (0.2·ln C / ln 1000). Accuracy (%), batch size 1, reset between corruptions; this stream draws its own ${perCorruption} images per corruption, so its no-adapt row differs a little from the profile above:\n\n${sweepTable}\n` : ''}`,
  );
  console.log('wrote the bench:diagnose section of BENCHMARKS.md');
}
