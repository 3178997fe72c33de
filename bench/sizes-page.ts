// In-page half of `npm run bench:step -- --sizes` (bench/sizes.ts): one model,
// wildtta on tfjs-wasm and ONNX Runtime Web's wasm build in the same page, with
// the same thread count, timed in interleaved rounds. ONNX Runtime is the
// benchmark's yardstick only: the library never imports it.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-web/wasm';
import ortWasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import { gemmThreadsNow } from '../src/kernels';
import { useGemm } from '../src/kernels/host/glue';
import { initBackend } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import { loadBackbone } from '../src/model/load';
import type { Backbone } from '../src/model/backbone';
import { createAdapter, type Adapter } from '../src/methods';
import { parityImage, toNchw } from '../tools/lib/parity-image';

export interface SizeCostOptions {
  /** The model folder's URL (model.safetensors, config.json), ending in '/'. */
  modelUrl: string;
  onnxUrl: string;
  /** Threads for both engines (more than 1 needs a cross-origin isolated page). */
  threads: number;
  warmup: number;
  rounds: number;
  /** Calls per timed sample, back to back (its time is their mean): where one call is near the timer's resolution. Default 1. */
  repeat?: number;
}

export interface SizeCost {
  threads: number | null;
  /** Threads gemm.wat's products ran on during the timed rounds (0: tfjs-wasm's XNNPACK products). */
  gemmThreads: number;
  ortThreads: number;
  ortVersion: string;
  crossOriginIsolated: boolean;
  wasmBinary: string;
  /** Per round, ms: wildtta's inference, its reliable SAR step, ONNX Runtime's inference, the reliable sar-msam step. */
  inferenceMs: number[];
  sarMs: number[];
  ortMs: number[];
  msamMs: number[];
  adapted: number;
  updates: number;
  msamUpdates: number;
  /** Logits of the parity image (tools/lib/parity-image.ts) from each engine. */
  checkOurs: number[];
  checkOrt: number[];
  tensorsBefore: number;
  tensorsAfter: number;
}

/** The .wasm binaries this page fetched (Vite's `?import` modules left out). */
function wasmBinaries(): string {
  const names = performance
    .getEntriesByType('resource')
    .map((e) => new URL(e.name))
    .filter((u) => u.pathname.endsWith('.wasm') && !u.searchParams.has('import'))
    .map((u) => u.pathname.split('/').pop()!);
  return [...new Set(names)].join(', ');
}

/** Four seeded frames, and two adapters: no adaptation, and SAR on a sample that is always reliable. */
async function timedAdapters(model: Backbone): Promise<{ frames: tf.Tensor4D[]; source: Adapter; sar: Adapter }> {
  const { imageSize: S, inChannels: C } = model.config;
  const frames = Array.from({ length: 4 }, (_, i) => tf.randomUniform([1, S, S, C], 0, 1, 'float32', 70 + i) as tf.Tensor4D);
  const source = await createAdapter(model, { method: 'source' });
  // A margin above any entropy: every sample is reliable, so each step is SAR's whole step.
  const sar = await createAdapter(model, { method: 'sar', lr: 1e-5, marginFraction: 100, resetThreshold: 0 });
  return { frames, source, sar };
}

