// gemm.wat against tfjs-wasm's own products (XNNPACK) for the frozen weights,
// in one page, rounds alternating between the two: inference and a reliable
// SAR step of a real-size model, on tfjs-wasm's threaded build (gemm.wat's
// columns shared by src/kernels/host/gemm-pool.ts) or on one thread.
//
//   npm run bench:gemm-threads [-- --sizes s --threads 2 --rounds 8 --no-write]
//
// Models are those of `npm run bench:step -- --sizes` (tools/lib/sizes-models.ts),
// generated on first use into .bench-cache/sizes/ (which needs PyTorch).
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { shutdown, withPage } from '../tools/lib/session';
import { nodeSetup } from '../tools/lib/node-env';
import { prepareModel, SIZES } from '../tools/lib/sizes-models';
import { load1, loadLine, machineLine, median, ratios, spread, writeSection } from './report';
import type { GemmAb, GemmAbOptions } from './sizes-page';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: 's' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '8' },
    'no-write': { type: 'boolean', default: false },
  },
});

async function main(): Promise<void> {
  const keys = args.sizes.split(',').filter(Boolean);
  for (const k of keys) if (!(k in SIZES)) throw new RangeError(`unknown size "${k}": choose from ${Object.keys(SIZES).join(', ')}`);
  const threadModes = args.threads.split(',').map((t) => (t === 'all' ? cpus().length : Number(t)));
  const rounds = Math.max(2, Number(args.rounds));
  const loadBefore = loadLine();
  await nodeSetup('wasm');
  const rows: string[] = [];
  let browser = '';
  for (const key of keys) {
    const m = await prepareModel(key, undefined, (s) => console.log(s));
    for (const threads of threadModes) {
      const o: GemmAbOptions = { modelUrl: `/${m.relDir.replace(/^public\//, '')}/`, threads, rounds };
      const r = await withPage(
        async (h) => {
          browser = h.page.context().browser()?.version() ?? '';
          await h.page.waitForFunction('window.wildttaSizes !== undefined', undefined, { timeout: 120_000 });
          return (await h.page.evaluate(`window.wildttaSizes.gemmAb(${JSON.stringify(o)})`)) as GemmAb;
        },
        { path: `bench/sizes.html${threads > 1 ? '?isolate' : ''}` },
      );
      if (r.threads !== threads) throw new Error(`asked for ${threads} thread(s), tfjs-wasm runs ${r.threads} (is the page cross-origin isolated?)`);
      if (r.gemmThreads !== threads) throw new Error(`gemm.wat ran on ${r.gemmThreads} thread(s) of ${threads}`);
      const row = `| ${m.entry.label} | ${threads} | ${rounds} | ${spread(r.inference.gemm)} | ${spread(r.inference.xnnpack)} | ${median(ratios(r.inference.gemm, r.inference.xnnpack)).toFixed(2)}× | ${spread(r.sar.gemm)} | ${spread(r.sar.xnnpack)} | ${median(ratios(r.sar.gemm, r.sar.xnnpack)).toFixed(2)}× | ${load1()} |`;
      console.log(row);
      rows.push(row);
    }
  }
  await shutdown();
  const table = [
    '| model | threads | rounds | inference, gemm.wat (ms) | inference, XNNPACK (ms) | gemm.wat ÷ XNNPACK | SAR step, gemm.wat (ms) | SAR step, XNNPACK (ms) | gemm.wat ÷ XNNPACK | load (1 min) |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  if (args['no-write']) return;
  writeSection(
    'bench:gemm-threads',
    `## gemm.wat against XNNPACK for the frozen weights' products (\`npm run bench:gemm-threads -- --sizes ${keys.join(',')} --threads ${args.threads} --rounds ${rounds}\`)

${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Machine: ${machineLine(browser)}; ${loadBefore} at the start. tfjs-wasm in headless Chromium, the page cross-origin isolated where threads > 1 (the threaded binary; gemm.wat's columns shared between the calling thread and workers of ours). Random seeded weights as in "Real sizes". One page per row: the rounds alternate between gemm.wat's products and tfjs-wasm's own (XNNPACK's, spread over its threads), the order turning, after a warm-up round of each; each round times one inference and one reliable SAR step. Medians (min–max); "÷" is the median of the per-round ratios.

${table}`,
  );
  console.log('wrote the bench:gemm-threads section of BENCHMARKS.md');
}

await main();
