// `npm run bench:gpu`: the tfjs WebGPU backend and wildtta's WGSL kernels
// in Node on Dawn, headless, on whatever GPU the machine has: inference and
// SAR step times for ViT-Ti/S/B and ResNet-50-GN at 224 px (seeded random
// weights in timm's layout) and the two shipped models, what each step asks of the device,
// the parity of logits and adapted norms with tfjs-wasm (or cpu) in the
// same process, and PyTorch's eager SAR step on the same GPU where torch
// has CUDA (tools/time_torch_gpu.py). Without a GPU, lavapipe runs it
// (tools/fetch-lavapipe.sh): it checks that everything runs and agrees,
// and its times mean nothing.
//
//   npm run bench:gpu -- [--sizes fmnist-vit,fmnist-resnet-gn,ti,s,b,rn50] [--steps 10] [--inferences 10]
//                        [--depth N] [--parity wasm|cpu|none] [--parity-steps 3] [--batch 1]
//                        [--lavapipe] [--torch auto|no] [--json FILE] [--write]
//   npm run bench:gpu:pack      the same as a folder that runs on a machine without a registry
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { describeAdapter, installDawn } from './gpu/dawn';
import { formatCompare, formatReport, type GpuBenchReport } from './gpu/report';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: 'fmnist-vit,fmnist-resnet-gn,ti,s,b,rn50' },
    steps: { type: 'string', default: '10' },
    inferences: { type: 'string' },
    depth: { type: 'string' },
    parity: { type: 'string', default: 'wasm' },
    'parity-steps': { type: 'string', default: '3' },
    batch: { type: 'string', default: '1' },
    seed: { type: 'string', default: '16' },
    lavapipe: { type: 'boolean', default: false },
    torch: { type: 'string', default: 'auto' },
    json: { type: 'string', default: 'artifacts/bench-gpu.json' },
    'models-dir': { type: 'string', default: process.env.WILDTTA_MODELS_DIR ?? 'public/models' },
    write: { type: 'boolean', default: false },
    compare: { type: 'string' },
    'compare-label': { type: 'string', default: 'an earlier run' },
  },
});

const int = (name: string, v: string | undefined, min: number): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`--${name} must be an integer ≥ ${min}, got ${v}`);
  return n;
};

