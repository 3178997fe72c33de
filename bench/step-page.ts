// In-page half of `npm run bench:step`: times inference and SAR steps on one backend,
// and (opt-in) a ViT-B/16 with random weights.
import * as tf from '@tensorflow/tfjs';
import { initBackend, WEBGPU_FLAGS, type BackendName } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import { loadBackbone, loadViT } from '../src/model/load';
import { ViT } from '../src/model/vit';
import { randomViTTensors, tinyConfig } from '../src/model/random-vit';
import { fetchLabeledImages } from '../src/data/idx';
import { grayBatch } from '../src/data/images';
import { createAdapter, type Adapter } from '../src/methods';
import { readSourceStats } from '../src/model/source-stats';
import { modelFiles } from '../src/model/files';
import { framePath } from './frame-path-page';

export interface StepCostOptions {
  backend: BackendName;
  modelUrl: string;
  dataUrl: string;
  warmup: number;
  iterations: number;
  /** wasm: threads to ask for (used only where the page is cross-origin isolated). */
  threads?: number;
  /** webgpu: the flags that suit many small kernels (see webgpuFlags). */
  tuneWebgpu?: boolean;
  /** Also return the logits of a constant image (all pixels 0.5), to compare with PyTorch's. */
  check?: boolean;
}

export interface Memory {
  tensorsBefore: number;
  tensorsAfter: number;
  gpuBytesBefore: number | null;
  gpuBytesAfter: number | null;
}

export interface StepCost {
  backend: string;
  adapter: string | null;
  /** wasm: threads in use; crossOriginIsolated: whether SharedArrayBuffer (so threads) was possible. */
  threads: number | null;
  crossOriginIsolated: boolean;
  flags: Record<string, unknown>;
  inferenceMs: number;
  sarReliableMs: number;
  sarUnreliableMs: number;
  /** sar-align in the same rounds (when the model has source statistics): its steps and their per-round ratio to SAR's. */
  align?: { reliableMs: number; unreliableMs: number; reliableOverSar: number; unreliableOverSar: number };
  /** Steps averaged per timed sample (so that one lasts ≥ 10 ms: a page's timer may tick only every 0.1 ms). */
  repeat: number;
  /** Medians of the per-round ratios (one inference, one reliable and one unreliable step per round). */
  reliableRatio: number;
  unreliableRatio: number;
  /** Around the timed steps of all three adapters (equal = no leak). */
  memory: Memory;
  updates: number;
  checkLogits?: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const gpuBytes = () => (tf.memory() as unknown as { numBytesInGPU?: number }).numBytesInGPU ?? null;

async function setup(backend: BackendName, threads: number | undefined, tuneWebgpu: boolean) {
  // initBackend sets WEBGPU_FLAGS before selecting webgpu unless told not to, and asks tfjs-wasm for
  // `threads` threads (which it can only have where the page is cross-origin isolated).
  const report = await initBackend(backend, { wasmPaths: WASM_PATHS, tuneWebgpu, ...(threads === undefined ? {} : { wasmThreads: threads }) });
  const flags: Record<string, unknown> = report.backend === 'webgpu' && tuneWebgpu ? { ...WEBGPU_FLAGS } : {};
  if (report.backend === 'wasm') {
    flags.WASM_HAS_SIMD_SUPPORT = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    flags.WASM_HAS_MULTITHREAD_SUPPORT = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    flags.requestedThreads = threads;
    flags.hardwareConcurrency = navigator.hardwareConcurrency;
    // Which binary tfjs fetched (the threaded one needs SIMD, threads and a cross-origin isolated page).
    // (Vite's dev server also lists the `?url` imports of all three as modules: those are not fetches of a binary.)
    const fetched = performance
      .getEntriesByType('resource')
      .map((e) => new URL(e.name))
      .filter((u) => u.pathname.endsWith('.wasm') && !u.searchParams.has('import'))
      .map((u) => u.pathname.split('/').pop()!);
    flags.wasmBinary = [...new Set(fetched)].join(', ');
  }
  let adapterInfo: string | null = null;
  if (report.backend === 'webgpu' && 'gpu' in navigator) {
    const a = await (
      navigator as unknown as {
        gpu: { requestAdapter(): Promise<{ info?: { vendor: string; architecture: string; device?: string; description?: string } } | null> };
      }
    ).gpu.requestAdapter();
    adapterInfo = a?.info ? [a.info.vendor, a.info.architecture, a.info.device, a.info.description].filter(Boolean).join(' ').trim() : null;
  }
  return { backend: report.backend, adapterInfo, flags, threads: report.wasmThreads ?? null };
}

/**
 * Median ms of each step function; interleaved in rounds so load changes on
 * the machine hit all alike. Each sample is the mean of `repeat` calls in a
 * row.
 */
async function timeInterleaved(fns: Array<() => Promise<unknown>>, warmup: number, iterations: number, rounds = 5, repeat = 1): Promise<number[][]> {
  for (const fn of fns) for (let i = 0; i < warmup; i++) await fn();
  const ms = fns.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    // The order turns each round, so no step always follows the same one (caches, queued GPU work).
    for (let j = 0; j < fns.length; j++) {
      const k = (j + r) % fns.length;
      const n = Math.floor(iterations / rounds) + (r < iterations % rounds ? 1 : 0);
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        for (let c = 0; c < repeat; c++) await fns[k]!();
        ms[k]!.push((performance.now() - t0) / repeat);
      }
    }
  }
  return ms;
}

