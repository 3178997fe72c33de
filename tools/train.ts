// Trains the shipped Fashion-MNIST LayerNorm ViT with tfjs in Node.
//
//   npm run train -- [--data DIR] [--epochs 8] [--out public/models/fmnist-vit] [--ckpt .train]
//
// Backend: tfjs-backend-wasm (XNNPACK, SIMD, one thread in Node), the fastest
// tfjs backend Node has without tfjs-node's native download (~1.6 s per batch
// of 128 for the shipped size on one core here, ~13 min per epoch).
// Augmentation is ordinary only (random crop with 2-pixel padding, horizontal
// flip): never the corruptions the benchmark tests. No label smoothing, so the
// confidences SAR's entropy margin reads stay honest.
// A checkpoint is written every few hundred steps; rerunning the same command
// resumes from it, so training can be interrupted and continued.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { expectedTensors, viTConfigJson, type ViTConfig } from '../src/model/config';
import { readSafetensors, writeSafetensors } from '../src/model/safetensors';
import { CONFIG_METADATA_KEY } from '../src/model/load';
import { ViT } from '../src/model/vit';
import { grayAccuracy } from '../src/model/evaluate';
import { FASHION_MNIST_CLASSES } from '../src/data/idx';
import { mulberry32 } from '../src/data/random';
import { DEBIAN_FMNIST_DIR, loadFashionMnist } from './fmnist-node';

const { values: args } = parseArgs({
  options: {
    data: { type: 'string', default: DEBIAN_FMNIST_DIR },
    out: { type: 'string', default: 'public/models/fmnist-vit' },
    ckpt: { type: 'string', default: '.train' },
    epochs: { type: 'string', default: '8' },
    batch: { type: 'string', default: '128' },
    lr: { type: 'string', default: '0.002' },
    'weight-decay': { type: 'string', default: '0.05' },
    'warmup-steps': { type: 'string', default: '400' },
    width: { type: 'string', default: '64' },
    depth: { type: 'string', default: '4' },
    heads: { type: 'string', default: '4' },
    patch: { type: 'string', default: '4' },
    'mlp-hidden': { type: 'string', default: '128' },
    seed: { type: 'string', default: '1' },
    'max-steps': { type: 'string' },
    'ckpt-every': { type: 'string', default: '200' },
    // A second phase, for extending a finished run: from this step on, no crop
    // augmentation and a fresh cosine from --phase2-lr down to 0 at the last step.
    'phase2-start': { type: 'string' },
    'phase2-lr': { type: 'string', default: '0.0005' },
    // The step at which phase 1's cosine reaches 0 (default: where phase 2 starts, or the last step).
    'phase1-end': { type: 'string' },
  },
});

const num = (k: keyof typeof args) => Number(args[k]);
const epochs = num('epochs');
const batch = num('batch');
const seed = num('seed');

const config: ViTConfig = {
  imageSize: 28,
  patchSize: num('patch'),
  inChannels: 1,
  width: num('width'),
  depth: num('depth'),
  heads: num('heads'),
  mlpHidden: num('mlp-hidden'),
  numClasses: 10,
  normEps: 1e-6,
  pool: 'token',
  mean: [0.5],
  std: [0.5],
  classNames: FASHION_MNIST_CLASSES,
};

function initialWeights(cfg: ViTConfig, rand: () => number): Map<string, { shape: number[]; values: Float32Array }> {
  // Box-Muller normal, truncated at 2 std like timm's trunc_normal_.
  const normal = () => {
    for (;;) {
      const z = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
      if (Math.abs(z) <= 2) return z;
    }
  };
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const [name, shape] of expectedTensors(cfg, 'norm')) {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    const isNormWeight = /norm\d?\.weight$/.test(name);
    if (isNormWeight) values.fill(1);
    else if (!name.endsWith('.bias')) {
      const std = name === 'patch_embed.proj.weight' ? 1 / Math.sqrt(n / shape[0]!) : 0.02;
      for (let i = 0; i < n; i++) values[i] = normal() * std;
    }
    out.set(name, { shape, values });
  }
  return out;
}

/** Decoupled weight decay applies to matrices only, not to biases, norms, tokens or positions. */
const decays = (name: string) => name.endsWith('.weight') && !/norm\d?\.weight$/.test(name);

