// In-page half of `npm run bench`: builds a stream and runs one method on it.
import { initBackend, type BackendChoice } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import { loadBackbone } from '../src/model/load';
import type { Backbone } from '../src/model/backbone';
import { fetchLabeledImages, type LabeledImages } from '../src/data/idx';
import { labelShiftStream, mixedStream, perCorruptionStream, splitPools, type Stream } from '../src/data/streams';
import { corruptOrStress } from '../src/data/stress';
import type { CorruptionRegime } from '../src/data/corruptions/regime';
import { readSourceStats, type SourceStats } from '../src/model/source-stats';
import { modelFiles } from '../src/model/files';
import type { AdapterOptions } from '../src/methods';
import { runStream, type StreamScore } from './run-stream';

export type Scenario = 'per-corruption' | 'mixed' | 'label-shift';

export interface WildRun {
  backend: BackendChoice;
  modelUrl: string;
  dataUrl: string;
  scenario: Scenario;
  corruptions: string[];
  severity: number;
  /** Corruption constants (default imagenet64). */
  regime?: CorruptionRegime;
  perCorruption: number;
  seed: number;
  method: AdapterOptions;
  imbalanceRatio?: number;
  /** Clean held-out images for EATA's Fisher (default 500). */
  fisherCount?: number;
  trace?: boolean;
}

let loaded: { key: string; model: Backbone; data: LabeledImages; backend: string; sourceStats: SourceStats | undefined } | undefined;

async function prepare(run: WildRun) {
  const key = `${run.backend}|${run.modelUrl}|${run.dataUrl}`;
  if (loaded?.key === key) return loaded;
  loaded?.model.dispose();
  const report = await initBackend(run.backend, { wasmPaths: WASM_PATHS });
  const model = await loadBackbone(run.modelUrl);
  const data = await fetchLabeledImages(run.dataUrl);
  // The model's source statistics, beside its weights, for the methods that re-centre or align.
  const statsResponse = await fetch(modelFiles(run.modelUrl).sourceStats);
  const sourceStats = statsResponse.ok ? readSourceStats(new Uint8Array(await statsResponse.arrayBuffer()), model) : undefined;
  loaded = { key, model, data, backend: report.backend, sourceStats };
  return loaded;
}

export function buildStream(labels: Uint8Array, numClasses: number, run: WildRun): { stream: Stream; clean: number[] } {
  const pools = splitPools(labels, numClasses);
  const o = { corruptions: run.corruptions, severity: run.severity, perCorruption: run.perCorruption, seed: run.seed };
  const stream =
    run.scenario === 'per-corruption'
      ? perCorruptionStream(labels, pools.evaluation, o)
      : run.scenario === 'mixed'
        ? mixedStream(labels, pools.evaluation, o)
        : labelShiftStream(labels, pools.evaluation, { ...o, numClasses, imbalanceRatio: run.imbalanceRatio });
  return { stream, clean: pools.clean };
}

async function runWild(run: WildRun): Promise<StreamScore & { backend: string }> {
  const { model, data, backend, sourceStats } = await prepare(run);
  const { stream, clean } = buildStream(data.labels, model.config.numClasses, run);
  const report = (window as unknown as { wildttaProgress?: (done: number, total: number) => void }).wildttaProgress;
  const score = await runStream({
    model,
    images: data,
    stream,
    method: run.method,
    // A stress stream's name (rot90, hflip+fog) is its transform; any other, an ordinary corruption.
    corrupt: (x, name, severity, seed) => corruptOrStress(x, name, severity, seed, { regime: run.regime ?? 'imagenet64' }),
    ...(sourceStats ? { sourceStats } : {}),
    cleanIndices: clean,
    fisherCount: run.fisherCount,
    trace: run.trace,
    onProgress: report,
  });
  return { ...score, backend };
}

/** Median ms of a batch-1 forward on `backend` (to pick the fastest backend). */
async function probeSpeed(run: Pick<WildRun, 'backend' | 'modelUrl' | 'dataUrl'>): Promise<{ backend: string; ms: number }> {
  const { model, data, backend } = await prepare({ ...run } as WildRun);
  const { grayBatch } = await import('../src/data/images');
  const tf = await import('@tensorflow/tfjs');
  const x = grayBatch(data.images, 0, 1, data.height, data.width);
  const times: number[] = [];
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    const y = tf.tidy(() => tf.softmax(model.logits(x)));
    await y.data();
    y.dispose();
    if (i >= 3) times.push(performance.now() - t0);
  }
  x.dispose();
  times.sort((a, b) => a - b);
  return { backend, ms: times[Math.floor(times.length / 2)]! };
}

(window as unknown as { wildttaWild: unknown }).wildttaWild = { run: runWild, probeSpeed };
