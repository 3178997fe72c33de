// The measuring half of `npm run bench:gpu`: builds one model per size on a
// tfjs backend, times inference and SAR steps, counts what each step asks
// of the WebGPU device, and returns the values a parity check compares
// (logits, and the adapted norms after a few steps). Imported only after
// dawn.ts has put Dawn at navigator.gpu (tfjs-backend-webgpu registers
// itself on import only where navigator.gpu exists).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgpu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAdapter } from '../../src/methods';
import { backboneFromSafetensors } from '../../src/model/load';
import type { Backbone } from '../../src/model/backbone';
import { ViT } from '../../src/model/vit';
import { randomViTTensors, tinyConfig } from '../../src/model/random-vit';
import { expectedResNetTensors, ResNetGN, type ResNetGnConfig } from '../../src/model/resnet-gn';
import type { DecodedTensor } from '../../src/model/safetensors';
import { mulberry32 } from '../../src/data/random';
import { syntheticImages } from '../../src/model/make-model';
import { WEBGPU_FLAGS } from '../../src/runtime/backend';
import { resetCounts, snapshotCounts, type DeviceCounts } from './dawn';

/** The sizes bench:gpu knows: random-weight ViTs and a ResNet-50-GN in timm's layout, and the two shipped models. */
export const SIZES: Record<
  string,
  { what: string; vit?: { image: number; patch: number; width: number; depth: number; heads: number; classes: number }; resnet?: ResNetGnConfig }
> = {
  tiny: {
    what: 'ViT 32×32×3, patch 4, width 96, depth 4, 3 heads, 10 classes (make-model tiny)',
    vit: { image: 32, patch: 4, width: 96, depth: 4, heads: 3, classes: 10 },
  },
  ti: { what: 'ViT-Ti/16, 224 px, 1,000 classes', vit: { image: 224, patch: 16, width: 192, depth: 12, heads: 3, classes: 1000 } },
  s: { what: 'ViT-S/16, 224 px, 1,000 classes', vit: { image: 224, patch: 16, width: 384, depth: 12, heads: 6, classes: 1000 } },
  b: { what: 'ViT-B/16, 224 px, 1,000 classes', vit: { image: 224, patch: 16, width: 768, depth: 12, heads: 12, classes: 1000 } },
  rn50: {
    what: "ResNet-50-GN, 224 px, 1,000 classes (timm's resnet50_gn layout)",
    resnet: {
      imageSize: 224,
      inChannels: 3,
      numClasses: 1000,
      classNames: Array.from({ length: 1000 }, (_, i) => `class ${i}`),
      block: 'bottleneck',
      layers: [3, 4, 6, 3],
      stemWidth: 64,
      widths: [64, 128, 256, 512],
      groups: 32,
      normEps: 1e-5,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    },
  },
  'fmnist-vit': { what: 'the shipped ViT (public/models/fmnist-vit)' },
  'fmnist-resnet-gn': { what: 'the shipped GroupNorm ResNet (public/models/fmnist-resnet-gn)' },
};

export interface SizeOptions {
  size: string;
  /** Blocks of a 224-px ViT, when fewer than its own (a reduced-depth run on a slow adapter). */
  depth?: number;
  seed: number;
  /** Folder holding fmnist-vit/ and fmnist-resnet-gn/. */
  modelsDir: string;
}

export function buildModel(o: SizeOptions): Backbone {
  const s = SIZES[o.size];
  if (s === undefined) throw new RangeError(`unknown size "${o.size}": choose from ${Object.keys(SIZES).join(', ')}`);
  if (s.resnet) return new ResNetGN(s.resnet, randomResNetTensors(s.resnet, o.seed));
  if (s.vit === undefined) {
    const dir = join(o.modelsDir, o.size);
    return backboneFromSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  }
  const v = s.vit;
  const cfg = tinyConfig({
    imageSize: v.image,
    patchSize: v.patch,
    inChannels: 3,
    width: v.width,
    depth: v.image > 32 && o.depth !== undefined ? Math.min(o.depth, v.depth) : v.depth,
    heads: v.heads,
    mlpHidden: 4 * v.width,
    numClasses: v.classes,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
  });
  // Head scale 4, as bench:step's ViT-B/16: predictions from confident to uncertain.
  const weights = randomViTTensors(cfg, o.seed, 4);
  const model = new ViT(cfg, weights);
  weights.clear();
  return model;
}

