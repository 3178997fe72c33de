// In-page half of the frame-path rows of `npm run bench:step` (issue 16):
// what a whole frame costs next to the adapter's own step, measured in the
// same rounds on one backend.
//
// - adapter: `adapter.step(x)` on frames already preprocessed and corrupted
//   (the base every ratio divides by);
// - engine: the engine's frame step (frame → preprocess → corruption →
//   adapter step → result), with the side-by-side reference and the preview
//   off, and on (the demo's comparison);
// - classify: `WildTTA.classify(imageData)` on the page's thread, and with
//   `worker: true` (the worker bundle of `npm run build:lib`, so the message
//   round trip and the ImageBitmap transfer are in).
//
// Every frame is reliable (SAR with a margin above any entropy) so that each
// pays a whole reliable step; frames follow each other as in a stream (no
// flush between them: an update queued on a GPU is read with the next frame).
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import { loadViT } from '../src/model/load';
import { fetchLabeledImages } from '../src/data/idx';
import { grayBatch } from '../src/data/images';
import { corrupt } from '../src/data/corruptions';
import { createAdapter } from '../src/methods';
import { Engine } from '../src/runtime/engine';
import type { FrameInput, FrameResult } from '../src/runtime/engine-types';
import { WildTTA } from '../src/api/wildtta';

export interface FramePathOptions {
  backend: BackendName;
  modelUrl: string;
  dataUrl: string;
  /** Folder of the built worker bundle (dist/), for the `worker: true` row. */
  workerAssetsUrl: string;
  /** Timed samples per kind, one of each kind per round. */
  rounds: number;
  /** Frames in a row per sample. */
  repeat: number;
  warmup: number;
}

export const FRAME_KINDS = ['adapter', 'engine', 'engineCompare', 'classify', 'classifyWorker'] as const;
export type FrameKind = (typeof FRAME_KINDS)[number];

export interface FramePathCost {
  backend: string;
  /** Median ms per frame of each kind. */
  ms: Record<FrameKind, number>;
  /** Medians of the per-round ratios to the adapter's step. */
  ratio: Record<Exclude<FrameKind, 'adapter'>, number>;
  /** Where the engine's frame step goes, mean ms per frame (from FrameResult.ms): reference off and on. */
  split: Record<'engine' | 'engineCompare', { prepare: number; step: number; rest: number }>;
  /** The worker row ran on this backend (its own tfjs). */
  workerBackend: string;
  memory: { tensorsBefore: number; tensorsAfter: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** SAR with every frame reliable: a margin far above ln C, and no reset. */
const ALWAYS_RELIABLE = { marginFraction: 100, resetThreshold: 0 };

export async function framePath(o: FramePathOptions): Promise<FramePathCost> {
  const report = await initBackend(o.backend, { wasmPaths: WASM_PATHS });
  const data = await fetchLabeledImages(o.dataUrl);
  const N = 16;
  const S = data.width;
  const raw = Array.from({ length: N }, (_, i) => data.images.slice(i * S * S, (i + 1) * S * S));
  const corruption = (i: number) => ({ name: 'gaussian_noise', severity: 5, seed: i });

  // The adapter alone, on frames made ready beforehand.
  const model = await loadViT(o.modelUrl);
  const adapter = await createAdapter(model, { method: 'sar', lr: 1e-4, ...ALWAYS_RELIABLE });
  const ready = raw.map((_, i) => tf.tidy(() => corrupt(grayBatch(data.images, i, 1, S, S), 'gaussian_noise', 5, i)));

  // The engine, as the demo's worker runs it (here on this page's thread).
  const engine = new Engine();
  await engine.init({ backend: o.backend, wasmPaths: WASM_PATHS });
  await engine.loadModel({ kind: 'url', url: new URL(o.modelUrl, location.href).href, sourceStats: false });
  await engine.setMethod({ method: 'sar', lr: 1e-4, options: ALWAYS_RELIABLE });
  const frame = (i: number, compare: boolean): FrameInput => ({
    frame: { data: raw[i % N]!, width: S, height: S, channels: 1, maxValue: 255 },
    corruption: corruption(i % N),
    label: data.labels[i % N]!,
    tag: i,
    preview: compare,
  });
  const splits = { engine: [] as FrameResult['ms'][], engineCompare: [] as FrameResult['ms'][] };

  // The public API on this thread and in a worker.
  const create = (worker: boolean) =>
    WildTTA.create({
      model: o.modelUrl,
      backend: o.backend,
      method: 'sar',
      lr: 1e-4,
      methodOptions: ALWAYS_RELIABLE,
      sourceStats: false,
      worker,
      assetsUrl: o.workerAssetsUrl,
    });
  const onPage = await create(false);
  const inWorker = await create(true);
  const images = raw.map((px) => {
    const id = new ImageData(S, S);
    px.forEach((v, j) => {
      id.data[4 * j] = id.data[4 * j + 1] = id.data[4 * j + 2] = v;
      id.data[4 * j + 3] = 255;
    });
    return id;
  });

  let n = 0;
  const run: Record<FrameKind, () => Promise<unknown>> = {
    adapter: () => adapter.step(ready[n++ % N]!),
    engine: async () => {
      engine.setReference(false);
      splits.engine.push((await engine.step(frame(n++, false))).ms);
    },
    engineCompare: async () => {
      engine.setReference(true);
      splits.engineCompare.push((await engine.step(frame(n++, true))).ms);
    },
    classify: () => onPage.classify(images[n++ % N]!),
    classifyWorker: () => inWorker.classify(images[n++ % N]!),
  };
  for (const k of FRAME_KINDS) for (let i = 0; i < o.warmup; i++) await run[k]();
  splits.engine.length = 0;
  splits.engineCompare.length = 0;
  await adapter.flush();
  const tensorsBefore = tf.memory().numTensors;

  const ms = Object.fromEntries(FRAME_KINDS.map((k) => [k, [] as number[]])) as Record<FrameKind, number[]>;
  for (let r = 0; r < o.rounds; r++) {
    // The order turns each round, so no kind always follows the same one.
    for (let j = 0; j < FRAME_KINDS.length; j++) {
      const k = FRAME_KINDS[(j + r) % FRAME_KINDS.length]!;
      const t0 = performance.now();
      for (let c = 0; c < o.repeat; c++) await run[k]();
      ms[k].push((performance.now() - t0) / o.repeat);
    }
  }
  await adapter.flush();
  await engine.flush();
  const tensorsAfter = tf.memory().numTensors;
  const workerBackend = inWorker.backend;

  await onPage.dispose();
  await inWorker.dispose();
  engine.dispose();
  adapter.dispose();
  ready.forEach((t) => t.dispose());
  model.dispose();

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const split = (xs: FrameResult['ms'][]) => ({
    prepare: mean(xs.map((m) => m.prepare)),
    step: mean(xs.map((m) => m.step)),
    rest: mean(xs.map((m) => m.total - m.prepare - m.step)),
  });
  const others = FRAME_KINDS.filter((k): k is Exclude<FrameKind, 'adapter'> => k !== 'adapter');
  return {
    backend: report.backend,
    ms: Object.fromEntries(FRAME_KINDS.map((k) => [k, median(ms[k])])) as Record<FrameKind, number>,
    ratio: Object.fromEntries(others.map((k) => [k, median(ms[k].map((t, i) => t / ms.adapter[i]!))])) as Record<Exclude<FrameKind, 'adapter'>, number>,
    split: { engine: split(splits.engine), engineCompare: split(splits.engineCompare) },
    workerBackend,
    memory: { tensorsBefore, tensorsAfter },
  };
}
