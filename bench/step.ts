// Step-cost benchmark: the median time of an inference, a SAR step on a
// reliable sample and one on an unreliable sample, on the shipped model at
// batch size 1, for PyTorch on this machine's CPU (tools/time_torch.py, when
// /usr/bin/python3 has torch) and for our engine in headless Chromium on each
// backend, all in one run; ratios to inference and to PyTorch. Prints the
// table and writes it into BENCHMARKS.md.
//
//   npm run bench:step -- [--backends webgpu,webgl,wasm,wasm-threads,cpu] [--iterations 30] [--warmup 5] [--no-torch] [--no-write]
//                         [--frame-backends wasm,webgpu] [--no-frame]
//   npm run bench:step -- --sizes ti,s,b [--resnets rn-fmnist,rn50] [--threads 1,all]   (bench/sizes.ts)
//   npm run bench:step -- --vit-b16 [--steps 2] [--inferences 1] [--vit-backend webgpu] [--vit-depth 12]
//
// 'wasm' is the one-thread engine; 'wasm-threads' serves the page
// cross-origin isolated (bench/step.html?isolate, which the dev server answers
// with COOP/COEP headers), so tfjs-wasm can load its threaded binary, and asks
// initBackend for one thread per core.
// The frame-path rows (issue 16; bench/frame-path-page.ts and the demo page)
// time a whole frame on each of --frame-backends next to the adapter's step.
// --vit-b16 times a ViT-B/16 with random weights (generated in the page, not
// stored) instead, and adds its figures to bench/results/step-vit-b16.json
// (one entry per backend and depth), which the BENCHMARKS.md section includes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { shutdown, withPage } from '../tools/lib/session';
import { ensureLibBuilt } from '../tools/lib/lib-build';
import type { BackboneStepCost, StepCost, VitB16Cost } from './step-page';
import type { FramePathCost, FramePathOptions } from './frame-path-page';
import { machineLine, writeSection } from './report';

