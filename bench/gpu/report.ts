// bench:gpu's record (the JSON it writes) and its markdown table for BENCHMARKS.md.
import type { AdapterInfo, DeviceCounts } from './dawn';
import type { Parity, RunResult } from './run';
import { describeAdapter } from './dawn';

export interface GpuBenchReport {
  date: string;
  machine: string;
  tfjs: string;
  adapter: AdapterInfo;
  options: Record<string, unknown>;
  runs: Array<Omit<RunResult, 'logits' | 'adaptedValues' | 'sourceValues'>>;
  parity: Parity[];
  /** PyTorch (tools/time_torch_gpu.py): its JSON per size, or { skipped: why }. */
  torch: Array<{ size: string; skipped?: unknown } & Record<string, unknown>>;
}

const median = (v: number[]) => (v.length === 0 ? Number.NaN : [...v].sort((a, b) => a - b)[v.length >> 1]!);
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '–');
const COUNTS: Array<keyof DeviceCounts> = ['dispatches', 'submits', 'pipelines', 'buffers', 'bindGroups', 'writeBuffers', 'reads'];

export function formatReport(r: GpuBenchReport): string {
  const lines: string[] = [];
  lines.push(`\`npm run bench:gpu -- ${cli(r.options)}\`, ${r.date.slice(0, 10)}; tfjs ${r.tfjs} WebGPU backend in Node on Dawn (the webgpu package).`);
  lines.push('');
  lines.push(`Machine: ${r.machine}. Adapter: ${describeAdapter(r.adapter)}.`);
  if (r.adapter.software)
    lines.push(
      '\n**This adapter is a software renderer (lavapipe or similar): the times below are meaningless as GPU figures.** The run shows that the benchmark works and agrees with tfjs-wasm; the per-step counts are what the code asks of any device.',
    );
  lines.push('');
  lines.push('| model | blocks | batch | inference (ms) | SAR step (ms) | step ÷ inference | GPU kernel time / step (ms) | tensors over the timed steps |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const run of r.runs) {
    const inf = median(run.inferenceMs);
    const step = median(run.sarStepMs);
    const tensors = [...new Set(run.memory.tensors)].join(' → ');
    lines.push(
      `| ${run.size} | ${run.depth ?? '–'} | ${String(r.options.batch)} | ${ms(inf)} | ${ms(step)} | ${(step / inf).toFixed(2)} | ${run.kernelTime ? ms(run.kernelTime.totalMs) : '–'} | ${tensors} |`,
    );
  }
  lines.push('');
  lines.push(
    `What one SAR step (step + flush, every sample reliable) asks of the device, the last timed step (a dispatch is one compute dispatch, a read one GPU→CPU map, a buffer one createBuffer):`,
  );
  lines.push('');
  lines.push(`| model | ${COUNTS.join(' | ')} |`);
  lines.push(`| --- | ${COUNTS.map(() => '---').join(' | ')} |`);
  for (const run of r.runs) if (run.perStep) lines.push(`| ${run.size} | ${COUNTS.map((k) => fmtCount(run.perStep![k])).join(' | ')} |`);
  const stream = r.runs.filter((run) => run.perStreamStep).map((run) => `${run.size} ${run.perStreamStep!.reads}`);
  if (stream.length > 0)
    lines.push(
      '',
      `GPU→CPU reads of a step in a stream (step() without flush(): the update's stats come back with the next prediction): ${stream.join(', ')}.`,
    );
  if (r.parity.length > 0) {
    lines.push('');
    lines.push(`Parity with tfjs-${r.parity[0]!.reference} in the same process (same seed, same frames):`);
    lines.push('');
    lines.push('| model | logits max abs Δ (rel. to largest) | adapted norms after N SAR steps: update rel. error | max abs Δ |');
    lines.push('| --- | --- | --- | --- |');
    for (const p of r.parity)
      lines.push(
        `| ${p.size} | ${p.logitsMaxAbs.toExponential(1)} (${p.logitsRel.toExponential(1)}) | ${p.updateRel.toExponential(1)} (N = ${p.steps}) | ${p.adaptedMaxAbs.toExponential(1)} |`,
      );
  }
  if (r.torch.length > 0) {
    lines.push('');
    for (const t of r.torch)
      lines.push(
        t.skipped
          ? `PyTorch: skipped (${String(t.skipped)}).`
          : `PyTorch ${t.size} on ${String(t.device)}: inference ${ms(Number(t.inferenceMs))} ms, SAR step ${ms(Number(t.sarReliableMs))} ms.`,
      );
  }
  return lines.join('\n');
}

/**
 * What a step asks of the device, `before` (an earlier run's JSON, same
 * options) against `after`, per model: the profile printout of BENCHMARKS.md's
 * "bench:gpu profile" section.
 */
export function formatCompare(before: GpuBenchReport, after: GpuBenchReport, beforeLabel: string): string {
  const keys: Array<keyof DeviceCounts> = ['dispatches', 'submits', 'pipelines', 'buffers', 'writeBuffers', 'reads'];
  const lines = [
    `Per SAR step (step + flush, batch 1, every sample reliable; the last of the timed steps), before (${beforeLabel}) → after (this run). Adapter: ${describeAdapter(after.adapter)}. A dispatch is one compute dispatch; buffers are createBuffer calls (tfjs reuses freed buffers: a new one per step is an upload from JS values, with its own staging buffer and a break in the compute pass); writeBuffers are tfjs's uniform writes, one per dispatch; reads are GPU→CPU maps (the prediction's read and the flush's).`,
    '',
    `| model | blocks | ${keys.join(' | ')} |`,
    `| --- | --- | ${keys.map(() => '---').join(' | ')} |`,
  ];
  for (const run of after.runs) {
    const old = before.runs.find((r) => r.size === run.size && r.depth === run.depth);
    if (!old?.perStep || !run.perStep) continue;
    lines.push(`| ${run.size} | ${run.depth ?? '–'} | ${keys.map((k) => `${fmtCount(old.perStep![k])} → ${fmtCount(run.perStep![k])}`).join(' | ')} |`);
  }
  for (const run of after.runs.filter((r) => r.kernelTime)) {
    const top = run.kernelTime!.top.slice(0, 6).map((k) => `${k.name} ${k.n}× ${ms(k.ms)} ms`);
    lines.push(
      '',
      `${run.size}${run.depth ? ` (${run.depth} blocks)` : ''}, GPU time of one step's ${run.kernelTime!.kernels} kernels by tf.profile: ${ms(run.kernelTime!.totalMs)} ms; most: ${top.join(', ')}.`,
    );
  }
  return lines.join('\n');
}

const fmtCount = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));

function cli(o: Record<string, unknown>): string {
  const parts = [...(o.lavapipe ? ['--lavapipe'] : []), `--sizes ${(o.sizes as string[]).join(',')}`, `--steps ${String(o.steps)}`];
  if (o.depth !== null) parts.push(`--depth ${String(o.depth)}`);
  if (o.inferences !== o.steps) parts.push(`--inferences ${String(o.inferences)}`);
  if (o.parity !== 'wasm') parts.push(`--parity ${String(o.parity)}`);
  return parts.join(' ');
}
