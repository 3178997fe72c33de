// Where a reliable SAR step's time goes for a convolutional family (the shipped
// GroupNorm ResNet by default; the ConvNeXt too), in Node on tfjs-wasm: median wall
// time of an inference (the no-adapt step), a reliable SAR step (every sample
// passes E0), an unreliable one after a run of unreliable frames, and the
// first unreliable frame after a reliable run (the step that pays for a
// speculative gradient it cannot use); per-round ratios to the inference;
// then the kernels of one reliable step by total time. The browser's figure
// is `npm run bench:step`'s ResNet row; this one runs in seconds.
//
//   node --import tsx bench/profile-autodiff.ts [--model public/models/fmnist-resnet-gn] [--backend wasm] [--rounds 60]
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { loadModelFolder, nodeSetup } from '../tools/lib/node-env';
import { createAdapter } from '../src/methods';
import type { Adapter } from '../src/methods/adapter';
import { kernelTotals } from './kernel-profile';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'public/models/fmnist-resnet-gn' },
    backend: { type: 'string', default: 'wasm' },
    rounds: { type: 'string', default: '60' },
  },
});
await nodeSetup(args.backend);
const rounds = Number(args.rounds);
const model = loadModelFolder(args.model);
const { imageSize: S, inChannels: C } = model.config;
const frames = Array.from({ length: 8 }, (_, i) => tf.randomUniform([1, S, S, C], 0, 1, 'float32', 50 + i) as tf.Tensor4D);
const source = await createAdapter(model, { method: 'source' });
// E0 far above ln C: every sample reliable; E0 = 0: none is. resetThreshold 0: no model recovery mid-run.
const reliable = await createAdapter(model, { method: 'sar', marginFraction: 100, resetThreshold: 0 });
const unreliable = await createAdapter(model, { method: 'sar', marginFraction: 0 });
// Reliable frames, then one unreliable one (E0 moved between steps): the step after a reliable run.
const switching = await createAdapter(model, { method: 'sar', marginFraction: 100, resetThreshold: 0 });
let n = 0;
const stepper = (a: Adapter) => async () => {
  await a.step(frames[n++ % frames.length]!);
  await a.flush();
};
const margin = (a: Adapter, m: number) => Object.defineProperty(a, 'margin', { value: m, configurable: true });
const afterReliable = async () => {
  margin(switching, 100 * switching.lnC);
  for (let i = 0; i < 3; i++) await stepper(switching)();
  margin(switching, 0);
  const t = performance.now();
  await stepper(switching)();
  return performance.now() - t;
};

const phases: Record<string, () => Promise<number>> = {
  inference: async () => {
    const t = performance.now();
    await stepper(source)();
    return performance.now() - t;
  },
  'SAR reliable': async () => {
    const t = performance.now();
    await stepper(reliable)();
    return performance.now() - t;
  },
  'SAR unreliable (run)': async () => {
    const t = performance.now();
    await stepper(unreliable)();
    return performance.now() - t;
  },
  'SAR unreliable (after reliable)': afterReliable,
};
for (const fn of Object.values(phases)) for (let i = 0; i < 5; i++) await fn();
const before = tf.memory().numTensors;
const wall: Record<string, number[]> = {};
const ratio: Record<string, number[]> = {};
for (let r = 0; r < rounds; r++) {
  const got: Record<string, number> = {};
  for (const [name, fn] of Object.entries(phases)) got[name] = await fn();
  for (const [name, ms] of Object.entries(got)) {
    (wall[name] ??= []).push(ms);
    (ratio[name] ??= []).push(ms / got.inference!);
  }
}
const after = tf.memory().numTensors;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
console.log(
  `${model.family} (${args.model}), tfjs ${tf.version.tfjs} ${tf.getBackend()}, Node ${process.version}; medians of ${rounds} rounds; tensors ${before} → ${after}`,
);
for (const name of Object.keys(phases))
  console.log(`${name.padEnd(32)} ${median(wall[name]!).toFixed(2).padStart(8)} ms  ${median(ratio[name]!).toFixed(2).padStart(6)}× inference`);

const profile = await tf.profile(stepper(reliable));
const totals = kernelTotals(profile);
const total = totals.reduce((a, [, e]) => a + e.ms, 0);
console.log(`\nkernels of one reliable SAR step by total time (tf.profile, ${profile.kernels.length} kernels, ${total.toFixed(2)} ms):`);
for (const [name, e] of totals.slice(0, 18))
  console.log(`  ${name.padEnd(28)} ${String(e.n).padStart(4)} × ${((1000 * e.ms) / e.n).toFixed(1).padStart(7)} µs = ${e.ms.toFixed(2)} ms`);
