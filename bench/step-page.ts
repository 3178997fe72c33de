// In-page half of `npm run bench:step`: times inference and SAR steps on one backend.
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import { loadViT } from '../src/model/load';
import { fetchLabeledImages } from '../src/data/idx';
import { grayBatch } from '../src/data/images';
import { createAdapter, type Adapter } from '../src/methods';

export interface StepCostOptions {
  backend: BackendName;
  modelUrl: string;
  dataUrl: string;
  warmup: number;
  iterations: number;
}

export interface StepCost {
  backend: string;
  adapter: string | null;
  inferenceMs: number;
  sarReliableMs: number;
  sarUnreliableMs: number;
  reliableRatio: number;
  unreliableRatio: number;
  /** Tensor count and GPU bytes around the timed reliable SAR steps (equal = no leak). */
  memory: { tensorsAfterWarmup: number; tensorsAtEnd: number; gpuBytesAfterWarmup: number | null; gpuBytesAtEnd: number | null };
  updates: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function time(adapter: Adapter, frames: tf.Tensor4D[], warmup: number, iterations: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < warmup + iterations; i++) {
    const t0 = performance.now();
    await adapter.step(frames[i % frames.length]!);
    if (i >= warmup) ms.push(performance.now() - t0);
  }
  await adapter.flush();
  return ms;
}

async function stepCost(o: StepCostOptions): Promise<StepCost> {
  const report = await initBackend(o.backend, { wasmPaths: WASM_PATHS });
  let adapterInfo: string | null = null;
  if (report.backend === 'webgpu' && 'gpu' in navigator) {
    const a = await (navigator as unknown as { gpu: { requestAdapter(): Promise<{ info?: { vendor: string; architecture: string } } | null> } }).gpu.requestAdapter();
    adapterInfo = a?.info ? `${a.info.vendor} ${a.info.architecture}`.trim() : null;
  }
  const model = await loadViT(o.modelUrl);
  const data = await fetchLabeledImages(o.dataUrl);
  const frames = Array.from({ length: 16 }, (_, i) => grayBatch(data.images, i, 1, data.height, data.width));

  const source = await createAdapter(model, { method: 'source' });
  const inference = await time(source, frames, o.warmup, o.iterations);
  source.dispose();

  // The filter decides the cost: a margin above any entropy makes every sample reliable
  // (the full SAR step), a margin of 0 makes none reliable (one forward, nothing else).
  const reliable = await createAdapter(model, { method: 'sar', lr: 1e-4, marginFraction: 100, resetThreshold: 0 });
  await time(reliable, frames, o.warmup, 0);
  const mem = (t: 'numTensors' | 'numBytesInGPU') => (tf.memory() as unknown as Record<string, number | undefined>)[t] ?? null;
  const tensorsAfterWarmup = tf.memory().numTensors;
  const gpuBytesAfterWarmup = mem('numBytesInGPU');
  const sarReliable = await time(reliable, frames, 0, o.iterations);
  const tensorsAtEnd = tf.memory().numTensors;
  const gpuBytesAtEnd = mem('numBytesInGPU');
  const updates = reliable.updateCount;
  reliable.dispose();
  const unreliable = await createAdapter(model, { method: 'sar', lr: 1e-4, marginFraction: 0 });
  const sarUnreliable = await time(unreliable, frames, o.warmup, o.iterations);
  unreliable.dispose();
  frames.forEach((f) => f.dispose());
  model.dispose();

  const inferenceMs = median(inference);
  const sarReliableMs = median(sarReliable);
  const sarUnreliableMs = median(sarUnreliable);
  return {
    backend: report.backend,
    adapter: adapterInfo,
    inferenceMs,
    sarReliableMs,
    sarUnreliableMs,
    reliableRatio: sarReliableMs / inferenceMs,
    unreliableRatio: sarUnreliableMs / inferenceMs,
    memory: { tensorsAfterWarmup, tensorsAtEnd, gpuBytesAfterWarmup, gpuBytesAtEnd },
    updates,
  };
}

(window as unknown as { wildttaBench: unknown }).wildttaBench = { stepCost };
