// Real-size rows (issue 24): inference and SAR step cost of ViT-Ti/16, ViT-S/16,
// ViT-B/16 and GroupNorm ResNets on wildtta's wasm backend, beside peers in the
// same run: ONNX Runtime Web's wasm build on the same network in the same page
// (the rounds interleave wildtta's inference, its SAR step and ONNX Runtime's
// inference), and PyTorch eager on the CPU. 1 thread and threaded, medians with
// min–max, the machine's load beside each row; the issue's targets checked.
//
//   npm run bench:step -- --sizes ti,s,b [--resnets rn-fmnist,rn50] [--threads 1,all] [--rounds-scale 1] [--no-torch] [--no-write]
//
// Sizes and ResNets are the keys of tools/lib/sizes-models.ts (tiny, ti, s, b,
// rn-tiny, rn-fmnist, rn50; --resnets takes the ConvNeXts too: cn-tiny,
// cn-fmnist, cn-atto). Models, their ONNX exports and PyTorch's parity
// logits are generated on first use into .bench-cache/sizes/ (git-ignored).
// bench/step.ts hands `--sizes` over to this file.
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { shutdown, withPage } from '../tools/lib/session';
import { nodeSetup } from '../tools/lib/node-env';
import { maxAbsDiff, prepareModel, runTorch, SIZES, torchAvailable, type PreparedModel } from '../tools/lib/sizes-models';
import type { SizeCost, SizeCostOptions } from './sizes-page';
import { load1, loadLine, machineLine, median, ratios, spread, writeSection } from './report';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: 'ti,s,b' },
    resnets: { type: 'string', default: 'rn-fmnist,rn50' },
    threads: { type: 'string', default: '1,all' },
    'rounds-scale': { type: 'string', default: '1' },
    'no-torch': { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
  },
});

/**
 * Rounds per model (after one warm-up round), sized so that `--sizes ti,s,b`
 * with the four conv models takes about 15 minutes on the 2-core build
 * machine: a ViT-B/16 round is about 4 s, a ResNet-50-GN one about 1.5 s
 * (with 3 rounds its ratio moved from 4.2× to 4.6× between runs of one
 * day).
 * The 28 px models' calls take a few tenths of a ms to a few ms, near the
 * page timer's resolution (0.1 ms in a page that is not cross-origin
 * isolated: a 0.3 ms inference reads as 0.2 to 0.4) and within reach of any
 * other job's hiccup: with 20 rounds of one call their ratios moved by
 * whole units from run to run. They get 200 rounds, each sample the mean of
 * REPEAT calls back to back (a few seconds in all).
 */
const ROUNDS: Record<string, number> = {
  tiny: 200,
  'rn-tiny': 200,
  'rn-fmnist': 200,
  'cn-tiny': 200,
  'cn-fmnist': 200,
  ti: 20,
  s: 12,
  b: 6,
  rn50: 10,
  'cn-atto': 12,
};
/** Calls per timed sample (its time is their mean), for the models whose one call is near the timer's resolution; 1 for the rest. */
const REPEAT: Record<string, number> = { tiny: 10, 'rn-tiny': 10, 'rn-fmnist': 10, 'cn-tiny': 10, 'cn-fmnist': 10 };
/**
 * PyTorch's rounds and warm-up rounds per model. Debian's python3-torch is
 * built with the reference BLAS (BLAS_INFO=generic: about 6 GFLOP/s a core
 * here), so a ViT-B/16 SAR step takes it most of a minute: the big models get
 * fewer rounds and no warm-up (eager PyTorch compiles nothing on first call).
 */
const TORCH_ROUNDS: Record<string, [rounds: number, warmup: number]> = { ti: [6, 1], s: [3, 0], b: [2, 0], rn50: [3, 1], 'cn-atto': [3, 1] };

interface TorchTimes {
  inferenceMs: number[];
  sarMs: number[];
}
interface Row {
  model: PreparedModel;
  threads: number;
  page: SizeCost;
  torch?: TorchTimes;
  load: string;
  rounds: number;
}