async function stepCost(o: StepCostOptions): Promise<StepCost> {
  const env = await setup(o.backend, o.threads, o.tuneWebgpu ?? true);
  const model = await loadViT(o.modelUrl);
  const data = await fetchLabeledImages(o.dataUrl);
  const frames = Array.from({ length: 16 }, (_, i) => grayBatch(data.images, i, 1, data.height, data.width));

  // The filter decides the cost: a margin above any entropy makes every sample reliable
  // (the full SAR step), a margin of 0 makes none reliable (one forward, nothing else).
  const source = await createAdapter(model, { method: 'source' });
  const reliable = await createAdapter(model, { method: 'sar', lr: 1e-4, marginFraction: 100, resetThreshold: 0 });
  const unreliable = await createAdapter(model, { method: 'sar', lr: 1e-4, marginFraction: 0 });
  // sar-align's extra work (input alignment, re-centering, the alignment term, the collapse watch), timed beside SAR's.
  const statsResponse = await fetch(modelFiles(o.modelUrl).sourceStats);
  const sourceStats = statsResponse.ok ? readSourceStats(new Uint8Array(await statsResponse.arrayBuffer()), model) : undefined;
  const aligned = sourceStats
    ? [
        await createAdapter(model, { method: 'sar-align', sourceStats, lr: 1e-4, alignWeight: 10, marginFraction: 100, resetThreshold: 0 }),
        await createAdapter(model, { method: 'sar-align', sourceStats, lr: 1e-4, alignWeight: 10, marginFraction: 0 }),
      ]
    : [];
  // Every frame on the device before the memory baseline (a GPU backend uploads an input on first use).
  for (const f of frames) tf.tidy(() => void tf.add(f, 0));
  const counters = [0, 0, 0, 0, 0];
  const steppers = () => [stepper(source, 0), stepper(reliable, 1), stepper(unreliable, 2), ...aligned.map((a, i) => stepper(a, 3 + i))];
  // A step is timed until its update is done and reported (flush), so that on a GPU the queued work
  // of a reliable step is not billed to whichever step reads next.
  const stepper = (a: Adapter, k: number) => async () => {
    await a.step(frames[counters[k]!++ % frames.length]!);
    await a.flush();
  };
  // Warm-up first (pipelines compiled, buffers pooled), then the memory baseline.
  await timeInterleaved(steppers(), o.warmup, 0);
  // A page that is not cross-origin isolated gets a coarse timer (0.1 ms in Chromium): on fast
  // backends a sample is several steps in a row, enough for an inference sample to last 10 ms.
  const [probe] = await timeInterleaved([stepper(source, 0)], 0, 5, 1);
  const repeat = Math.min(20, Math.max(1, Math.ceil(10 / Math.max(median(probe!), 0.05))));
  await reliable.flush();
  for (const a of aligned) await a.flush();
  const tensorsBefore = tf.memory().numTensors;
  const gpuBytesBefore = gpuBytes();
  // One of each per round: the three steps of a round run within milliseconds of each other, so the
  // per-round ratios hardly see changes in machine load; the reported ratios are their medians.
  const [inference, sarReliable, sarUnreliable, alignReliable, alignUnreliable] = await timeInterleaved(steppers(), 0, o.iterations, o.iterations, repeat);
  await reliable.flush();
  for (const a of aligned) await a.flush();
  const memory = { tensorsBefore, tensorsAfter: tf.memory().numTensors, gpuBytesBefore, gpuBytesAfter: gpuBytes() };
  const updates = reliable.updateCount;
  for (const a of [unreliable, reliable, source, ...aligned]) a.dispose();
  let checkLogits: number[] | undefined;
  if (o.check) {
    const c = model.config;
    const logits = tf.tidy(() => model.logits(tf.fill([1, c.imageSize, c.imageSize, c.inChannels], 0.5) as tf.Tensor4D));
    checkLogits = Array.from(await logits.data());
    logits.dispose();
  }
  frames.forEach((f) => f.dispose());
  model.dispose();

  const inferenceMs = median(inference!);
  const sarReliableMs = median(sarReliable!);
  const sarUnreliableMs = median(sarUnreliable!);
  return {
    backend: env.backend,
    adapter: env.adapterInfo,
    threads: env.threads,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    flags: env.flags,
    inferenceMs,
    sarReliableMs,
    sarUnreliableMs,
    repeat,
    reliableRatio: median(sarReliable!.map((t, i) => t / inference![i]!)),
    unreliableRatio: median(sarUnreliable!.map((t, i) => t / inference![i]!)),
    ...(alignReliable && alignUnreliable
      ? {
          align: {
            reliableMs: median(alignReliable),
            unreliableMs: median(alignUnreliable),
            reliableOverSar: median(alignReliable.map((t, i) => t / sarReliable![i]!)),
            unreliableOverSar: median(alignUnreliable.map((t, i) => t / sarUnreliable![i]!)),
          },
        }
      : {}),
    memory,
    updates,
    ...(checkLogits ? { checkLogits } : {}),
  };
}

