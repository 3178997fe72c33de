// Step-cost benchmark: the median time of an inference, a SAR step on a
// reliable sample and one on an unreliable sample, on the shipped model at
// batch size 1, for PyTorch on this machine's CPU (tools/time_torch.py, when
// /usr/bin/python3 has torch) and for our engine in headless Chromium on each
// backend, all in one run; ratios to inference and to PyTorch. Prints the
// table and writes it into BENCHMARKS.md.
//
//   npm run bench:step -- [--backends webgpu,webgl,wasm,wasm-threads,cpu] [--iterations 30] [--warmup 5] [--no-torch] [--no-write]
//   npm run bench:step -- --vit-b16 [--steps 2] [--inferences 1] [--vit-backend webgpu] [--vit-depth 12]
//
// 'wasm' is the one-thread engine; 'wasm-threads' serves the page
// cross-origin isolated (bench/step.html?isolate, which the dev server answers
// with COOP/COEP headers), so tfjs-wasm can load its threaded binary, and asks
// initBackend for one thread per core.
// --vit-b16 times a ViT-B/16 with random weights (generated in the page, not
// stored) instead, and adds its figures to bench/results/step-vit-b16.json
// (one entry per backend and depth), which the BENCHMARKS.md section includes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { shutdown, withPage } from '../e2e/support/session';
import type { StepCost, VitB16Cost } from './step-page';
import { machineLine, writeSection } from './report';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: 'webgpu,webgl,wasm,wasm-threads,cpu' },
    iterations: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    'no-torch': { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    'vit-b16': { type: 'boolean', default: false },
    'vit-backend': { type: 'string', default: 'webgpu' },
    steps: { type: 'string', default: '2' },
    inferences: { type: 'string', default: '1' },
    'vit-depth': { type: 'string', default: '12' },
  },
});

const PYTHON = '/usr/bin/python3';
const VIT_B16_FILE = 'bench/results/step-vit-b16.json';

interface TorchTimes {
  inferenceMs: number;
  sarReliableMs: number;
  sarUnreliableMs: number;
  reliableRatio: number;
  unreliableRatio: number;
}
interface TorchResult {
  torch: string;
  cpus: number;
  check: number[];
  threads: Record<string, TorchTimes>;
}

function runTorch(): TorchResult | string {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return 'python3 has no torch (Debian: apt-get install python3-torch)';
  const r = spawnSync(PYTHON, ['tools/time_torch.py', '--iterations', args.iterations, '--warmup', args.warmup], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) return `tools/time_torch.py failed: ${r.stderr.trim().split('\n').pop()}`;
  return JSON.parse(r.stdout) as TorchResult;
}

async function inPage<T>(expr: (page: Page) => Promise<T>, isolated: boolean): Promise<{ value: T; browser: string }> {
  let browser = '';
  const value = await withPage(
    async (h) => {
      browser = h.page.context().browser()?.version() ?? '';
      await h.page.waitForFunction('window.wildttaBench !== undefined', undefined, { timeout: 60_000 });
      return expr(h.page);
    },
    // `?isolate`: the dev server (vite.config.ts) answers with COOP/COEP, which makes the page
    // cross-origin isolated (SharedArrayBuffer, so wasm threads).
    { path: `bench/step.html${isolated ? '?isolate' : ''}` },
  );
  return { value, browser };
}

const f2 = (x: number) => x.toFixed(2);
const loadLine = () => `load average ${loadavg().map((l) => l.toFixed(2)).join(', ')} on ${cpus().length} cores`;

