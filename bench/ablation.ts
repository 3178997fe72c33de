// The SAR paper's ablation on the online imbalanced label-shift stream: SAR
// without each of its defences, and Tent with gradient clipping in their
// place; sar-align without each of its pieces, and its forward-only pieces
// alone (issue 14); plus the gradient-norm trace of a collapsing run.
//
//   npm run bench:ablation -- [--seeds 1,2,3] [--scenarios label-shift,mixed] [--per-corruption 100] [--regime imagenet64]
//                             [--backend wasm] [--collapse-lr 0.001]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { CORRUPTIONS } from '../src/data/corruptions';
import type { AdapterOptions } from '../src/methods';
import { shutdown, withPage } from '../tools/lib/session';
import { loadMethodOptions, runWildBench, scenarioTable, summaryTable } from './wild';
import type { ChartSpec } from './plot-page';
import { machineLine, writeSection } from './report';
import type { CorruptionRegime } from '../src/data/corruptions/regime';
import type { Scenario } from './wild-page';

const { values: args } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    scenarios: { type: 'string', default: 'label-shift,mixed' },
    regime: { type: 'string', default: 'imagenet64' },
    'per-corruption': { type: 'string', default: '100' },
    severity: { type: 'string', default: '5' },
    backend: { type: 'string', default: 'wasm' },
    'clip-norms': { type: 'string', default: '1,0.1' },
    'collapse-lr': { type: 'string', default: '0.001' },
    'collapse-corruption': { type: 'string', default: 'gaussian_noise' },
    'collapse-length': { type: 'string', default: '1000' },
    out: { type: 'string', default: 'bench/results/ablation' },
    'no-write': { type: 'boolean', default: false },
    parallel: { type: 'string', default: '1' },
  },
});

const tuned = loadMethodOptions();
const sar = tuned.sar as Extract<AdapterOptions, { method: 'sar' }>;
const tent = tuned.tent as Extract<AdapterOptions, { method: 'tent' }>;
const align = tuned['sar-align'] as Extract<AdapterOptions, { method: 'sar-align' }>;
const regime = args.regime as CorruptionRegime;
const scenarios = args.scenarios.split(',') as Scenario[];
const variants: Record<string, AdapterOptions> = {
  source: { method: 'source' },
  tent,
  ...Object.fromEntries(args['clip-norms'].split(',').map((c) => [`tent + clip ${c}`, { ...tent, clipNorm: Number(c) }])),
  sar,
  // Every sample is "reliable" when the margin exceeds any entropy (ln C at most).
  'sar w/o reliable filter': { ...sar, marginFraction: 1.01 },
  // ρ = 0: the second gradient is taken at θ itself, i.e. plain entropy minimization on reliable samples.
  'sar w/o SAM': { ...sar, rho: 0 },
  // An EMA never drops below a negative threshold.
  'sar w/o recovery': { ...sar, resetThreshold: -1 },
  // sar-align's pieces: each left out of the tuned sar-align, and the forward-only ones alone.
  'sar-align': align,
  'sar-align w/o input alignment': { ...align, inputAlign: false },
  // Without re-centering there is no stream estimate, so the alignment term goes too.
  'sar-align w/o re-centering': { ...align, recenter: false },
  'sar-align w/o alignment term': { ...align, alignWeight: 0 },
  'sar-align w/o collapse watch': { ...align, oneClassShare: 1, highEntropyFraction: 1, agreementFloor: 0 },
  'sar-align w/o SAR updates (lr 0)': { ...align, lr: 0 },
  'input alignment only': { method: 'source', inputAlign: align.inputAlign ?? true },
  're-centering only': { method: 'source', recenter: align.recenter ?? true },
};

const seeds = args.seeds.split(',').map(Number);
const common = {
  regime,
  corruptions: [...CORRUPTIONS],
  severity: Number(args.severity),
  perCorruption: Number(args['per-corruption']),
  plots: false,
  backend: args.backend as 'wasm',
  parallel: Number(args.parallel),
};
const main = await runWildBench({ ...common, seeds, scenarios, methods: Object.keys(variants), outDir: join(args.out, regime), methodOptions: variants });