async function sizeCost(o: SizeCostOptions): Promise<SizeCost> {
  const report = await initBackend('wasm', { wasmPaths: WASM_PATHS, wasmThreads: o.threads });
  const wasmBinary = wasmBinaries();
  const model = await loadBackbone(o.modelUrl);
  const { imageSize: S, inChannels: C } = model.config;

  ort.env.wasm.wasmPaths = { wasm: ortWasm };
  ort.env.wasm.numThreads = o.threads;
  const onnx = new Uint8Array(await (await fetch(o.onnxUrl)).arrayBuffer());
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    // Its pool's threads would otherwise spin after each run, taking the cores from wildtta's turn.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });

  const image = parityImage(S, C);
  const check = tf.tidy(() => model.logits(tf.tensor4d(image, [1, S, S, C])));
  const checkOurs = Array.from(await check.data());
  check.dispose();
  const checkOrt = Array.from((await session.run({ pixels: new ort.Tensor('float32', toNchw(image, S, C), [1, C, S, S]) })).logits!.data as Float32Array);

  // The same seeded frames for both engines, each already in the layout its engine reads.
  const { frames, source, sar } = await timedAdapters(model);
  // sar-msam on the same always-reliable samples.
  const msam = await createAdapter(model, { method: 'sar-msam', lr: 1e-5, marginFraction: 100, resetThreshold: 0 });
  const ortFrames = await Promise.all(frames.map(async (f) => new ort.Tensor('float32', toNchw((await f.data()) as Float32Array, S, C), [1, C, S, S])));
  let n = 0;
  const step = (a: Adapter) => async () => {
    await a.step(frames[n++ % frames.length]!);
    await a.flush();
  };
  const ortRun = async () => {
    const out = await session.run({ pixels: ortFrames[n++ % ortFrames.length]! });
    // The read that an inference ends with on our side too (the logits on the main thread).
    await out.logits!.getData();
  };
  const fns = [step(source), step(sar), ortRun, step(msam)];
  for (let w = 0; w < o.warmup; w++) for (const f of fns) await f();
  const tensorsBefore = tf.memory().numTensors;
  const ms: number[][] = fns.map(() => []);
  for (let r = 0; r < o.rounds; r++) {
    // One of each per round, the order turning, so a change in the machine's load hits them all.
    for (let j = 0; j < fns.length; j++) {
      const k = (j + r) % fns.length;
      const repeat = o.repeat ?? 1;
      const t0 = performance.now();
      for (let i = 0; i < repeat; i++) await fns[k]!();
      ms[k]!.push((performance.now() - t0) / repeat);
    }
  }
  const tensorsAfter = tf.memory().numTensors;
  const result: SizeCost = {
    threads: report.wasmThreads ?? null,
    gemmThreads: gemmThreadsNow(),
    ortThreads: ort.env.wasm.numThreads,
    ortVersion: ort.env.versions.web ?? '',
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    wasmBinary,
    inferenceMs: ms[0]!,
    sarMs: ms[1]!,
    ortMs: ms[2]!,
    msamMs: ms[3]!,
    adapted: sar.params.size,
    updates: sar.updateCount,
    msamUpdates: msam.updateCount,
    checkOurs,
    checkOrt,
    tensorsBefore,
    tensorsAfter,
  };
  source.dispose();
  sar.dispose();
  msam.dispose();
  frames.forEach((f) => f.dispose());
  model.dispose();
  await session.release();
  return result;
}

export interface GemmAbOptions {
  modelUrl: string;
  threads: number;
  rounds: number;
}

export interface GemmAb {
  threads: number | null;
  /** Threads gemm.wat ran on in its rounds. */
  gemmThreads: number;
  wasmBinary: string;
  /** Per round, ms, with gemm.wat's products and with tfjs-wasm's (XNNPACK's). */
  inference: { gemm: number[]; xnnpack: number[] };
  sar: { gemm: number[]; xnnpack: number[] };
}

/**
 * wildtta alone, its frozen weights' products by gemm.wat and by XNNPACK in
 * alternating rounds (the order turning), inference and a reliable SAR step
 * each: on the threaded build, gemm.wat on the pool of gemm-pool.ts.
 */
async function gemmAb(o: GemmAbOptions): Promise<GemmAb> {
  const report = await initBackend('wasm', { wasmPaths: WASM_PATHS, wasmThreads: o.threads });
  const model = await loadBackbone(o.modelUrl);
  const { frames, source, sar } = await timedAdapters(model);
  let n = 0;
  const time = async (a: Adapter) => {
    const t0 = performance.now();
    await a.step(frames[n++ % frames.length]!);
    await a.flush();
    return performance.now() - t0;
  };
  const out: GemmAb = {
    threads: report.wasmThreads ?? null,
    gemmThreads: 0,
    wasmBinary: '',
    inference: { gemm: [], xnnpack: [] },
    sar: { gemm: [], xnnpack: [] },
  };
  for (let r = 0; r <= o.rounds; r++) {
    for (const gemm of r % 2 ? [true, false] : [false, true]) {
      useGemm(gemm);
      const key = gemm ? 'gemm' : 'xnnpack';
      const [i, s] = [await time(source), await time(sar)];
      if (gemm) out.gemmThreads = gemmThreadsNow();
      // Round 0 warms up both ways (and packs the weights).
      if (r > 0) {
        out.inference[key].push(i);
        out.sar[key].push(s);
      }
    }
  }
  useGemm(true);
  out.wasmBinary = wasmBinaries();
  source.dispose();
  sar.dispose();
  frames.forEach((f) => f.dispose());
  model.dispose();
  return out;
}

(window as unknown as { wildttaSizes: unknown }).wildttaSizes = { sizeCost, gemmAb };