/**
 * Seeded random weights for a GroupNorm ResNet: convs He-uniform, GroupNorm
 * scales near 1 and shifts near 0, the head scaled by 4 as the ViTs' (a
 * random deep network's logits are otherwise nearly uniform).
 */
function randomResNetTensors(cfg: ResNetGnConfig, seed: number): Map<string, DecodedTensor> {
  const rand = mulberry32(seed);
  const out = new Map<string, DecodedTensor>();
  for (const [name, shape] of expectedResNetTensors(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length > 1 ? n / shape[0]! : 1;
    const bound = name === 'fc.weight' ? 4 / Math.sqrt(fanIn) : shape.length === 4 ? Math.sqrt(6 / fanIn) : 0.1;
    const base = shape.length === 1 && name.endsWith('.weight') ? 1 : 0;
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = base + (rand() * 2 - 1) * bound;
    out.set(name, { shape, values });
  }
  return out;
}

export interface RunOptions extends SizeOptions {
  backend: 'webgpu' | 'wasm' | 'cpu';
  /** SAR steps whose adapted values the parity check compares. */
  paritySteps: number;
  /** Timed inferences and SAR steps (0: none, as for the reference backend). */
  inferences: number;
  steps: number;
  batch: number;
}

export interface Memory {
  tensors: number[];
  gpuBytes: Array<number | null>;
}

export interface RunResult {
  size: string;
  backend: string;
  depth: number | null;
  parameters: number;
  adapted: number;
  buildMs: number;
  firstStepMs: number;
  /** Logits of the first frame at the source weights, then the adapted norms after parity steps. */
  logits: number[];
  adaptedValues: number[];
  sourceValues: number[];
  updates: number;
  inferenceMs: number[];
  sarStepMs: number[];
  /** Tensors still alive after the model and adapter were disposed (0 = none left behind). */
  tensorsLeft?: number;
  /** Tensor count and GPU bytes after each timed step (flat = no leak). */
  memory: Memory;
  /** webgpu: what one SAR step (step + flush) asked of the device: the last timed step's (the first may still fill tfjs's buffer pool). */
  perStep?: DeviceCounts;
  /** A step of a stream (step() without flush(), whose update is read with the next step's prediction). */
  perStreamStep?: DeviceCounts;
  /** The same for every timed step. */
  perStepAll?: DeviceCounts[];
  /** webgpu with timestamp queries: the GPU time of one step's kernels by tf.profile, and its top kernels. */
  kernelTime?: { totalMs: number; kernels: number; top: Array<{ name: string; n: number; ms: number }> };
}

const flat = (m: Map<string, tf.Variable>) => tf.tidy(() => tf.concat([...m.values()].map((v) => v.reshape([-1]))));

export async function runSize(o: RunOptions): Promise<RunResult> {
  if (o.backend === 'webgpu') for (const [flag, value] of Object.entries(WEBGPU_FLAGS)) tf.env().set(flag, value);
  if (!(await tf.setBackend(o.backend))) throw new Error(`tfjs backend ${o.backend} did not start`);
  await tf.ready();
  const tensorsAtStart = tf.memory().numTensors;
  const t0 = performance.now();
  const model = buildModel(o);
  const buildMs = performance.now() - t0;
  const { imageSize: S, inChannels: C } = model.config;
  const px = syntheticImages(2 * o.batch, S, C, o.seed + 1);
  const frames = [0, 1].map((i) => tf.tensor4d(px.subarray(i * o.batch * S * S * C, (i + 1) * o.batch * S * S * C), [o.batch, S, S, C]));
  let parameters = 0;
  for (const p of model.params.values()) parameters += p.size;

  const logitsT = model.logits(frames[0]!);
  const logits = Array.from(await logitsT.data());
  logitsT.dispose();
  // marginFraction 10 puts E0 above ln C: every sample passes both filters, so every step updates (bench:step's "reliable" step).
  const sar = await createAdapter(model, { method: 'sar', marginFraction: 10, warmup: o.backend === 'webgpu' });
  const sourceT = flat(sar.params);
  const sourceValues = Array.from(await sourceT.data());
  sourceT.dispose();
  const step = async (i: number) => {
    await sar.step(frames[i % 2]!);
    await sar.flush();
  };
  let t = performance.now();
  await step(0);
  const firstStepMs = performance.now() - t;
  for (let i = 1; i < o.paritySteps; i++) await step(i);
  const adaptedT = flat(sar.params);
  const adaptedValues = Array.from(await adaptedT.data());
  adaptedT.dispose();

  const inferenceMs: number[] = [];
  for (let i = 0; i < o.inferences; i++) {
    t = performance.now();
    const y = model.logits(frames[i % 2]!);
    await y.data(); // the read waits for the GPU: the time is the device's, not the queue's
    y.dispose();
    inferenceMs.push(performance.now() - t);
  }
  const sarStepMs: number[] = [];
  const memory: Memory = { tensors: [], gpuBytes: [] };
  const perStepAll: DeviceCounts[] = [];
  for (let i = 0; i < o.steps; i++) {
    resetCounts();
    t = performance.now();
    await step(i);
    sarStepMs.push(performance.now() - t);
    perStepAll.push(snapshotCounts());
    const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
    memory.tensors.push(m.numTensors);
    memory.gpuBytes.push(m.numBytesInGPU ?? null);
  }
  const result: RunResult = {
    size: o.size,
    backend: o.backend,
    depth: model instanceof ViT ? model.config.depth : null,
    parameters,
    adapted: sourceValues.length,
    buildMs,
    firstStepMs,
    logits,
    adaptedValues,
    sourceValues,
    updates: sar.updateCount,
    inferenceMs,
    sarStepMs,
    memory,
  };
  if (o.backend === 'webgpu' && o.steps > 0) {
    result.perStep = perStepAll.at(-1)!;
    result.perStepAll = perStepAll;
    // A page streaming frames calls step() alone: the update's stats come back in the next step's read.
    await sar.step(frames[0]!);
    resetCounts();
    await sar.step(frames[1]!);
    result.perStreamStep = snapshotCounts();
    await sar.flush();
    // tf.profile times each kernel with timestamp queries where the device has them (tfjs asks for the feature).
    const p = await tf.profile(() => step(0));
    const byName = new Map<string, { n: number; ms: number }>();
    let totalMs = 0;
    for (const k of p.kernels) {
      const ms = Number(k.kernelTimeMs) || 0;
      totalMs += ms;
      const e = byName.get(k.name) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += ms;
      byName.set(k.name, e);
    }
    const top = [...byName].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.ms - a.ms);
    result.kernelTime = { totalMs, kernels: p.kernels.length, top: top.slice(0, 8) };
  }
  sar.dispose();
  model.dispose();
  for (const f of frames) f.dispose();
  result.tensorsLeft = tf.memory().numTensors - tensorsAtStart;
  return result;
}