export interface VitB16Options {
  backend: BackendName;
  /** Timed SAR steps on reliable samples (after one untimed warm-up step). */
  steps: number;
  /** Timed inferences (after one untimed warm-up). */
  inferences: number;
  /** Fewer blocks than ViT-B/16's 12, for a quick check of the code path. */
  depth?: number;
}

export interface VitB16Cost {
  backend: string;
  adapter: string | null;
  flags: Record<string, unknown>;
  parameters: number;
  buildMs: number;
  firstInferenceMs: number;
  inferenceMs: number[];
  firstSarStepMs: number;
  sarStepMs: number[];
  /** Around the timed SAR steps (equal = flat). */
  memory: Memory;
  updates: number;
  adapted: number;
}

/** ViT-B/16 (224×224×3, patch 16, width 768, depth 12, 12 heads, 1000 classes) with seeded random weights in timm's layout. */
async function vitB16(o: VitB16Options): Promise<VitB16Cost> {
  const env = await setup(o.backend, undefined, true);
  const cfg = tinyConfig({
    imageSize: 224,
    patchSize: 16,
    inChannels: 3,
    width: 768,
    depth: o.depth ?? 12,
    heads: 12,
    mlpHidden: 3072,
    numClasses: 1000,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
  });
  const t0 = performance.now();
  const weights = randomViTTensors(cfg, 16, 4);
  let parameters = 0;
  for (const t of weights.values()) parameters += t.values.length;
  const model = new ViT(cfg, weights);
  weights.clear();
  const buildMs = performance.now() - t0;
  const frames = [0, 1].map((i) => tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', i) as tf.Tensor4D);

  const timeStep = async (a: Adapter, i: number) => {
    const t = performance.now();
    await a.step(frames[i % 2]!);
    if (a.method !== 'source') await a.flush(); // the update's own time, not left for the next step
    return performance.now() - t;
  };
  const source = await createAdapter(model, { method: 'source' });
  const firstInferenceMs = await timeStep(source, 0);
  const inferenceMs: number[] = [];
  for (let i = 0; i < o.inferences; i++) inferenceMs.push(await timeStep(source, i));
  source.dispose();

  const sar = await createAdapter(model, { method: 'sar', lr: 1e-5, marginFraction: 100, resetThreshold: 0 });
  // The untimed first step on the other frame, so both inputs are on the device before the memory baseline.
  const firstSarStepMs = await timeStep(sar, 1);
  const tensorsBefore = tf.memory().numTensors;
  const gpuBytesBefore = gpuBytes();
  const sarStepMs: number[] = [];
  for (let i = 0; i < o.steps; i++) sarStepMs.push(await timeStep(sar, i));
  const memory = { tensorsBefore, tensorsAfter: tf.memory().numTensors, gpuBytesBefore, gpuBytesAfter: gpuBytes() };
  const updates = sar.updateCount;
  const adapted = sar.params.size;
  sar.dispose();
  frames.forEach((f) => f.dispose());
  model.dispose();
  return {
    backend: env.backend,
    adapter: env.adapterInfo,
    flags: env.flags,
    parameters,
    buildMs,
    firstInferenceMs,
    inferenceMs,
    firstSarStepMs,
    sarStepMs,
    memory,
    updates,
    adapted,
  };
}

export interface BackboneStepCost {
  backend: string;
  family: string;
  adapted: number;
  inferenceMs: number;
  sarReliableMs: number;
  /** Median of the per-round ratios. */
  reliableRatio: number;
  memory: { tensorsBefore: number; tensorsAfter: number };
}

/**
 * A model of another family (a GroupNorm ResNet fixture: random weights in
 * timm's layout, adapted through autodiff) timed as stepCost times the ViT:
 * an inference and a reliable SAR step per round, each step until its update is read.
 */
async function backboneCost(o: { backend: BackendName; modelUrl: string; warmup: number; iterations: number }): Promise<BackboneStepCost> {
  const env = await setup(o.backend, undefined, true);
  const model = await loadBackbone(o.modelUrl);
  const { imageSize: S, inChannels: C } = model.config;
  const frames = Array.from({ length: 8 }, (_, i) => tf.randomUniform([1, S, S, C], 0, 1, 'float32', 50 + i) as tf.Tensor4D);
  const source = await createAdapter(model, { method: 'source' });
  const reliable = await createAdapter(model, { method: 'sar', lr: 1e-4, marginFraction: 100, resetThreshold: 0 });
  let n = 0;
  const stepper = (a: Adapter) => async () => {
    await a.step(frames[n++ % frames.length]!);
    await a.flush();
  };
  await timeInterleaved([stepper(source), stepper(reliable)], o.warmup, 0);
  const tensorsBefore = tf.memory().numTensors;
  const [inference, sar] = await timeInterleaved([stepper(source), stepper(reliable)], 0, o.iterations, o.iterations);
  const tensorsAfter = tf.memory().numTensors;
  const adapted = reliable.params.size;
  source.dispose();
  reliable.dispose();
  frames.forEach((f) => f.dispose());
  model.dispose();
  return {
    backend: env.backend,
    family: model.family,
    adapted,
    inferenceMs: median(inference!),
    sarReliableMs: median(sar!),
    reliableRatio: median(sar!.map((t, i) => t / inference![i]!)),
    memory: { tensorsBefore, tensorsAfter },
  };
}

Error.stackTraceLimit = 60;
(window as unknown as { wildttaBench: unknown }).wildttaBench = { stepCost, vitB16, framePath, backboneCost };