async function pageRun(m: PreparedModel, threads: number, rounds: number, repeat: number): Promise<{ cost: SizeCost; browser: string }> {
  const url = (p: string) => `/${p.replace(/^public\//, '')}`;
  const o: SizeCostOptions = { modelUrl: `${url(m.relDir)}/`, onnxUrl: url(m.onnxRel), threads, warmup: 1, rounds, repeat };
  let browser = '';
  const cost = await withPage(
    async (h) => {
      browser = h.page.context().browser()?.version() ?? '';
      await h.page.waitForFunction('window.wildttaSizes !== undefined', undefined, { timeout: 120_000 });
      return (await h.page.evaluate(`window.wildttaSizes.sizeCost(${JSON.stringify(o)})`)) as SizeCost;
    },
    // Threads need SharedArrayBuffer: `?isolate` has the dev server send COOP/COEP (vite.config.ts).
    { path: `bench/sizes.html${threads > 1 ? '?isolate' : ''}` },
  );
  if (threads > 1 && !cost.crossOriginIsolated) throw new Error('the page is not cross-origin isolated');
  return { cost, browser };
}

async function main(): Promise<void> {
  const started = Date.now();
  const keys = [...args.sizes.split(','), ...args.resnets.split(',')].filter(Boolean);
  for (const k of keys) if (!(k in SIZES)) throw new RangeError(`unknown size "${k}": choose from ${Object.keys(SIZES).join(', ')}`);
  const threadModes = [...new Set(args.threads.split(',').map((t) => (t === 'all' ? cpus().length : Number(t))))];
  const noTorch = args['no-torch'] ? 'not run (--no-torch)' : torchAvailable();
  if (noTorch) throw new Error(`the sizes rows need PyTorch for the ONNX export and the parity check: ${noTorch}`);
  const scale = Number(args['rounds-scale']);
  const loadBefore = loadLine();
  console.log(`machine: ${loadBefore}`);
  // make-model computes its statistics on Node's tfjs.
  await nodeSetup('wasm');
  const rows: Row[] = [];
  let browser = '';
  for (const key of keys) {
    const m = await prepareModel(key, undefined, (s) => console.log(`${s} (load ${load1()})`));
    const rounds = Math.max(2, Math.round((ROUNDS[key] ?? 8) * scale));
    const mine: Row[] = [];
    for (const threads of threadModes) {
      process.stdout.write(`${m.entry.label}, ${threads} thread(s), ${rounds} rounds: `);
      const r = await pageRun(m, threads, rounds, REPEAT[key] ?? 1);
      browser = r.browser;
      const row: Row = { model: m, threads, page: r.cost, load: load1(), rounds };
      mine.push(row);
      const c = r.cost;
      // Every timed sample is reliable: a step that never updated timed a forward, not SAR's (or sar-msam's) whole step.
      if (c.updates === 0 || c.msamUpdates === 0)
        throw new Error(`${m.entry.label}: the timed steps never updated (SAR ${c.updates}, sar-msam ${c.msamUpdates})`);
      console.log(
        `wildtta inference ${spread(c.inferenceMs)} ms, SAR step ${spread(c.sarMs)} ms (${median(ratios(c.sarMs, c.inferenceMs)).toFixed(2)}×), ` +
          `sar-msam step ${spread(c.msamMs)} ms (${median(ratios(c.msamMs, c.inferenceMs)).toFixed(2)}×), ORT ${spread(c.ortMs)} ms; ` +
          `threads ${c.threads}/${c.ortThreads} (gemm.wat ${c.gemmThreads}), ${c.wasmBinary}; load ${row.load}`,
      );
    }
    // PyTorch after the page rows of the same model, 1 thread and all (the same rounds).
    const torchRounds = TORCH_ROUNDS[key] ?? [rounds, 1];
    if (!args['no-torch']) {
      process.stdout.write(`${m.entry.label}, PyTorch: `);
      const t = runTorch(['--model', m.dir, '--spec', m.specFile, '--time', '--rounds', String(torchRounds[0]), '--warmup', String(torchRounds[1])]);
      const times = t.threads as Record<string, TorchTimes>;
      for (const row of mine) row.torch = times[String(row.threads)] ?? (row.threads > 1 ? times[String(t.cpus)] : undefined);
      console.log(
        Object.entries(times)
          .map(([n, x]) => `${n} thread(s): inference ${spread(x.inferenceMs)} ms, SAR step ${spread(x.sarMs)} ms`)
          .join('; ') + `; load ${load1()}`,
      );
    }
    rows.push(...mine);
  }
  await shutdown();
  const minutes = (Date.now() - started) / 60_000;
  report(rows, { loadBefore, loadAfter: loadLine(), browser, minutes, keys });
}

