// Where a SAR step's time goes, in Node on tfjs-wasm (or cpu): the shipped
// model at batch size 1, every sample reliable. Prints the median wall and
// CPU time of a forward (as inference runs it), a forward keeping its tape, a
// backward, and of the no-adapt and SAR steps with their ratio, split into
// two forward+backward passes and the rest of the step; the kernels
// each runs; and the kernels of one SAR step by total time. For work on the
// step's cost: the browser's figures are `npm run bench:step`'s.
//
//   npm run bench:profile -- [--backend wasm|cpu] [--rounds 300] [--model FOLDER] [--compare-gemm]
//
// --model: a ViT folder (a real size from `npm run make-model`), the frame a
// synthetic image of its size. --compare-gemm: only the no-adapt and SAR
// steps, rounds alternating between gemm.wat's products and the backend's
// (XNNPACK), and the per-round ratios.
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { loadViTFolder, loadTestSplit, nodeSetup } from '../tools/lib/node-env';
import { createAdapter } from '../src/methods';
import { syntheticImages } from '../src/model/make-model';
import { FlatLayout } from '../src/methods/flat';
import { kernelTotals } from './kernel-profile';
import { useGemm } from '../src/kernels/host/glue';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    rounds: { type: 'string', default: '300' },
    model: { type: 'string', default: 'public/models/fmnist-vit' },
    'compare-gemm': { type: 'boolean', default: false },
  },
});
await nodeSetup(args.backend);
const rounds = Number(args.rounds);
const model = loadViTFolder(args.model);
const { imageSize: size, inChannels: channels } = model.config;
const x =
  args.model === 'public/models/fmnist-vit'
    ? tf.tidy(() => tf.div(tf.tensor4d(loadTestSplit().images.subarray(0, 784), [1, 28, 28, 1]), 255) as tf.Tensor4D)
    : tf.tensor4d(syntheticImages(1, size, channels, 0), [1, size, size, channels]);
const sar = await createAdapter(model, { method: 'sar', marginFraction: 10 }); // E0 above ln C: every sample reliable
const source = await createAdapter(model, { method: 'source' });
// The adapters' flat layout: the backward they run (in one engine call at batch 1 on the host).
const layout = new FlatLayout(sar.params);
const dLogits = tf.randomNormal([1, model.config.numClasses], 0, 1, 'float32', 1) as tf.Tensor2D;