async function stepTable(): Promise<void> {
  const loadBefore = loadLine();
  console.log(`machine: ${loadBefore}`);
  // PyTorch runs just before and just after the wasm rows (the comparison that matters), and its
  // figures are the mean of the two runs, so a change in machine load between them hits both engines.
  const torchRuns: TorchResult[] = [];
  let torchSkipped = args['no-torch'] ? 'not run (--no-torch)' : '';
  const timeTorch = () => {
    if (torchSkipped) return;
    process.stdout.write(`PyTorch (run ${torchRuns.length + 1}): `);
    const r = runTorch();
    if (typeof r === 'string') {
      torchSkipped = r;
      console.log(`skipped (${r})`);
      return;
    }
    torchRuns.push(r);
    console.log(Object.entries(r.threads).map(([t, x]) => `${t} thread(s): inference ${f2(x.inferenceMs)} ms, SAR reliable ${f2(x.sarReliableMs)} ms, unreliable ${f2(x.sarUnreliableMs)} ms`).join('; '));
  };
  const names = args.backends.split(',');
  const wasmFirst = [...names.filter((n) => n.startsWith('wasm')), ...names.filter((n) => !n.startsWith('wasm'))];
  const lastWasm = wasmFirst.filter((n) => n.startsWith('wasm')).pop();
  timeTorch();
  let torch: TorchResult | string = torchRuns[0] ?? torchSkipped;

  const rows: Array<StepCost & { label: string; check?: number }> = [];
  let browserVersion = '';
  for (const name of wasmFirst) {
    process.stdout.write(`${name}: `);
    const threaded = name === 'wasm-threads';
    const backend = threaded ? 'wasm' : name;
    const o = {
      backend,
      modelUrl: '/models/fmnist-vit/',
      dataUrl: '/data/fashion-mnist/',
      warmup: Number(args.warmup),
      iterations: Number(args.iterations),
      threads: threaded ? cpus().length : 1,
      check: typeof torch === 'object' && backend === 'wasm',
    };
    try {
      const { value: row, browser } = await inPage((page) => page.evaluate(`window.wildttaBench.stepCost(${JSON.stringify(o)})`) as Promise<StepCost>, threaded);
      browserVersion = browser;
      if (threaded && !row.crossOriginIsolated) throw new Error('the page is not cross-origin isolated');
      const check = typeof torch === 'object' && row.checkLogits ? Math.max(...row.checkLogits.map((v, i) => Math.abs(v - (torch as TorchResult).check[i]!))) : undefined;
      rows.push({ ...row, label: name, ...(check === undefined ? {} : { check }) });
      console.log(
        `inference ${f2(row.inferenceMs)} ms, SAR reliable ${f2(row.sarReliableMs)} ms (${f2(row.reliableRatio)}×), unreliable ${f2(row.sarUnreliableMs)} ms (${f2(row.unreliableRatio)}×)${row.threads !== null ? `, ${row.threads} thread(s)` : ''}, flags ${JSON.stringify(row.flags)}${check !== undefined ? `, logits vs PyTorch max |Δ| ${check.toExponential(1)}` : ''}`,
      );
    } catch (e) {
      console.log(`skipped (${(e as Error).message.split('\n')[0]})`);
    }
    if (name === lastWasm) timeTorch();
  }
  await shutdown();
  if (torchRuns.length > 0) {
    const mean = (f: (r: TorchResult) => number) => torchRuns.reduce((a, r) => a + f(r), 0) / torchRuns.length;
    const threads = Object.keys(torchRuns[0]!.threads);
    torch = {
      ...torchRuns[0]!,
      threads: Object.fromEntries(
        threads.map((t) => [
          t,
          {
            inferenceMs: mean((r) => r.threads[t]!.inferenceMs),
            sarReliableMs: mean((r) => r.threads[t]!.sarReliableMs),
            sarUnreliableMs: mean((r) => r.threads[t]!.sarUnreliableMs),
            reliableRatio: mean((r) => r.threads[t]!.reliableRatio),
            unreliableRatio: mean((r) => r.threads[t]!.unreliableRatio),
          },
        ]),
      ),
    };
  }
  const torchSpread =
    torchRuns.length > 1 ? ` (mean of ${torchRuns.length} runs, before and after the wasm rows; 1-thread SAR step ${torchRuns.map((r) => f2(r.threads['1']!.sarReliableMs)).join(' and ')} ms)` : '';
  if (rows.length === 0) throw new Error('no backend could run');
  const loadAfter = loadLine();

  const torch1 = typeof torch === 'object' ? torch.threads['1'] : undefined;
  const lines = [
    '| engine | backend | threads | steps per sample | inference (ms) | SAR step, reliable (ms) | × inference | SAR step, unreliable (ms) | × inference | PyTorch 1-thread SAR step ÷ ours | tensors before → after | GPU bytes before → after |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  if (typeof torch === 'object') {
    for (const [t, r] of Object.entries(torch.threads)) {
      lines.push(`| PyTorch ${torch.torch} eager | CPU | ${t} | – | ${f2(r.inferenceMs)} | ${f2(r.sarReliableMs)} | ${f2(r.reliableRatio)}× | ${f2(r.sarUnreliableMs)} | ${f2(r.unreliableRatio)}× | ${f2(torch1!.sarReliableMs / r.sarReliableMs)} | – | – |`);
    }
  }
  for (const r of rows) {
    const vsTorch = torch1 ? f2(torch1.sarReliableMs / r.sarReliableMs) : '–';
    lines.push(
      `| wildtta (tfjs) | ${r.label}${r.adapter ? ` (${r.adapter})` : ''} | ${r.threads ?? '–'} | ${r.repeat} | ${f2(r.inferenceMs)} | ${f2(r.sarReliableMs)} | ${f2(r.reliableRatio)}× | ${f2(r.sarUnreliableMs)} | ${f2(r.unreliableRatio)}× | ${vsTorch} | ${r.memory.tensorsBefore} → ${r.memory.tensorsAfter} | ${r.memory.gpuBytesBefore ?? '–'} → ${r.memory.gpuBytesAfter ?? '–'} |`,
    );
  }
  const table = lines.join('\n');
  console.log(`\n${table}`);

  // The issue's targets, checked on the figures above.
  const targets: string[] = [];
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  for (const r of rows) {
    if (!['wasm', 'webgpu'].includes(r.backend)) continue;
    const tag = `${r.label}${r.adapter ? ` (${r.adapter})` : ''}`;
    targets.push(`- ${tag}: SAR reliable ${f2(r.reliableRatio)}× inference (target ≤ 4.0×: ${verdict(r.reliableRatio <= 4)}); unreliable ${f2(r.unreliableRatio)}× (target ≤ 1.15×: ${verdict(r.unreliableRatio <= 1.15)})`);
    if (r.label === 'wasm' && torch1) {
      const x = torch1.sarReliableMs / r.sarReliableMs;
      targets.push(`- wasm, 1 thread vs PyTorch 1 thread: PyTorch's SAR step takes ${f2(x)}× ours (target ≥ 1.0: ${verdict(x >= 1)}; stretch ≥ 1.5: ${verdict(x >= 1.5)})`);
    }
  }
  // sar-align against SAR, per round (issue 14: alignment adds ≤ 15% to a reliable step, and to an unreliable one nothing beyond a forward).
  const alignLines = ['| backend | sar-align reliable (ms) | ÷ SAR reliable | sar-align unreliable (ms) | ÷ SAR unreliable |', '|---|---|---|---|---|'];
  for (const r of rows) {
    if (!r.align) continue;
    const tag = `${r.label}${r.adapter ? ` (${r.adapter})` : ''}`;
    alignLines.push(`| ${tag} | ${f2(r.align.reliableMs)} | ${f2(r.align.reliableOverSar)}× | ${f2(r.align.unreliableMs)} | ${f2(r.align.unreliableOverSar)}× |`);
    if (['wasm', 'webgpu'].includes(r.backend)) {
      targets.push(`- ${tag}: sar-align's reliable step ${f2(r.align.reliableOverSar)}× SAR's (target ≤ 1.15×: ${verdict(r.align.reliableOverSar <= 1.15)}); its unreliable step ${f2(r.align.unreliableOverSar)}× SAR's (a forward and the read either way)`);
    }
  }
  const alignTable = alignLines.length > 2 ? alignLines.join('\n') : '';
  if (alignTable) console.log(`\n${alignTable}`);
  const check = rows.find((r) => r.check !== undefined)?.check;
  console.log(targets.join('\n'));

  if (!args['no-write']) {
    const torchLine =
      typeof torch === 'object'
        ? `PyTorch: \`tools/time_torch.py\` with Debian's python3-torch ${torch.torch}, eager, the paper's SAR step (the prediction's graph reused for Loss1, SAM, second forward and backward) with our reliable-only update, gradients only for the adapted LayerNorms, run in the same command${torchSpread}${check !== undefined ? `; its logits on a constant image match ours to ${check.toExponential(1)}` : ''}.`
        : `PyTorch: ${torch}.`;
    writeSection(
      'bench:step',
      `## Step cost (\`npm run bench:step\`)

Shipped model (public/models/fmnist-vit), batch size 1, median of ${args.iterations} timed samples after ${args.warmup} warm-up steps, a sample being the mean of the row's "steps per sample" steps in a row (enough for an inference sample to last 10 ms: a page that is not cross-origin isolated gets a timer that ticks every 0.1 ms); the samples run in rounds of one inference, one reliable and one unreliable sample (the order turning each round), each step timed until its update is done and reported (\`flush()\`, so a GPU's queued work is billed to its own step), and "× inference" is the median of the per-round ratios (the three samples of a round run milliseconds apart, so the ratio hardly sees the machine's load change, unlike the absolute times), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.
Machine: ${machineLine(browserVersion)}; ${loadBefore} at the start, ${loadAfter.replace(/ on .*/, '')} at the end (other jobs share the cores: absolute times are noisy, the ratios within a row much less so).
"Inference" is the no-adapt step (forward, softmax, entropy, one read); a reliable SAR step is the prediction's forward and its backward, the SAM ascent, a second forward and backward at θ+ε and the update (LayerNorm scale/shift gradients only, no weight gradients); an unreliable one is one forward and the read.
${torchLine}
wasm: Chromium's tfjs-wasm with SIMD; "threads" > 1 means the page was served cross-origin isolated (COOP/COEP), so the threaded binary ran. WebGPU used \`WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE\` 64 and \`WEBGPU_CPU_FORWARD\` off.
WebGPU and WebGL here run on SwiftShader, a software renderer: their times say nothing about a real GPU.

${table}
${alignTable ? `\nsar-align (issue 14: input alignment, feature re-centering, the alignment term and the collapse watch on top of SAR) in the same rounds; "÷ SAR" is the median of the per-round ratios to SAR's step of the same kind:\n\n${alignTable}\n` : ''}
Targets of issues 7 and 14 on these figures:
${targets.join('\n')}

${vitB16Section()}`,
    );
    console.log('wrote the bench:step section of BENCHMARKS.md');
  }
}

type VitB16Record = VitB16Cost & { date: string; machine: string; command: string; minutes: number; depth: number };

function readVitB16(): VitB16Record[] {
  return existsSync(VIT_B16_FILE) ? (JSON.parse(readFileSync(VIT_B16_FILE, 'utf8')) as VitB16Record[]) : [];
}

function vitB16Section(): string {
  const runs = readVitB16();
  if (runs.length === 0) return '### ViT-B/16\n\nNot run yet (`npm run bench:step -- --vit-b16`).';
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rows = runs.map(
    (r) =>
      `| \`${r.command}\` | ${r.date} | ${r.backend}${r.adapter ? ` (${r.adapter})` : ''} | ${r.depth} | ${(r.parameters / 1e6).toFixed(1)} M | ${r.firstInferenceMs.toFixed(0)} | ${r.inferenceMs.map((x) => x.toFixed(0)).join(', ')} | ${r.firstSarStepMs.toFixed(0)} | ${r.sarStepMs.length} steps, mean ${mean(r.sarStepMs).toFixed(0)} (${(mean(r.sarStepMs) / mean(r.inferenceMs)).toFixed(2)}× inference) | ${r.updates} | ${r.memory.tensorsBefore} → ${r.memory.tensorsAfter} | ${r.memory.gpuBytesBefore ?? '–'} → ${r.memory.gpuBytesAfter ?? '–'} | ${r.minutes.toFixed(1)} |`,
  );
  return `### ViT-B/16 (\`npm run bench:step -- --vit-b16\`)

ViT-B/16 shapes (224×224×3, patch 16, width 768, 12 heads, MLP 3072, 1000 classes) with seeded random weights in timm's layout, generated in the page at run time (nothing stored); SAR adapting the LayerNorms of all but the last quarter of the blocks, every sample reliable; each step timed until its update's report is read back; memory taken after the first step and after the last. Machine: ${runs[0]!.machine}. \`--vit-depth\` < 12 keeps only the first blocks (same block shapes), for backends too slow here for the whole model: on SwiftShader's software WebGPU the whole model takes about 80 s per inference and 4.5 min per SAR step, so 50 steps of it (about 4 hours) do not fit a run here.

| command | date (UTC) | backend | blocks | parameters | first inference (ms) | inference (ms) | first SAR step (ms) | SAR steps (ms) | updates | tensors after first step → after last | GPU bytes | run (min) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

On a real GPU: not measured yet. No GPU machine was lent to the session that wrote this (the \`device\` tool was not available to it); \`npm run bench:step -- --vit-b16 --steps 50\` on one adds its row here.`;
}

async function vitB16(): Promise<void> {
  const started = Date.now();
  const o = { backend: args['vit-backend'], steps: Number(args.steps), inferences: Number(args.inferences), depth: Number(args['vit-depth']) };
  console.log(`ViT-B/16 on ${o.backend}: ${o.inferences} inference(s), ${o.steps} SAR step(s) after one of each untimed...`);
  const { value: r, browser } = await inPage((page) => page.evaluate(`window.wildttaBench.vitB16(${JSON.stringify(o)})`) as Promise<VitB16Cost>, false);
  await shutdown();
  const minutes = (Date.now() - started) / 60_000;
  console.log(JSON.stringify(r, null, 1));
  if (!args['no-write']) {
    mkdirSync('bench/results', { recursive: true });
    const command = `npm run bench:step -- --vit-b16 --vit-backend ${o.backend} --steps ${o.steps} --inferences ${o.inferences}${o.depth !== 12 ? ` --vit-depth ${o.depth}` : ''}`;
    const record: VitB16Record = { ...r, date: new Date().toISOString().slice(0, 16).replace('T', ' '), machine: machineLine(browser), command, minutes, depth: o.depth };
    const runs = readVitB16().filter((x) => !(x.backend === r.backend && x.depth === o.depth));
    writeFileSync(VIT_B16_FILE, `${JSON.stringify([...runs, record], null, 1)}\n`);
    console.log(`wrote ${VIT_B16_FILE} (the next \`npm run bench:step\` puts it into BENCHMARKS.md)`);
  }
}

await (args['vit-b16'] ? vitB16() : stepTable());