// `--sizes ti,s,b`: the real-size rows beside ONNX Runtime Web and PyTorch (issue 24), a run of their own.
if (process.argv.slice(2).some((a) => a === '--sizes' || a.startsWith('--sizes='))) {
  await import('./sizes');
  process.exit(process.exitCode ?? 0);
}

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
    'frame-backends': { type: 'string', default: 'wasm,webgpu' },
    'no-frame': { type: 'boolean', default: false },
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
const loadLine = () =>
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(', ')} on ${cpus().length} cores`;

// ---------------------------------------------------------------- the whole frame (issue 16)

interface DemoRun {
  compare: boolean;
  fps: number;
  frames: number;
  /** Mean ms per frame: wall clock, the engine's frame step (and its parts), the rest. */
  wallMs: number;
  engineMs: number;
  prepareMs: number;
  stepMs: number;
  pageMs: number;
}

/** The demo at "as fast as it adapts" (labeled stream, gaussian noise 5, SAR): frames per second and the split, after a warm-up. */
async function demoRun(backend: string, compare: boolean, warmupFrames: number, seconds: number): Promise<DemoRun> {
  return withPage(
    async (h) => {
      const deadline = Date.now() + 300_000;
      const frames = async () =>
        ((await h.page.evaluate('window.wildttaDemo?.state()').catch(() => undefined)) as { frames?: number; state?: string; message?: string } | undefined) ??
        {};
      for (;;) {
        const st = await frames();
        if (st.state === 'error') throw new Error(`the demo failed: ${st.message}`);
        if ((st.frames ?? 0) >= warmupFrames) break;
        if (Date.now() > deadline) throw new Error('the demo did not start');
        await new Promise((r) => setTimeout(r, 200));
      }
      await h.page.evaluate('window.wildttaDemo.resetTiming()');
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const t = (await h.page.evaluate('window.wildttaDemo.timing()')) as Record<string, number>;
      const per = (k: string) => t[k]! / Math.max(1, t.frames!);
      return {
        compare,
        fps: (1000 * t.frames!) / t.wallMs!,
        frames: t.frames!,
        wallMs: t.wallMs! / Math.max(1, t.frames!),
        engineMs: per('engineMs'),
        prepareMs: per('prepareMs'),
        stepMs: per('stepMs'),
        pageMs: per('pageMs'),
      };
    },
    { path: `demo/?input=stream&backend=${backend}&method=sar&fps=max&compare=${compare ? 1 : 0}&corruption=gaussian_noise&severity=5` },
  );
}

interface FrameRow {
  label: string;
  cost: FramePathCost;
  demo: DemoRun[];
}

async function frameRows(): Promise<FrameRow[]> {
  // The worker row loads dist/wildtta.worker.js.
  ensureLibBuilt();
  const rows: FrameRow[] = [];
  for (const backend of args['frame-backends'].split(',').filter(Boolean)) {
    process.stdout.write(`frame path, ${backend}: `);
    // SwiftShader's WebGPU takes ~0.3 s a step: fewer, shorter samples there.
    const slow = backend !== 'wasm' && backend !== 'cpu';
    const o: FramePathOptions = {
      backend: backend as FramePathOptions['backend'],
      modelUrl: '/models/fmnist-vit/',
      dataUrl: '/data/fashion-mnist/',
      workerAssetsUrl: '/dist/',
      rounds: slow ? 3 : 30,
      repeat: slow ? 2 : 5,
      warmup: slow ? 2 : 10,
    };
    try {
      const { value: cost } = await inPage((page) => page.evaluate(`window.wildttaBench.framePath(${JSON.stringify(o)})`) as Promise<FramePathCost>, false);
      const demo: DemoRun[] = [];
      // Comparison on and off, twice each in turn, so a change in load hits both.
      for (const compare of [true, false, true, false]) demo.push(await demoRun(backend, compare, slow ? 5 : 100, slow ? 20 : 6));
      rows.push({ label: backend, cost, demo });
      console.log(
        `adapter ${f2(cost.ms.adapter)} ms; engine ${f2(cost.ratio.engine)}×, with reference ${f2(cost.ratio.engineCompare)}×, classify ${f2(cost.ratio.classify)}×, in a worker ${f2(cost.ratio.classifyWorker)}×; demo ${demo.map((d) => `${d.compare ? 'on' : 'off'} ${d.fps.toFixed(1)}`).join(', ')} frames/s`,
      );
    } catch (e) {
      console.log(`skipped (${(e as Error).message.split('\n')[0]})`);
    }
  }
  return rows;
}

function frameSection(rows: FrameRow[]): { text: string; targets: string[] } {
  if (rows.length === 0) return { text: '', targets: [] };
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  const best = (r: FrameRow, compare: boolean) => r.demo.filter((d) => d.compare === compare).sort((a, b) => b.fps - a.fps);
  const lines = [
    '| backend | adapter step (ms) | engine frame step | × adapter | engine, reference + preview on | × adapter | `classify()` on the page | × adapter | `classify()`, `worker: true` | × adapter | tensors before → after |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${f2(r.cost.ms.adapter)} | ${f2(r.cost.ms.engine)} | ${f2(r.cost.ratio.engine)}× | ${f2(r.cost.ms.engineCompare)} | ${f2(r.cost.ratio.engineCompare)}× | ${f2(r.cost.ms.classify)} | ${f2(r.cost.ratio.classify)}× | ${f2(r.cost.ms.classifyWorker)} | ${f2(r.cost.ratio.classifyWorker)}× | ${r.cost.memory.tensorsBefore} → ${r.cost.memory.tensorsAfter} |`,
    ),
  ];
  const split = [
    '| backend | where | preparation (frame → tensor, corruption) | adapter step | result | total |',
    '|---|---|---|---|---|---|',
    ...rows.flatMap((r) =>
      (['engine', 'engineCompare'] as const).map((k) => {
        const s = r.cost.split[k];
        return `| ${r.label} | engine frame step${k === 'engineCompare' ? ', reference + preview' : ''} | ${f2(s.prepare)} | ${f2(s.step)} | ${f2(s.rest)} | ${f2(s.prepare + s.step + s.rest)} |`;
      }),
    ),
  ];
  const demo = [
    '| backend | comparison | frames/s (runs) | ms per frame | in the engine (preparation · adapter step · result) | outside it (messages, page) | × adapter step |',
    '|---|---|---|---|---|---|---|',
    ...rows.flatMap((r) =>
      [true, false].map((compare) => {
        const runs = best(r, compare);
        const d = runs[0]!;
        return `| ${r.label} | ${compare ? 'on' : 'off'} | ${runs.map((x) => x.fps.toFixed(1)).join(', ')} | ${f2(d.wallMs)} | ${f2(d.engineMs)} (${f2(d.prepareMs)} · ${f2(d.stepMs)} · ${f2(d.engineMs - d.prepareMs - d.stepMs)}) | ${f2(d.wallMs - d.engineMs)} | ${f2(d.wallMs / r.cost.ms.adapter)}× |`;
      }),
    ),
  ];
  const targets: string[] = [];
  for (const r of rows.filter((x) => x.label === 'wasm')) {
    const on = best(r, true).map((d) => d.fps);
    const off = best(r, false).map((d) => d.fps);
    targets.push(
      `- wasm: engine frame step ${f2(r.cost.ratio.engine)}× the adapter's reliable step (target ≤ 1.3×: ${verdict(r.cost.ratio.engine <= 1.3)}); \`classify()\` on the page ${f2(r.cost.ratio.classify)}× (≤ 1.5×: ${verdict(r.cost.ratio.classify <= 1.5)}); with \`worker: true\` ${f2(r.cost.ratio.classifyWorker)}× (≤ 2×: ${verdict(r.cost.ratio.classifyWorker <= 2)})`,
      `- wasm: the demo at "as fast as it adapts" runs ${Math.min(...on).toFixed(1)}-${Math.max(...on).toFixed(1)} frames/s with the comparison on (target ≥ 100: ${verdict(Math.min(...on) >= 100)}) and ${Math.min(...off).toFixed(1)}-${Math.max(...off).toFixed(1)} off (≥ 150: ${verdict(Math.min(...off) >= 150)})`,
    );
  }
  const text = `### The whole frame (issue 16)

Per frame in a stream (frames back to back, no flush between them), on the shipped model, every frame reliable (SAR with a margin above any entropy, so each pays a whole reliable step), gaussian noise 5: median of 30 samples of 5 frames on wasm (3 of 2 on the slow software GPU backends), one sample of each kind per round, the order turning each round; "× adapter" is the median of the per-round ratios to \`adapter.step\` on frames already prepared. The engine's frame step takes the Fashion-MNIST bytes (28×28, 0-255), preprocesses them, corrupts them on the backend and runs the step; "reference + preview" adds the frozen source model on the clean and the corrupted frame and the corrupted frame itself, all in the step's one read. \`classify()\` is the public API on an \`ImageData\`; with \`worker: true\` it includes the ImageBitmap transfer and the message round trip.

${lines.join('\n')}

Where the engine's frame step goes (mean ms per frame, from the results' own timing):

${split.join('\n')}

The demo (\`demo/?input=stream&method=sar&fps=max&corruption=gaussian_noise&severity=5\`, its engine in a worker, two frames in flight, images drawn with the next animation frame), labeled stream, after a warm-up, 4 runs alternating the comparison on and off; the split is the run with the most frames per second. "Outside it" is what the worker's message handling and the page add to the engine's own frame time.

${demo.join('\n')}
`;
  return { text, targets };
}

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
    console.log(
      Object.entries(r.threads)
        .map(([t, x]) => `${t} thread(s): inference ${f2(x.inferenceMs)} ms, SAR reliable ${f2(x.sarReliableMs)} ms, unreliable ${f2(x.sarUnreliableMs)} ms`)
        .join('; '),
    );
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
      const { value: row, browser } = await inPage(
        (page) => page.evaluate(`window.wildttaBench.stepCost(${JSON.stringify(o)})`) as Promise<StepCost>,
        threaded,
      );
      browserVersion = browser;
      if (threaded && !row.crossOriginIsolated) throw new Error('the page is not cross-origin isolated');
      const check =
        typeof torch === 'object' && row.checkLogits ? Math.max(...row.checkLogits.map((v, i) => Math.abs(v - (torch as TorchResult).check[i]!))) : undefined;
      rows.push({ ...row, label: name, ...(check === undefined ? {} : { check }) });
      console.log(
        `inference ${f2(row.inferenceMs)} ms, SAR reliable ${f2(row.sarReliableMs)} ms (${f2(row.reliableRatio)}×), unreliable ${f2(row.sarUnreliableMs)} ms (${f2(row.unreliableRatio)}×)${row.threads !== null ? `, ${row.threads} thread(s)` : ''}, flags ${JSON.stringify(row.flags)}${check !== undefined ? `, logits vs PyTorch max |Δ| ${check.toExponential(1)}` : ''}`,
      );
    } catch (e) {
      console.log(`skipped (${(e as Error).message.split('\n')[0]})`);
    }
    if (name === lastWasm) timeTorch();
  }
  const frames = args['no-frame'] ? [] : await frameRows();
  // The other families (issues 17, 26): the shipped GroupNorm ResNet and ConvNeXt, on wasm.
  const autodiffRows: Array<BackboneStepCost & { label: string }> = [];
  for (const m of [
    { label: 'GroupNorm ResNet', folder: 'fmnist-resnet-gn' },
    { label: 'ConvNeXt', folder: 'fmnist-convnext' },
  ]) {
    try {
      const o = { backend: 'wasm', modelUrl: `/models/${m.folder}/`, warmup: Number(args.warmup), iterations: Number(args.iterations) };
      const r = (await inPage((page) => page.evaluate(`window.wildttaBench.backboneCost(${JSON.stringify(o)})`) as Promise<BackboneStepCost>, false)).value;
      autodiffRows.push({ ...r, label: m.label });
      console.log(`${m.label} (wasm): inference ${f2(r.inferenceMs)} ms, SAR reliable ${f2(r.sarReliableMs)} ms (${f2(r.reliableRatio)}×)`);
    } catch (e) {
      console.log(`${m.label}: skipped (${(e as Error).message.split('\n')[0]})`);
    }
  }
  await shutdown();
  const frameText = frameSection(frames);
  if (frameText.text) console.log(`\n${frameText.text}`);
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
    torchRuns.length > 1
      ? ` (mean of ${torchRuns.length} runs, before and after the wasm rows; 1-thread SAR step ${torchRuns.map((r) => f2(r.threads['1']!.sarReliableMs)).join(' and ')} ms)`
      : '';
  if (rows.length === 0) throw new Error('no backend could run');
  const loadAfter = loadLine();

  const torch1 = typeof torch === 'object' ? torch.threads['1'] : undefined;
  const lines = [
    '| engine | backend | threads | steps per sample | inference (ms) | SAR step, reliable (ms) | × inference | SAR step, unreliable (ms) | × inference | PyTorch 1-thread SAR step ÷ ours | tensors before → after | GPU bytes before → after |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  if (typeof torch === 'object') {
    for (const [t, r] of Object.entries(torch.threads)) {
      lines.push(
        `| PyTorch ${torch.torch} eager | CPU | ${t} | – | ${f2(r.inferenceMs)} | ${f2(r.sarReliableMs)} | ${f2(r.reliableRatio)}× | ${f2(r.sarUnreliableMs)} | ${f2(r.unreliableRatio)}× | ${f2(torch1!.sarReliableMs / r.sarReliableMs)} | – | – |`,
      );
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
    targets.push(
      `- ${tag}: SAR reliable ${f2(r.reliableRatio)}× inference (target ≤ 4.0×: ${verdict(r.reliableRatio <= 4)}); unreliable ${f2(r.unreliableRatio)}× (target ≤ 1.15×: ${verdict(r.unreliableRatio <= 1.15)})`,
    );
    if (r.label === 'wasm' && torch1) {
      const x = torch1.sarReliableMs / r.sarReliableMs;
      targets.push(
        `- wasm, 1 thread vs PyTorch 1 thread: PyTorch's SAR step takes ${f2(x)}× ours (target ≥ 1.0: ${verdict(x >= 1)}; stretch ≥ 1.5: ${verdict(x >= 1.5)})`,
      );
    }
  }
  // sar-align against SAR, per round (issue 14: alignment adds ≤ 15% to a reliable step, and to an unreliable one nothing beyond a forward).
  const alignLines = ['| backend | sar-align reliable (ms) | ÷ SAR reliable | sar-align unreliable (ms) | ÷ SAR unreliable |', '|---|---|---|---|---|'];
  for (const r of rows) {
    if (!r.align) continue;
    const tag = `${r.label}${r.adapter ? ` (${r.adapter})` : ''}`;
    alignLines.push(
      `| ${tag} | ${f2(r.align.reliableMs)} | ${f2(r.align.reliableOverSar)}× | ${f2(r.align.unreliableMs)} | ${f2(r.align.unreliableOverSar)}× |`,
    );
    if (['wasm', 'webgpu'].includes(r.backend)) {
      targets.push(
        `- ${tag}: sar-align's reliable step ${f2(r.align.reliableOverSar)}× SAR's (target ≤ 1.15×: ${verdict(r.align.reliableOverSar <= 1.15)}); its unreliable step ${f2(r.align.unreliableOverSar)}× SAR's (a forward and the read either way)`,
      );
    }
  }
  const alignTable = alignLines.length > 2 ? alignLines.join('\n') : '';
  if (alignTable) console.log(`\n${alignTable}`);
  targets.push(...frameText.targets);
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
${frameText.text}
${
  autodiffRows.length > 0
    ? `### Other families: GroupNorm ResNet (issue 17) and ConvNeXt (issue 26)

The shipped Fashion-MNIST ResNet (\`public/models/fmnist-resnet-gn/\`, timm's resnet layout: a 7×7 stem of 16 channels, four stages of one basic block with 16, 32, 64 and 128 channels, GroupNorm with 8 groups, 28×28 gray input, 10 classes, 309,178 parameters; the stem's and layer1-3's GroupNorms adapted, layer4 skipped as SAR's reference skips it) and ConvNeXt (\`public/models/fmnist-convnext/\`, timm's convnext layout: a 2×2 patch stem, four stages of one block with 16, 32, 64 and 128 channels, 7×7 depthwise convolutions, every norm a LayerNorm; the stem's and the first three stages' LayerNorms adapted, the last stage and head.norm skipped), through their written-out backwards (no \`tf.grads\` tape), in the same rounds as above (median of ${args.iterations} rounds of one inference and one reliable step, each until its update is read):

| model | family | backend | norm tensors adapted | inference (ms) | SAR step, reliable (ms) | × inference | tensors before → after |
|---|---|---|---|---|---|---|---|
${autodiffRows.map((r) => `| ${r.label} | ${r.family} | ${r.backend} | ${r.adapted} | ${f2(r.inferenceMs)} | ${f2(r.sarReliableMs)} | ${f2(r.reliableRatio)}× | ${r.memory.tensorsBefore} → ${r.memory.tensorsAfter} |`).join('\n')}

Each forward keeps what its backward reads, so a SAR step is two forwards and two backwards with no forward run again; at this size the cost per op, not the arithmetic, sets the ratio.
`
    : ''
}
Targets of issues 7, 14 and 16 on these figures:
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
    const record: VitB16Record = {
      ...r,
      date: new Date().toISOString().slice(0, 16).replace('T', ' '),
      machine: machineLine(browser),
      command,
      minutes,
      depth: o.depth,
    };
    const runs = readVitB16().filter((x) => !(x.backend === r.backend && x.depth === o.depth));
    writeFileSync(VIT_B16_FILE, `${JSON.stringify([...runs, record], null, 1)}\n`);
    console.log(`wrote ${VIT_B16_FILE} (the next \`npm run bench:step\` puts it into BENCHMARKS.md)`);
  }
}

await (args['vit-b16'] ? vitB16() : stepTable());