interface TrainState {
  step: number;
  epoch: number;
  stepInEpoch: number;
  elapsedSeconds: number;
  history: Array<{ epoch: number; step: number; loss: number; testAccuracy: number; seconds: number }>;
  recipe: Record<string, unknown>;
}

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  const train = loadFashionMnist('train', args.data);
  const test = loadFashionMnist('t10k', args.data);
  const stepsPerEpoch = Math.floor(train.count / batch);
  const totalSteps = Math.min(epochs * stepsPerEpoch, args['max-steps'] ? Number(args['max-steps']) : Infinity);
  const recipe = {
    backend: 'wasm (tfjs 4.22, Node, 1 thread)',
    optimizer: 'AdamW, betas 0.9/0.999, eps 1e-8',
    lr: num('lr'),
    schedule:
      args['phase2-start'] === undefined
        ? `linear warmup ${num('warmup-steps')} steps, cosine to 0`
        : `linear warmup ${num('warmup-steps')} steps, cosine (reaching 0 at step ${args['phase1-end'] ?? args['phase2-start']}) until step ${args['phase2-start']}; then cosine from ${num('phase2-lr')} to 0 at the last step, without the crop`,
    command: `npm run train -- ${process.argv.slice(2).join(' ')}`.trim(),
    weightDecay: num('weight-decay'),
    batch,
    epochs,
    augmentation: `random crop (2 px zero padding)${args['phase2-start'] === undefined ? '' : ` until step ${args['phase2-start']}`}, horizontal flip p=0.5`,
    labelSmoothing: 0,
    seed,
  };

  mkdirSync(args.ckpt, { recursive: true });
  const ckptWeights = join(args.ckpt, 'weights.safetensors');
  const ckptAdam = join(args.ckpt, 'adam.safetensors');
  const ckptState = join(args.ckpt, 'state.json');
  let state: TrainState = { step: 0, epoch: 0, stepInEpoch: 0, elapsedSeconds: 0, history: [], recipe };
  let weights = initialWeights(config, mulberry32(seed));
  let adam: Map<string, { shape: number[]; values: Float32Array }> | undefined;
  if (existsSync(ckptState)) {
    state = JSON.parse(readFileSync(ckptState, 'utf8')) as TrainState;
    weights = readSafetensors(readFileSync(ckptWeights)).tensors;
    adam = readSafetensors(readFileSync(ckptAdam)).tensors;
    console.log(`resuming at step ${state.step} (epoch ${state.epoch}, ${state.elapsedSeconds.toFixed(0)} s so far)`);
  }

  const model = new ViT(config, weights, { trainable: 'all' });
  const vars = [...model.variables.entries()];
  const moments = new Map(
    vars.map(([name, v]) => [
      name,
      {
        m: tf.variable(adam ? tf.tensor(adam.get(`${name}.m`)!.values, v.shape) : tf.zerosLike(v), false),
        v: tf.variable(adam ? tf.tensor(adam.get(`${name}.v`)!.values, v.shape) : tf.zerosLike(v), false),
      },
    ]),
  );

  const saveCheckpoint = async (snapshot: TrainState) => {
    const w: Array<[string, { shape: number[]; values: Float32Array }]> = [];
    const a: Array<[string, { shape: number[]; values: Float32Array }]> = [];
    for (const [name, v] of vars) {
      w.push([name, { shape: v.shape, values: (await v.data()) as Float32Array }]);
      const mv = moments.get(name)!;
      a.push([`${name}.m`, { shape: v.shape, values: (await mv.m.data()) as Float32Array }]);
      a.push([`${name}.v`, { shape: v.shape, values: (await mv.v.data()) as Float32Array }]);
    }
    // Write then rename so an interrupted save never leaves a half checkpoint.
    writeFileSync(`${ckptWeights}.tmp`, writeSafetensors(w));
    writeFileSync(`${ckptAdam}.tmp`, writeSafetensors(a));
    writeFileSync(`${ckptState}.tmp`, JSON.stringify(snapshot, null, 1));
    renameSync(`${ckptWeights}.tmp`, ckptWeights);
    renameSync(`${ckptAdam}.tmp`, ckptAdam);
    renameSync(`${ckptState}.tmp`, ckptState);
    return w;
  };

  const phase2 = args['phase2-start'] === undefined ? Infinity : Number(args['phase2-start']);
  const lrAt = (step: number) => {
    if (step >= phase2) return num('phase2-lr') * 0.5 * (1 + Math.cos((Math.PI * (step - phase2)) / Math.max(1, totalSteps - phase2)));
    const warm = num('warmup-steps');
    // Phase 1 keeps its own schedule (ending at phase2-start) when a second phase follows.
    const end = args['phase1-end'] === undefined ? Math.min(totalSteps, phase2) : Number(args['phase1-end']);
    if (step < warm) return (num('lr') * (step + 1)) / warm;
    const t = (step - warm) / Math.max(1, end - warm);
    return num('lr') * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, t)));
  };

  const px = 28 * 28;
  const xs = new Float32Array(batch * px);
  const ys = new Int32Array(batch);
  let sessionStart = performance.now();
  let lossSum = 0;
  let lossCount = 0;
  while (state.step < totalSteps) {
    // The epoch's order depends only on (seed, epoch), so a resumed run sees the same batches.
    const order = permutation(train.count, mulberry32(seed * 1000 + state.epoch));
    const augRand = mulberry32(seed * 7919 + state.step);
    for (; state.stepInEpoch < stepsPerEpoch && state.step < totalSteps; state.stepInEpoch++, state.step++) {
      for (let b = 0; b < batch; b++) {
        const idx = order[state.stepInEpoch * batch + b]!;
        augment(train.images.subarray(idx * px, (idx + 1) * px), xs.subarray(b * px, (b + 1) * px), augRand, state.step < phase2);
        ys[b] = train.labels[idx]!;
      }
      const lr = lrAt(state.step);
      const t = state.step + 1;
      const loss = tf.tidy(() => {
        const x = tf.tensor4d(xs, [batch, 28, 28, 1]);
        const y = tf.oneHot(tf.tensor1d(ys, 'int32'), 10);
        const { value, grads } = tf.variableGrads(
          () => tf.losses.softmaxCrossEntropy(y, model.logits(x)) as tf.Scalar,
          vars.map(([, v]) => v),
        );
        for (const [name, v] of vars) {
          const g = grads[v.name]!;
          const mv = moments.get(name)!;
          mv.m.assign(tf.add(tf.mul(mv.m, 0.9), tf.mul(g, 0.1)));
          mv.v.assign(tf.add(tf.mul(mv.v, 0.999), tf.mul(tf.square(g), 0.001)));
          const mHat = tf.div(mv.m, 1 - 0.9 ** t);
          const vHat = tf.div(mv.v, 1 - 0.999 ** t);
          let update = tf.div(mHat, tf.add(tf.sqrt(vHat), 1e-8));
          if (decays(name)) update = tf.add(update, tf.mul(v, num('weight-decay')));
          v.assign(tf.sub(v, tf.mul(update, lr)));
        }
        return value;
      });
      lossSum += (await loss.data())[0]!;
      lossCount++;
      loss.dispose();
      if ((state.step + 1) % 50 === 0) {
        const now = performance.now();
        state.elapsedSeconds += (now - sessionStart) / 1000;
        sessionStart = now;
        console.log(
          `epoch ${state.epoch + 1}/${epochs} step ${state.step + 1}/${totalSteps} loss ${(lossSum / lossCount).toFixed(4)} lr ${lr.toExponential(2)} ` +
            `${state.elapsedSeconds.toFixed(0)} s, tensors ${tf.memory().numTensors}`,
        );
        lossSum = 0;
        lossCount = 0;
      }
      if ((state.step + 1) % num('ckpt-every') === 0) {
        await saveCheckpoint({ ...state, step: state.step + 1, stepInEpoch: state.stepInEpoch + 1 });
      }
    }
    if (state.stepInEpoch >= stepsPerEpoch) {
      const acc = await grayAccuracy(model, test.images, test.labels, { batch: 500 });
      state.elapsedSeconds += (performance.now() - sessionStart) / 1000;
      sessionStart = performance.now();
      state.history.push({
        epoch: state.epoch + 1,
        step: state.step,
        loss: lossSum / Math.max(1, lossCount),
        testAccuracy: acc.accuracy,
        seconds: state.elapsedSeconds,
      });
      appendFileSync(join(args.ckpt, 'log.jsonl'), `${JSON.stringify(state.history.at(-1))}\n`);
      console.log(`epoch ${state.epoch + 1} done: clean test accuracy ${(acc.accuracy * 100).toFixed(2)}%`);
      state.epoch++;
      state.stepInEpoch = 0;
      await saveCheckpoint(state);
    }
  }

  state.elapsedSeconds += (performance.now() - sessionStart) / 1000;
  const finalWeights = await saveCheckpoint(state);
  const acc = await grayAccuracy(model, test.images, test.labels, { batch: 500 });
  let parameters = 0;
  for (const [, v] of vars) parameters += v.size;
  const configJson = {
    ...viTConfigJson(config),
    architecture: `vit_fmnist_patch${config.patchSize}_w${config.width}_d${config.depth}`,
    training: {
      dataset: 'Fashion-MNIST train split (60,000 images)',
      ...recipe,
      parameters,
      steps: state.step,
      trainingSeconds: Math.round(state.elapsedSeconds),
      cleanTestAccuracy: acc.accuracy,
      history: state.history,
    },
  };
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, 'model.safetensors'), writeSafetensors(finalWeights, { [CONFIG_METADATA_KEY]: JSON.stringify(configJson) }));
  writeFileSync(join(args.out, 'config.json'), `${JSON.stringify(configJson, null, 2)}\n`);
  console.log(
    `wrote ${args.out}: ${parameters} parameters, clean test accuracy ${(acc.accuracy * 100).toFixed(2)}%, ${state.elapsedSeconds.toFixed(0)} s of training`,
  );
}

function permutation(n: number, rand: () => number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** Random crop of the image padded by 2 zero pixels (when `crop`), then a horizontal flip half the time; writes floats in [0, 1]. */
function augment(src: Uint8Array, dst: Float32Array, rand: () => number, crop: boolean): void {
  const dx = crop ? Math.floor(rand() * 5) - 2 : 0;
  const dy = crop ? Math.floor(rand() * 5) - 2 : 0;
  const flip = rand() < 0.5;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const sx0 = x + dx;
      const sy = y + dy;
      const sx = flip ? 27 - sx0 : sx0;
      dst[y * 28 + x] = sx >= 0 && sx < 28 && sy >= 0 && sy < 28 ? src[sy * 28 + sx]! / 255 : 0;
    }
  }
}

await main();