if (args['compare-gemm']) {
  const steps = {
    'no-adapt step': () => source.step(x),
    'SAR step (reliable)': async () => {
      await sar.step(x);
      await sar.flush();
    },
  };
  const ratios: Record<string, number[]> = {};
  const times: Record<string, number[]> = {};
  for (let r = 0; r <= rounds; r++) {
    for (const [name, fn] of Object.entries(steps)) {
      const pair: number[] = [];
      // The order turns each round, so that neither setting always runs on a warm cache.
      for (const gemm of r % 2 ? [false, true] : [true, false]) {
        useGemm(gemm);
        const [ms] = await timed(fn);
        if (r > 0) (times[`${name}, ${gemm ? 'gemm.wat' : 'backend'}`] ??= []).push(ms);
        pair[gemm ? 0 : 1] = ms;
      }
      if (r > 0) (ratios[name] ??= []).push(pair[1]! / pair[0]!);
    }
  }
  useGemm(true);
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, ${args.model}; medians of ${rounds} rounds, settings alternating`);
  for (const [name, v] of Object.entries(times)) console.log(`${name.padEnd(34)} ${med(v).toFixed(3)} ms`);
  for (const [name, v] of Object.entries(ratios)) console.log(`${name}: backend's products ÷ gemm.wat's, median per round ${med(v).toFixed(3)}×`);
  process.exit(0);
}

const phases: Record<string, () => unknown> = {
  forward: () => tf.tidy(() => void model.forward(x, model.param)),
  'forward keeping its tape': () => tf.tidy(() => void model.forward(x, model.param, true)),
  'forward + backward': () =>
    tf.tidy(() => {
      const f = model.forward(x, model.param, true);
      model.gradient(f.tape!, dLogits, layout);
    }),
  'no-adapt step': () => source.step(x),
  'SAR step (reliable)': async () => {
    await sar.step(x);
    await sar.flush();
  },
};

/**
 * Wall time and CPU time (this process, all its threads) of one call, ms.
 * CPU time is less disturbed by other jobs, but also counts the garbage
 * collector's threads, which bill the step that allocates the most.
 */
async function timed(fn: () => unknown): Promise<[number, number]> {
  const start = process.cpuUsage();
  const t = performance.now();
  await fn();
  const wall = performance.now() - t;
  const d = process.cpuUsage(start);
  return [wall, (d.user + d.system) / 1000];
}

for (const fn of Object.values(phases)) for (let i = 0; i < 30; i++) await fn();
const wall: Record<string, number[]> = {};
const cpu: Record<string, number[]> = {};
const ratios: number[] = [];
const twoPasses: number[] = [];
const restShare: number[] = [];
for (let r = 0; r < rounds; r++) {
  for (const [name, fn] of Object.entries(phases)) {
    const [w, c] = await timed(fn);
    (wall[name] ??= []).push(w);
    (cpu[name] ??= []).push(c);
  }
  const inference = wall['no-adapt step']!.at(-1)!;
  const pass = wall['forward + backward']!.at(-1)!;
  ratios.push(wall['SAR step (reliable)']!.at(-1)! / inference);
  twoPasses.push((2 * pass) / inference);
  restShare.push((wall['SAR step (reliable)']!.at(-1)! - 2 * pass) / inference);
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
const kernels: Record<string, number> = {};
for (const [name, fn] of Object.entries(phases)) kernels[name] = (await tf.profile(async () => void (await fn()))).kernels.length;

console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, Node ${process.version}; medians of ${rounds} rounds (wall time, CPU time)`);
for (const name of Object.keys(phases)) {
  console.log(`${name.padEnd(26)} ${median(wall[name]!).toFixed(3)} ms  ${median(cpu[name]!).toFixed(3)} ms  ${String(kernels[name]).padStart(4)} kernels`);
}
const backward = median(wall['forward + backward']!) - median(wall['forward keeping its tape']!);
console.log(`backward ≈ ${backward.toFixed(3)} ms (wall); SAR step ÷ no-adapt step, median per round (wall): ${median(ratios).toFixed(2)}×`);
// A SAR step is two forward+backward passes and the rest: SAM's ascent, the second filter, the update, the reads.
const passes = median(twoPasses);
console.log(
  `two forward+backward passes ÷ no-adapt step: ${passes.toFixed(2)}×; the rest of a SAR step ÷ no-adapt step: ${median(restShare).toFixed(2)}× (medians per round)`,
);

// The arithmetic a SAR step cannot avoid, in multiply-adds of the products (everything else is a few percent at
// real sizes): the first forward, the backward of its entropy, the second forward at θ + ε (its patch embedding
// reused) and its backward. A backward takes the frozen weights' input gradients only (as many multiply-adds as
// their forward) and four N×N products per head where attention's forward has two; under token pooling the
// last block's backward runs on the class token's row except for the qkv product, which every token's key and
// value gradient reaches. With its measured ratio, this says how far a step is from its floor.
{
  const { width: D, mlpHidden: hid, depth, imageSize, patchSize: P, inChannels: C, numClasses } = model.config;
  const N = (imageSize / P) ** 2 + 1;
  const linears = N * (4 * D * D + 2 * D * hid);
  const embed = (N - 1) * P * P * C * D;
  const forward = embed + depth * (linears + 2 * N * N * D) + D * numClasses;
  const lastBlock = model.config.pool === 'token' ? N * 3 * D * D + 4 * D * D + 2 * D * hid + 4 * N * D : linears + 4 * N * N * D;
  const backward = D * numClasses + (depth - 1) * (linears + 4 * N * N * D) + lastBlock;
  const floor = (2 * forward - embed + 2 * backward) / forward;
  console.log(
    `multiply-adds: forward ${(forward / 1e6).toFixed(1)} M, backward ${(backward / 1e6).toFixed(1)} M; a SAR step's floor ${floor.toFixed(2)}× a forward`,
  );
}

const profile = await tf.profile(async () => {
  await sar.step(x);
  await sar.flush();
});
const totals = kernelTotals(profile);
console.log('\nkernels of one SAR step by total time (tf.profile; its own timing adds overhead):');
for (const [name, e] of totals.slice(0, 15))
  console.log(`  ${name.padEnd(24)} ${String(e.n).padStart(4)} × ${((1000 * e.ms) / e.n).toFixed(1).padStart(6)} µs = ${e.ms.toFixed(2)} ms`);