function report(rows: Row[], run: { loadBefore: string; loadAfter: string; browser: string; minutes: number; keys: string[] }): void {
  const f2 = (x: number) => x.toFixed(2);
  const table = [
    '| model | parameters | threads | rounds | wildtta inference (ms) | wildtta SAR step (ms) | SAR ÷ inference | sar-msam ÷ inference | ORT-web inference (ms) | wildtta ÷ ORT inference | PyTorch inference (ms) | PyTorch SAR step (ms) | wildtta ÷ PyTorch inference | load (1 min) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const c = r.page;
      const vsTorch = r.torch ? `${f2(median(c.inferenceMs) / median(r.torch.inferenceMs))}×` : '–';
      return `| ${r.model.entry.label} | ${(r.model.parameters / 1e6).toFixed(2)} M | ${r.threads} | ${r.rounds} | ${spread(c.inferenceMs)} | ${spread(c.sarMs)} | ${f2(median(ratios(c.sarMs, c.inferenceMs)))}× | ${f2(median(ratios(c.msamMs, c.inferenceMs)))}× | ${spread(c.ortMs)} | ${f2(median(ratios(c.inferenceMs, c.ortMs)))}× | ${r.torch ? spread(r.torch.inferenceMs) : '–'} | ${r.torch ? spread(r.torch.sarMs) : '–'} | ${vsTorch} | ${r.load} |`;
    }),
  ].join('\n');
  // Parity: one row per model (the 1-thread run's logits).
  const seen = new Set<string>();
  const parityRows: string[] = [];
  let worst = 0;
  for (const r of rows) {
    if (seen.has(r.model.key)) continue;
    seen.add(r.model.key);
    const t = r.model.torchCheck;
    const d = [maxAbsDiff(r.page.checkOurs, t), maxAbsDiff(r.page.checkOrt, t), maxAbsDiff(r.page.checkOurs, r.page.checkOrt)];
    worst = Math.max(worst, ...d);
    const range = `${Math.min(...t).toFixed(2)} to ${Math.max(...t).toFixed(2)}`;
    parityRows.push(`| ${r.model.entry.label} | ${range} | ${d.map((x) => x.toExponential(1)).join(' | ')} |`);
  }
  const parity = ['| model | PyTorch logits | wildtta vs PyTorch | ORT-web vs PyTorch | wildtta vs ORT-web |', '|---|---|---|---|---|', ...parityRows].join(
    '\n',
  );

  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  const targets: string[] = [];
  for (const r of rows) {
    const c = r.page;
    const sarRatio = median(ratios(c.sarMs, c.inferenceMs));
    const tag = `${r.model.entry.label}, ${r.threads} thread(s)`;
    if (r.model.entry.family === 'vit') {
      if (r.model.key === 's') {
        const vsOrt = median(ratios(c.inferenceMs, c.ortMs));
        targets.push(`- ${tag}: inference ${f2(vsOrt)}× ONNX Runtime Web's (target ≤ 1.0×: ${verdict(vsOrt <= 1)})`);
        if (r.threads === 1 && r.torch) {
          const vsTorch = median(c.inferenceMs) / median(r.torch.inferenceMs);
          targets.push(`- ${tag}: inference ${f2(vsTorch)}× PyTorch's with 1 thread (target ≤ 1.2×: ${verdict(vsTorch <= 1.2)})`);
        }
      }
      targets.push(`- ${tag}: SAR step ${f2(sarRatio)}× its inference (target ≤ 3.6×: ${verdict(sarRatio <= 3.6)})`);
      const msamRatio = median(ratios(c.msamMs, c.inferenceMs));
      targets.push(`- ${tag}: sar-msam step ${f2(msamRatio)}× its inference (≤ 3.6×: ${verdict(msamRatio <= 3.6)})`);
    } else targets.push(`- ${tag}: SAR step ${f2(sarRatio)}× its inference (target ≤ 5×: ${verdict(sarRatio <= 5)})`);
  }
  console.log(`\n${table}\n\n${parity}\n\n${targets.join('\n')}`);
  if (args['no-write']) return;
  const c0 = rows[0]!.page;
  const torchVersion = rows.some((r) => r.torch) ? "Debian's python3-torch 1.13" : 'not run';
  writeSection(
    'bench:sizes',
    `## Real sizes, beside ONNX Runtime Web and PyTorch (\`npm run bench:step -- --sizes ${run.keys.filter((k) => SIZES[k]!.family === 'vit').join(',')}\`)

${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${run.minutes.toFixed(1)} minutes for the whole run. Machine: ${machineLine(run.browser)}; ${run.loadBefore} at the start, ${run.loadAfter.replace(/ on .*/, '')} at the end (other jobs share the cores: the "load" column is the 1-minute load average when the row finished; absolute times move with it, the per-round ratios much less).

Random seeded weights in timm's layout (\`npm run make-model\`, seed 0: ViT-Ti/16, ViT-S/16, ViT-B/16 at 224 px with 1,000 classes; ResNet-50 with GroupNorm, 32 groups, at 224 px) and the shipped Fashion-MNIST GroupNorm ResNet (\`public/models/fmnist-resnet-gn\`, 28 px), batch size 1. The three engines run one network: \`tools/sizes_torch.py\` builds it in PyTorch from the same safetensors file and the architecture wildtta's loader resolved (the plain-PyTorch ViT of \`tools/time_torch.py\`, the GroupNorm ResNet of \`tools/make_resnet_fixtures.py\`, the ConvNeXt of \`tools/make_convnext_fixtures.py\`) and exports it to ONNX (opset 17, \`torch.onnx.export\`); their logits on one image agree (table below; \`npm test -- sizes-parity\` checks the same on the tiny sizes).

- wildtta: tfjs-wasm with SIMD in headless Chromium (binary ${c0.wasmBinary}); "inference" is the source adapter's step (forward, softmax, entropy, the read); a SAR step is the whole step on a reliable sample (forward and backward, the SAM ascent, a second forward and backward, the update; written-out backwards, no autodiff: a ViT's through the LayerNorms of all blocks but the last quarter, a ResNet's through the GroupNorms of the stem and layer1-3, a ConvNeXt's through the LayerNorms of the stem and every stage but the last), each until its update is read.
- ONNX Runtime Web ${c0.ortVersion}, its wasm build in the same page (graph optimisation 'all', thread pool not spinning between runs), inference and the read of the logits.
- sar-msam: SAR with Momentum-SAM's perturbation (docs/methods.md): its reliable step is two forwards and one backward, the perturbation taken from the optimizer's momentum instead of a first gradient.
- Each round runs one wildtta inference, one wildtta SAR step, one ONNX Runtime inference and one sar-msam step, the order turning each round, after one warm-up round; "threads" > 1: the page was served cross-origin isolated and both engines were given that many threads. Rounds per model (fewer for the big ones, so that the whole run fits about 15 minutes here): ${Object.entries(
      ROUNDS,
    )
      .filter(([k]) => run.keys.includes(k))
      .map(
        ([k, n]) => `${SIZES[k]!.label} ${n}${REPEAT[k] ? ` (each the mean of ${REPEAT[k]} calls back to back, near the page timer's 0.1 ms otherwise)` : ''}`,
      )
      .join(', ')}.
- PyTorch: ${torchVersion}, eager, on the CPU, run after the page rows of each model: inference under \`no_grad\` and the paper's SAR step (\`tools/time_torch.py\`'s) adapting the same norms, with 1 thread and with all (\`torch.set_num_threads\`), in rounds of one each (${Object.entries(
      TORCH_ROUNDS,
    )
      .filter(([k]) => run.keys.includes(k))
      .map(([k, [n, w]]) => `${SIZES[k]!.label} ${n} after ${w} warm-up`)
      .join(
        ', ',
      )}; others as in the page). This build uses the reference BLAS (\`BLAS_INFO=generic\` in \`torch.__config__.show()\`, about 6 GFLOP/s a core here), not OpenBLAS or MKL: its times are what Debian's package does on this machine, not what PyTorch can do.
- Times are medians (min–max) over the rounds; "SAR ÷ inference", "sar-msam ÷ inference" and "wildtta ÷ ORT" are medians of the per-round ratios; "wildtta ÷ PyTorch" divides the medians of the two runs.

${table}

Logits of the parity image (\`tools/lib/parity-image.ts\`) from each engine, max |Δ| between them:

${parity}

Targets of issue 24 on these figures (wasm):
${targets.join('\n')}`,
  );
  console.log(`wrote the bench:sizes section of BENCHMARKS.md (worst parity max |Δ| ${worst.toExponential(1)})`);
}

await main();
