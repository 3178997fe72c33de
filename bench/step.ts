// Step-cost benchmark: for each backend Chromium can start here, the median
// time of an inference, a SAR step on a reliable sample and a SAR step on an
// unreliable one, with the ratios to inference, measured in one run on the
// shipped model. Prints the table and writes it into BENCHMARKS.md.
//
//   npm run bench:step -- [--backends webgpu,webgl,wasm,cpu] [--iterations 30] [--warmup 5] [--no-write]
import { parseArgs } from 'node:util';
import { shutdown, withPage } from '../e2e/support/session';
import type { StepCost } from './step-page';
import { machineLine, writeSection } from './report';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: 'webgpu,webgl,wasm,cpu' },
    iterations: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    'no-write': { type: 'boolean', default: false },
  },
});

async function main(): Promise<void> {
  const rows: StepCost[] = [];
  let browserVersion = '';
  for (const backend of args.backends.split(',')) {
    process.stdout.write(`${backend}: `);
    try {
      const row = await withPage(
        async (h) => {
          browserVersion = h.page.context().browser()?.version() ?? '';
          await h.page.waitForFunction('window.wildttaBench !== undefined', undefined, { timeout: 60_000 });
          const o = { backend, modelUrl: '/models/fmnist-vit/', dataUrl: '/data/fashion-mnist/', warmup: Number(args.warmup), iterations: Number(args.iterations) };
          return (await h.page.evaluate(`window.wildttaBench.stepCost(${JSON.stringify(o)})`)) as StepCost;
        },
        { path: 'bench/step.html' },
      );
      rows.push(row);
      console.log(`inference ${row.inferenceMs.toFixed(2)} ms, SAR reliable ${row.sarReliableMs.toFixed(2)} ms (${row.reliableRatio.toFixed(2)}×), unreliable ${row.sarUnreliableMs.toFixed(2)} ms (${row.unreliableRatio.toFixed(2)}×)`);
    } catch (e) {
      console.log(`skipped (${(e as Error).message.split('\n')[0]})`);
    }
  }
  await shutdown();
  if (rows.length === 0) throw new Error('no backend could run');
  const table = [
    '| backend | inference (ms) | SAR step, reliable (ms) | ratio | SAR step, unreliable (ms) | ratio | tensors before → after | GPU bytes before → after |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.backend}${r.adapter ? ` (${r.adapter})` : ''} | ${r.inferenceMs.toFixed(2)} | ${r.sarReliableMs.toFixed(2)} | ${r.reliableRatio.toFixed(2)}× | ${r.sarUnreliableMs.toFixed(2)} | ${r.unreliableRatio.toFixed(2)}× | ${r.memory.tensorsAfterWarmup} → ${r.memory.tensorsAtEnd} | ${r.memory.gpuBytesAfterWarmup ?? '–'} → ${r.memory.gpuBytesAtEnd ?? '–'} |`,
    ),
  ].join('\n');
  console.log(`\n${table}`);
  if (!args['no-write']) {
    writeSection(
      'bench:step',
      `## Step cost (\`npm run bench:step\`)

Shipped model (public/models/fmnist-vit), batch size 1, median of ${args.iterations} timed steps after ${args.warmup} warm-up steps, in headless Chromium, ${new Date().toISOString().slice(0, 10)}.
Machine: ${machineLine(browserVersion)}. "Inference" is the no-adapt step (forward, softmax, entropy, one read); a reliable SAR step is two forwards and two backwards (LayerNorm gradients only); an unreliable one is one forward.
WebGPU and WebGL here run on SwiftShader, a software renderer: their times say nothing about a real GPU.

${table}`,
    );
    console.log('wrote the bench:step section of BENCHMARKS.md');
  }
}

await main();