/** How far the webgpu run's values are from the reference backend's. */
export interface Parity {
  size: string;
  reference: string;
  /** max |Δlogit| / max |logit|. */
  logitsRel: number;
  logitsMaxAbs: number;
  /** ‖Δθ_gpu − Δθ_ref‖ / ‖Δθ_ref‖, Δθ the change of the adapted norms over the parity steps. */
  updateRel: number;
  adaptedMaxAbs: number;
  steps: number;
}

export function parity(gpu: RunResult, ref: RunResult, steps: number): Parity {
  const maxAbs = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
  const scale = ref.logits.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.adaptedValues.length; i++) {
    const dRef = ref.adaptedValues[i]! - ref.sourceValues[i]!;
    const dGpu = gpu.adaptedValues[i]! - gpu.sourceValues[i]!;
    num += (dGpu - dRef) ** 2;
    den += dRef ** 2;
  }
  return {
    size: gpu.size,
    reference: ref.backend,
    logitsRel: maxAbs(gpu.logits, ref.logits) / scale,
    logitsMaxAbs: maxAbs(gpu.logits, ref.logits),
    updateRel: den > 0 ? Math.sqrt(num / den) : Number.NaN,
    adaptedMaxAbs: maxAbs(gpu.adaptedValues, ref.adaptedValues),
    steps,
  };
}