async function main(): Promise<void> {
  const steps = int('steps', args.steps, 1)!;
  const inferences = int('inferences', args.inferences, 1) ?? steps;
  const paritySteps = int('parity-steps', args['parity-steps'], 1)!;
  const batch = int('batch', args.batch, 1)!;
  const seed = int('seed', args.seed, 0)!;
  const depth = int('depth', args.depth, 1);
  const sizes = args.sizes.split(',').filter((s) => s);
  const reference = args.parity;
  if (!['wasm', 'cpu', 'none'].includes(reference)) throw new RangeError(`--parity must be wasm, cpu or none, got ${reference}`);

  const adapter = await installDawn({ lavapipe: args.lavapipe });
  console.log(`adapter: ${describeAdapter(adapter)}; timestamp-query: ${adapter.timestampQuery ? 'yes' : 'no (CPU-side timing)'}`);
  // Only now: tfjs-backend-webgpu registers itself on import where navigator.gpu exists.
  const { runSize, parity, SIZES } = await import('./gpu/run');
  const tf = await import('@tensorflow/tfjs');
  for (const s of sizes) if (!(s in SIZES)) throw new RangeError(`unknown size "${s}": choose from ${Object.keys(SIZES).join(', ')}`);

  const report: GpuBenchReport = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()}-${arch()}, Node ${process.version}`,
    tfjs: tf.version.tfjs,
    adapter,
    options: { sizes, steps, inferences, depth: depth ?? null, batch, seed, parity: reference, paritySteps, lavapipe: args.lavapipe },
    runs: [],
    parity: [],
    torch: [],
  };
  for (const size of sizes) {
    const common = { size, seed, modelsDir: args['models-dir'], batch, paritySteps, ...(depth === undefined ? {} : { depth }) };
    const t = performance.now();
    const gpu = await runSize({ ...common, backend: 'webgpu', steps, inferences });
    const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1] ?? Number.NaN;
    console.log(
      `${size} on webgpu: inference ${med(gpu.inferenceMs).toFixed(1)} ms, SAR step ${med(gpu.sarStepMs).toFixed(1)} ms (first ${gpu.firstStepMs.toFixed(0)} ms); ` +
        `per step ${JSON.stringify(gpu.perStep)}; tensors ${gpu.memory.tensors.join(',')}; GPU bytes ${gpu.memory.gpuBytes.join(',')}; ${gpu.tensorsLeft} tensors left after dispose (${((performance.now() - t) / 1000).toFixed(1)} s)`,
    );
    report.runs.push(stripValues(gpu));
    if (reference !== 'none') {
      const ref = await runSize({ ...common, backend: reference as 'wasm' | 'cpu', steps: 0, inferences: 0 });
      const p = parity(gpu, ref, paritySteps);
      console.log(
        `${size} parity with ${reference}: logits max |Δ| ${p.logitsMaxAbs.toExponential(2)} (${p.logitsRel.toExponential(2)} of the largest); ` +
          `adapted norms after ${paritySteps} SAR steps: update off by ${p.updateRel.toExponential(2)} (relative), max |Δ| ${p.adaptedMaxAbs.toExponential(2)}`,
      );
      report.parity.push(p);
    }
  }
  if (args.torch !== 'no') report.torch = runTorch(sizes, steps, depth);

  mkdirSync(dirname(args.json), { recursive: true });
  writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${args.json}`);
  const md = formatReport(report);
  console.log(`\n${md}`);
  // --compare: this run's per-step counts against an earlier run's JSON (the profile before and after a change).
  const compared = args.compare ? formatCompare(JSON.parse(readFileSync(args.compare, 'utf8')) as GpuBenchReport, report, args['compare-label']) : undefined;
  if (compared) console.log(`\n${compared}`);
  if (args.write) {
    const { writeSection } = await import('./report');
    const section = compared ? 'bench:gpu profile' : 'bench:gpu';
    const heading = compared
      ? '## What a WebGPU SAR step asks of the device (`npm run bench:gpu -- --compare`)'
      : '## WebGPU in Node on Dawn (`npm run bench:gpu`)';
    writeSection(section, `${heading}\n\n${compared ? `\`npm run bench:gpu -- ${cliOf(report)} --compare …\`\n\n${compared}` : md}`);
    console.log(`wrote the ${section} section of BENCHMARKS.md`);
  }
}

/** The command line of a run, as its report states it. */
const cliOf = (r: GpuBenchReport) =>
  formatReport(r)
    .split('`')[1]!
    .replace(/^npm run bench:gpu -- /, '');

/** The run without its value arrays (kept in memory for parity only). */
function stripValues<T extends { logits: number[]; adaptedValues: number[]; sourceValues: number[] }>(r: T) {
  const { logits: _l, adaptedValues: _a, sourceValues: _s, ...rest } = r;
  return rest;
}

/** PyTorch's eager SAR step on the same GPU (CUDA), per ViT size and ResNet-50-GN; a reason instead where it cannot run. */
function runTorch(sizes: string[], steps: number, depth: number | undefined): GpuBenchReport['torch'] {
  const script = process.env.WILDTTA_TORCH_SCRIPT ?? 'tools/time_torch_gpu.py';
  const python = process.env.PYTHON ?? 'python3';
  const known = sizes.filter((s) => ['tiny', 'ti', 's', 'b', 'rn50'].includes(s));
  if (!existsSync(script) || known.length === 0) return [];
  const out: GpuBenchReport['torch'] = [];
  for (const size of known) {
    const argv = [script, '--size', size, '--device', 'cuda', '--iterations', String(steps), ...(depth === undefined ? [] : ['--depth', String(depth)])];
    const r = spawnSync(python, argv, { encoding: 'utf8', timeout: 600_000 });
    const line = (r.stdout ?? '').trim().split('\n').at(-1) ?? '';
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      parsed = { skipped: `${python} ${argv.join(' ')} failed: ${(r.error?.message ?? r.stderr ?? '').trim().split('\n').at(-1)}` };
    }
    console.log(`PyTorch ${size}: ${parsed.skipped ? `skipped: ${String(parsed.skipped)}` : JSON.stringify(parsed)}`);
    out.push({ size, ...parsed });
    if (parsed.skipped) break; // the same reason holds for every size
  }
  return out;
}

await main();
