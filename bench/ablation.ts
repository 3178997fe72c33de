// The SAR paper's ablation on the online imbalanced label-shift stream: SAR
// without each of its defences, and Tent with gradient clipping in their
// place; plus the gradient-norm trace of a collapsing run.
//
//   npm run bench:ablation -- [--seeds 1] [--per-corruption 300] [--backend wasm] [--collapse-lr 0.01]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { CORRUPTIONS } from '../src/data/corruptions';
import type { AdapterOptions } from '../src/methods';
import { shutdown, withPage } from '../e2e/support/session';
import { loadMethodOptions, runWildBench, scenarioTable } from './wild';
import type { ChartSpec } from './plot-page';
import { machineLine, writeSection } from './report';

const { values: args } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1' },
    'per-corruption': { type: 'string', default: '300' },
    severity: { type: 'string', default: '5' },
    backend: { type: 'string', default: 'wasm' },
    'clip-norms': { type: 'string', default: '1,0.1' },
    'collapse-lr': { type: 'string', default: '0.01' },
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
};

const seeds = args.seeds.split(',').map(Number);
const common = { corruptions: [...CORRUPTIONS], severity: Number(args.severity), perCorruption: Number(args['per-corruption']), plots: false, backend: args.backend as 'wasm', parallel: Number(args.parallel) };
const main = await runWildBench({ ...common, seeds, scenarios: ['label-shift'], methods: Object.keys(variants), outDir: args.out, methodOptions: variants });

// A collapsing run: Tent at a large learning rate on one corruption's label-shift stream, next to SAR at the same rate.
const collapseLr = Number(args['collapse-lr']);
const collapse = await runWildBench({
  ...common,
  corruptions: [args['collapse-corruption']],
  perCorruption: Number(args['collapse-length']),
  seeds: [seeds[0]!],
  scenarios: ['label-shift'],
  methods: ['tent', 'sar'],
  outDir: join(args.out, 'collapse'),
  methodOptions: { tent: { ...tent, lr: collapseLr }, sar: { ...sar, lr: collapseLr } },
});
const png = join(args.out, 'collapse-grad-norm.png');
await withPage(
  async (h) => {
    await h.page.waitForFunction('window.drawChart !== undefined', undefined, { timeout: 60_000 });
    const traces = collapse.records.map((r) => r.score.trace!);
    const spec: ChartSpec = {
      title: `Gradient norm per step, label shift on ${args['collapse-corruption']} (severity ${args.severity}), lr ${collapseLr}; accuracy: ${collapse.records.map((r) => `${r.method} ${(r.score.accuracy * 100).toFixed(1)}%`).join(', ')}`,
      xLabel: 'samples seen',
      yLabel: 'gradient norm (log)',
      x: traces[0]!.gradNorm.map((_, i) => i + 1),
      series: collapse.records.map((r) => ({ label: `${r.method} (${r.score.resets} resets)`, values: r.score.trace!.gradNorm.map((g) => (Number.isFinite(g) && g > 0 ? g : null)) })),
      logY: true,
    };
    await h.page.evaluate(`window.drawChart(${JSON.stringify(spec)})`);
    await h.page.locator('#chart').screenshot({ path: png });
  },
  { path: 'bench/plot.html' },
);
await shutdown();

const table = scenarioTable(main.records, 'label-shift', Object.keys(variants), [...CORRUPTIONS]);
console.log(`\n${table}`);
if (!args['no-write']) {
  writeSection(
    'bench:ablation',
    `## Ablation on online imbalanced label shift (\`npm run bench:ablation\`)

Command: \`npm run bench:ablation -- --seeds ${args.seeds} --per-corruption ${args['per-corruption']} --backend ${args.backend}${Number(args.parallel) > 1 ? ` --parallel ${args.parallel}` : ''}\`, ${new Date().toISOString().slice(0, 10)}, ${(main.seconds + collapse.seconds).toFixed(0)} s.
Backend: ${main.backend} in headless Chromium. Machine: ${machineLine(main.browser)}. Severity ${args.severity}, imbalance ratio 500,000, batch size 1, accuracy (%).
Variants start from the tuned SAR and Tent options; "w/o reliable filter" sets E0 above ln C, "w/o SAM" sets ρ = 0, "w/o recovery" never resets; clipping caps Tent's global gradient norm.

${table}

![Gradient norm of a collapsing run](${png})`,
  );
  console.log('wrote the bench:ablation section of BENCHMARKS.md');
}