// A collapsing run: Tent at a large learning rate on one corruption's label-shift stream, next to SAR at the same rate.
const collapseLr = Number(args['collapse-lr']);
const collapse = await runWildBench({
  ...common,
  corruptions: [args['collapse-corruption']],
  perCorruption: Number(args['collapse-length']),
  seeds: [seeds[0]!],
  scenarios: ['label-shift'],
  methods: ['tent', 'sar', 'sar-align'],
  outDir: join(args.out, regime, 'collapse'),
  methodOptions: { tent: { ...tent, lr: collapseLr }, sar: { ...sar, lr: collapseLr }, 'sar-align': { ...align, lr: collapseLr } },
});
const png = join(args.out, regime, 'collapse-grad-norm.png');
const accPng = join(args.out, regime, 'collapse-accuracy.png');
await withPage(
  async (h) => {
    await h.page.waitForFunction('window.drawChart !== undefined', undefined, { timeout: 60_000 });
    const traces = collapse.records.map((r) => r.score.trace!);
    const spec: ChartSpec = {
      title: `Gradient norm per step, label shift on ${args['collapse-corruption']} (severity ${args.severity}), lr ${collapseLr}; accuracy: ${collapse.records.map((r) => `${r.method} ${(r.score.accuracy * 100).toFixed(1)}%`).join(', ')}`,
      xLabel: 'samples seen',
      yLabel: 'gradient norm (log)',
      x: traces[0]!.gradNorm.map((_, i) => i + 1),
      series: collapse.records.map((r) => ({
        label: `${r.method} (${r.score.resets} resets)`,
        values: r.score.trace!.gradNorm.map((g) => (Number.isFinite(g) && g > 0 ? g : null)),
      })),
      logY: true,
    };
    await h.page.evaluate(`window.drawChart(${JSON.stringify(spec)})`);
    await h.page.locator('#chart').screenshot({ path: png });
    // Accuracy over the same stream (moving window of 50), red marks where a method reset.
    const w = 50;
    const moving = (c: number[]) => c.map((_, i) => (i + 1 < w ? null : (100 * c.slice(i + 1 - w, i + 1).reduce((a, b) => a + b, 0)) / w));
    const acc: ChartSpec = {
      title: `Accuracy (moving window of ${w}), label shift on ${args['collapse-corruption']} (severity ${args.severity}, ${regime}), lr ${collapseLr}`,
      xLabel: 'samples seen',
      yLabel: 'accuracy (%)',
      x: traces[0]!.correct.map((_, i) => i + 1),
      series: collapse.records.map((r) => ({ label: `${r.method} (${r.score.resets} resets)`, values: moving(r.score.trace!.correct) })),
      yRange: [0, 100],
    };
    await h.page.evaluate(`window.drawChart(${JSON.stringify(acc)})`);
    await h.page.locator('#chart').screenshot({ path: accPng });
  },
  { path: 'bench/plot.html' },
);
await shutdown();

const table = [
  summaryTable(main.records, scenarios, Object.keys(variants), [...CORRUPTIONS]),
  ...scenarios.map((s) => `#### ${s}\n\n${scenarioTable(main.records, s, Object.keys(variants), [...CORRUPTIONS])}`),
].join('\n\n');
console.log(`\n${table}`);
if (!args['no-write']) {
  writeSection(
    'bench:ablation',
    `## Ablation (\`npm run bench:ablation\`)

Command: \`npm run bench:ablation -- --seeds ${args.seeds} --scenarios ${args.scenarios} --regime ${regime} --per-corruption ${args['per-corruption']} --backend ${args.backend} --collapse-lr ${collapseLr}${Number(args.parallel) > 1 ? ` --parallel ${args.parallel}` : ''}\`, ${new Date().toISOString().slice(0, 10)}, ${(main.seconds + collapse.seconds).toFixed(0)} s.
Backend: ${main.backend} in headless Chromium. Machine: ${machineLine(main.browser)}. Regime ${regime}, severity ${args.severity}, imbalance ratio 500,000 in the label-shift stream, batch size 1, accuracy (%), mean ± std over seeds ${args.seeds} (the Δ column pairs each seed with no adaptation on the same stream).
Variants start from the tuned SAR, Tent and sar-align options (bench/results/tuning.json); "w/o reliable filter" sets E0 above ln C, "w/o SAM" sets ρ = 0, "w/o recovery" never resets; clipping caps Tent's global gradient norm; the sar-align rows leave out one piece each, and the last two rows run a forward-only piece alone.

${table}

A collapsing run: Tent, SAR and sar-align at lr ${collapseLr} (the reference's ViT rate at batch 64) on ${args['collapse-length']} images of ${args['collapse-corruption']}'s label-shift stream, seed ${seeds[0]}:

![Gradient norm of a collapsing run](${png})

![Accuracy of a collapsing run](${accPng})`,
  );
  console.log('wrote the bench:ablation section of BENCHMARKS.md');
}
