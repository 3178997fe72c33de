// The page the browser tests drive (e2e/harness.html). It imports our src
// modules as the app does and exposes `window.wildttaHarness`, whose async
// functions the tests call through page.evaluate. Every result is plain data
// (numbers, arrays, strings) so it crosses the page boundary intact.
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendChoice, type BackendName, type BackendReport } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import { loadBackbone, loadViT } from '../src/model/load';
import { autodiffGradient, AutodiffTape } from '../src/model/backbone';
import { FlatLayout } from '../src/methods/flat';
import { readSafetensors } from '../src/model/safetensors';
import { grayAccuracy } from '../src/model/evaluate';
import { fetchLabeledImages } from '../src/data/idx';
import { entropyWithGrad, groupNorm, groupNormGrad, headsGrad, interleavePhases, softmaxEntropy } from '../src/kernels';
import { normOps } from '../src/kernels/ops/norm';
import { runKernel } from '../src/kernels/calls';
import { createAdapter, type AdapterOptions } from '../src/methods';
import { ViT } from '../src/model/vit';
import { randomViTTensors, tinyConfig } from '../src/model/random-vit';

export interface PlainTensor {
  shape: number[];
  values: number[];
}

export interface BackendInfo extends BackendReport {
  /** tf.getBackend() after the call. */
  active: string;
  /** WebGPU adapter facts when navigator.gpu exists (vendor, architecture), else null. */
  adapter: { vendor: string; architecture: string } | null;
}

export interface SmokeResult {
  backend: string;
  /** [[1, 2], [3, 4]] × [[5, 6], [7, 8]] → [19, 22, 43, 50]. */
  matMul: number[];
  /** The gradient of sum(x²) at x = [1, -2, 3] → [2, -4, 6]. */
  grad: number[];
  numTensorsBefore: number;
  numTensorsAfter: number;
}

export interface FixtureResult {
  backend: string;
  /** The fixture's `inputs` batch size actually used. */
  batch: number;
  logits: PlainTensor;
  /** Mean softmax entropy of the batch (the loss the gradients are of). */
  loss: number;
  /** Gradients of the mean entropy w.r.t. every LayerNorm weight/bias, by timm name. */
  grads: Record<string, PlainTensor>;
  numTensorsBefore: number;
  numTensorsAfter: number;
}

export interface AccuracyReport {
  backend: string;
  correct: number;
  total: number;
  accuracy: number;
  predictions: number[];
  /** Time spent classifying (model and data already loaded). */
  ms: number;
  numTensorsBefore: number;
  numTensorsAfter: number;
}

export interface CleanAccuracyOptions {
  /** Images per forward pass (default 100). */
  batch?: number;
  /** Model folder URL (default the shipped model, /models/fmnist-vit/). */
  modelUrl?: string;
  /** Folder URL of the uncompressed IDX test split (default /data/fashion-mnist/). */
  dataUrl?: string;
}

type Counted<T> = T & { numTensorsBefore: number; numTensorsAfter: number };

/** A parity fixture's model (/e2e/fixtures/<name>/) and its first `maxBatch` inputs from expected.safetensors. */
async function loadFixture(name: string, maxBatch: number): Promise<{ model: ViT; x: tf.Tensor4D; batch: number }> {
  const base = `/e2e/fixtures/${encodeURIComponent(name)}/`;
  const expected = readSafetensors(await fetchBytes(`${base}expected.safetensors`)).tensors;
  const inputs = expected.get('inputs');
  if (inputs === undefined || inputs.shape.length !== 4) throw new Error(`${base}expected.safetensors has no [B, H, W, C] inputs`);
  const [B, H, W, C] = inputs.shape as [number, number, number, number];
  const batch = Math.min(B, maxBatch);
  const model = await loadViT(base);
  return { model, x: tf.tensor4d(inputs.values.subarray(0, batch * H * W * C), [batch, H, W, C]), batch };
}

/** Runs `fn` (which must dispose everything it creates) and records the tensor count around it. */
async function counted<T extends object>(fn: () => Promise<T>): Promise<Counted<T>> {
  const numTensorsBefore = tf.memory().numTensors;
  const result = await fn();
  return { ...result, numTensorsBefore, numTensorsAfter: tf.memory().numTensors };
}

const plain = async (t: tf.Tensor): Promise<PlainTensor> => ({ shape: t.shape.slice(), values: Array.from(await t.data()) });

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not fetch ${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Switches to exactly `backend` (no fallback) and fails loudly if it cannot. */
async function use(backend: BackendName): Promise<void> {
  await initBackend(backend, { wasmPaths: WASM_PATHS });
  if (tf.getBackend() !== backend) throw new Error(`asked for ${backend}, tfjs runs on ${tf.getBackend()}`);
}

async function adapterInfo(): Promise<BackendInfo['adapter']> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<{ info?: { vendor: string; architecture: string } } | null> } }).gpu;
  if (gpu === undefined) return null;
  const adapter = await gpu.requestAdapter();
  if (adapter === null || adapter.info === undefined) return null;
  return { vendor: adapter.info.vendor, architecture: adapter.info.architecture };
}

const harness = {
  /** initBackend as the app calls it; the report, plus what tfjs and the GPU say. */
  async initBackend(choice: BackendChoice): Promise<BackendInfo> {
    const report = await initBackend(choice, { wasmPaths: WASM_PATHS });
    return { ...report, active: tf.getBackend(), adapter: await adapterInfo() };
  },

  /** A matMul and a gradient on `backend`, read back to the page. */
  async smoke(backend: BackendName): Promise<SmokeResult> {
    await use(backend);
    return counted(async () => {
      const product = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])));
      const x = tf.tensor1d([1, -2, 3]);
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.square(v)))(x);
      try {
        return { backend: tf.getBackend(), matMul: Array.from(await product.data()), grad: Array.from(await g.data()) };
      } finally {
        tf.dispose([product, x, g]);
      }
    });
  },

  /**
   * Loads /e2e/fixtures/<name>/ (model.safetensors + config.json) with loadViT
   * on `backend`, runs the fixture's `inputs` (from expected.safetensors; at
   * most `maxBatch` of them) and returns the logits and the gradients of the
   * mean entropy with respect to the model's LayerNorm variables.
   */
  async fixtureLogits(name: string, backend: BackendName, maxBatch = 4): Promise<FixtureResult> {
    await use(backend);
    return counted(async () => {
      const { model, x, batch } = await loadFixture(name, maxBatch);
      try {
        const logits = tf.tidy(() => model.logits(x));
        const names = [...model.variables.keys()];
        const vars = [...model.variables.values()];
        const { value, grads } = tf.variableGrads(() => tf.mean(softmaxEntropy(model.logits(x))) as tf.Scalar, vars);
        try {
          const out: Record<string, PlainTensor> = {};
          for (let i = 0; i < names.length; i++) {
            const g = grads[vars[i]!.name];
            if (g === undefined) throw new Error(`no gradient for ${names[i]}`);
            out[names[i]!] = await plain(g);
          }
          return { backend: tf.getBackend(), batch, logits: await plain(logits), loss: (await value.data())[0]!, grads: out };
        } finally {
          tf.dispose([logits, value, ...Object.values(grads)]);
        }
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  },

  /**
   * The same as fixtureLogits, computed by the adaptation path (the ViT's
   * forward on the kernels and its hand-written backward: the host's kernels
   * on wasm, the WGSL ones on webgpu, tfjs ops on webgl).
   */
  async fastFixture(name: string, backend: BackendName, maxBatch = 4): Promise<FixtureResult> {
    await use(backend);
    const { model, x, batch } = await loadFixture(name, maxBatch);
    const names = model.normParamNames();
    const layout = new FlatLayout(new Map(names.map((n) => [n, model.variables.get(n)!])));
    // The first call prepares the model's frozen weights for the kernels, which it keeps: count tensors from the second.
    tf.tidy(() => {
      const { logits, tape } = model.forward(x, model.param, true);
      model.gradient(tape!, logits, layout);
    });
    try {
      return await counted(async () => {
        const out = tf.tidy(() => {
          const { logits, tape } = model.forward(x, model.param, true);
          const loss = tf.mean(softmaxEntropy(logits));
          const grads = layout.split(model.gradient(tape!, tf.div(entropyWithGrad(logits).grad, batch) as tf.Tensor2D, layout));
          return { logits, loss, grads: names.map((n) => grads.get(n)!) };
        });
        try {
          const grads: Record<string, PlainTensor> = {};
          for (let i = 0; i < names.length; i++) grads[names[i]!] = await plain(out.grads[i]!);
          return { backend: tf.getBackend(), batch, logits: await plain(out.logits), loss: (await out.loss.data())[0]!, grads };
        } finally {
          tf.dispose([out.logits, out.loss, ...out.grads]);
        }
      });
    } finally {
      x.dispose();
      model.dispose();
    }
  },

  /**
   * The kernels (WGSL on webgpu, src/kernels/host on wasm and cpu)
   * against the same arithmetic in tfjs ops on this backend: the largest
   * absolute difference of each output.
   */
  async fusedKernelCheck(backend: BackendName, rows = 7, width = 12): Promise<Counted<{ backend: string; errors: Record<string, number> }>> {
    await use(backend);
    return counted(async () => {
      const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
      const logitsOf = () => tf.add(tf.mul(rnd([rows, width], 1), 3), 2) as tf.Tensor2D;
      // The entropy loss's margin: the middle of its rows' entropies, so that rows fall on both sides of it.
      const rowEntropies = tf.tidy(() => softmaxEntropy(logitsOf()));
      const sorted = Array.from(await rowEntropies.data()).sort((a, b) => a - b);
      rowEntropies.dispose();
      const margin = rows > 1 ? (sorted[(rows >> 1) - 1]! + sorted[rows >> 1]!) / 2 : sorted[0]! + 1;
      const onWebgpu = tf.getBackend() === 'webgpu';
      const diffs = tf.tidy(() => {
        const x = logitsOf();
        const gamma = rnd([width], 2);
        const beta = rnd([width], 3);
        const dy = rnd([rows, width], 4);
        const residual = rnd([rows, width], 5);
        const eps = 1e-6;
        // The kernels first, so that no buffer they are handed can already hold the reference's values.
        const [y, kStats] = runKernel('WildttaLayerNorm', { x, gamma, beta }, { eps, save: true });
        const [yOnly] = runKernel('WildttaLayerNorm', { x, gamma, beta }, { eps, save: false });
        const [dg, db, kdx] = runKernel('WildttaLayerNormGrad', { dy, x, stats: kStats!, gamma, residual }, { needInput: true });
        const cdf = tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5);
        const [da] = runKernel('WildttaGeluGrad', { dy, a: x, cdf });
        const p = tf.softmax(x);
        const [dS] = runKernel('WildttaSoftmaxBackward', { dP: dy, p });
        // Per-head gradients of 2 samples × 3 heads of width 4 over 5 tokens.
        const heads = [0, 1, 2].map((i) => rnd([6, 5, 4], 10 + i));
        const [merged] = runKernel('WildttaHeadsMerge', { dq: heads[0]!, dk: heads[1]!, dv: heads[2]! }, { batch: 2 });
        const mergedRef = tf.reshape(tf.transpose(tf.reshape(tf.stack(heads), [3, 2, 3, 5, 4]), [1, 3, 0, 2, 4]), [10, 36]);
        // Attention's batched backward on the same 2 × 3 heads, against autodiff.
        const sideBySide = (t: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(t, [2, 3, 5, 4]), [0, 2, 1, 3]), [10, 12]);
        const dOheads = rnd([10, 12], 13);
        const attnLoss = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
          tf.sum(tf.mul(sideBySide(tf.matMul(tf.softmax(tf.matMul(qq as tf.Tensor3D, kk as tf.Tensor3D, false, true)), vv as tf.Tensor3D)), dOheads));
        const attnGrads = tf.grads(attnLoss)(heads);
        const pHeads = tf.softmax(tf.matMul(heads[0]!, heads[1]!, false, true));
        // WGSL on webgpu; elsewhere tfjs's products with the backend's softmax backward and merge.
        const dqkvHeads = headsGrad(
          dOheads as tf.Tensor2D,
          { kind: 'heads', q: heads[0]! as tf.Tensor3D, k: heads[1]! as tf.Tensor3D, v: heads[2]! as tf.Tensor3D, p: pHeads as tf.Tensor3D },
          2,
        );
        // The update kernels, on a flat vector of rows·width values and on scalars.
        const theta = tf.reshape(x, [-1]);
        const g = tf.reshape(dy, [-1]);
        const buf = tf.reshape(residual, [-1]);
        const [ascended, norm] = runKernel('WildttaSamAscent', { theta, grad: g }, { rho: 0.05 });
        const sgd = (open: boolean) =>
          runKernel('WildttaSgdMomentum', { theta, grad: g, buffer: buf, gate: tf.scalar(open, 'bool') }, { lr: 0.01, momentum: 0.9 });
        const [stepped, nextBuf] = sgd(true);
        const [held, heldBuf] = sgd(false);
        const [picked] = runKernel('WildttaPick', { when: tf.scalar(false, 'bool'), a: theta, b: g });
        const average = (has: number, open: boolean) =>
          runKernel('WildttaMovingAverage', { value: theta, has: tf.scalar(has), x: g, gate: tf.scalar(open, 'bool') }, { decay: 0.9 });
        const [avgHeld, avgHeldHas] = average(1, false);
        const [avgFirst, avgFirstHas] = average(0, true);
        const [avgBlend] = average(1, true);
        const [finiteFlag] = runKernel('WildttaAllFinite', { x: tf.scalar(1), x1: g, x2: tf.scalar(2) });
        const [nanFlag] = runKernel('WildttaAllFinite', { x: tf.scalar(1), x1: tf.scalar(NaN) });
        const [packed] = runKernel('WildttaScalars', { s0: tf.scalar(true, 'bool'), s2: tf.scalar(2.5) }, { fallback: [9, 7, 9] });
        // Eight inputs: more than one WebGPU shader may bind.
        const eight = Array.from({ length: 8 }, (_, i) => tf.scalar(i + 0.5));
        const [packed8] = runKernel('WildttaScalars', Object.fromEntries(eight.map((t, i) => [`s${i}`, t])), { fallback: Array(8).fill(0) });
        const [lastNaN] = runKernel('WildttaAllFinite', Object.fromEntries([...eight.slice(0, 7), tf.scalar(NaN)].map((t, i) => [i ? `x${i}` : 'x', t])));
        const weights = tf.abs(rnd([rows], 6));
        const [, eLoss, eCount, eGrad] = runKernel('WildttaEntropyLoss', { logits: x, weights }, { margin, mean: true });
        const below = tf.cast(tf.less(softmaxEntropy(x), margin), 'float32');
        const lossOf = (z: tf.Tensor) => tf.div(tf.sum(tf.mul(softmaxEntropy(z as tf.Tensor2D), tf.mul(below, weights))), tf.maximum(tf.sum(below), 1));
        const nextRef = tf.add(tf.mul(buf, 0.9), g);
        const mean = tf.mean(x, -1, true);
        const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(tf.sub(x, mean)), -1, true), eps));
        const xhat = tf.mul(tf.sub(x, mean), rstd);
        const dxhat = tf.mul(dy, gamma);
        const dx = tf.mul(tf.sub(tf.sub(dxhat, tf.mean(dxhat, -1, true)), tf.mul(xhat, tf.mean(tf.mul(dxhat, xhat), -1, true))), rstd);
        const d = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b)));
        // WebGPU's attention forward and backward read q, k and v inside qkv (the merged layout above is qkv's).
        const read = onWebgpu ? runKernel('WildttaProbabilitiesEntropy', { logits: x }) : [];
        const qkvWay = onWebgpu
          ? [
              d(runKernel('WildttaHeadsScores', { qkv: mergedRef }, { heads: 3, tokens: 5 })[0]!, tf.matMul(heads[0]!, heads[1]!, false, true)),
              d(runKernel('WildttaHeadsMix', { p: pHeads, qkv: mergedRef })[0]!, sideBySide(tf.matMul(pHeads, heads[2]!))),
              d(
                headsGrad(dOheads as tf.Tensor2D, { kind: 'qkv', qkv: mergedRef as tf.Tensor2D, p: pHeads as tf.Tensor3D }, 2),
                tf.concat(attnGrads.map(sideBySide), 1),
              ),
              // The read's softmax and entropy, on rows of width logits.
              d(read[0]!, tf.softmax(x)),
              d(read[1]!, softmaxEntropy(x)),
            ]
          : [];
        // GroupNorm (WGSL on webgpu, norm.wat or loops on the host) against its tfjs ops: 2 images of rows × 7
        // positions, width channels in 4 groups, through the ReLU, its backward masked by it. At 197 rows (1,379
        // positions) WGSL sums each channel in chunks of 1,024 positions, the last one short.
        const gx = tf.add(tf.mul(rnd([2, rows, 7, width], 20), 2), 0.5) as tf.Tensor4D;
        const gdy = rnd([2, rows, 7, width], 21) as tf.Tensor4D;
        const gScale = tf.add(gamma, 1);
        const gn = { groups: 4, eps: 1e-5, epsTensor: tf.scalar(1e-5), relu: true };
        const gk = groupNorm(gx, gScale, beta, gn);
        const gr = normOps.groupNorm(gx, gScale, beta, gn);
        const gkGrad = groupNormGrad(gdy, gk.xhat, gk.inv, gScale, gk.y, { groups: 4, inputGrad: true });
        const grGrad = normOps.groupNormGrad(gdy, gr.xhat, gr.inv, gScale, gr.y, { groups: 4, inputGrad: true });
        // Phases woven into a [2, 5, width % 7 + 3, 3] grid at stride 2 (odd sizes: the phases differ in length), all
        // four given, then only phase 0 (the others zeros).
        const [gh, gw] = [5, (width % 7) + 3];
        const phaseShapes = [0, 1, 2, 3].map((i) => [2, Math.ceil((gh - (i >> 1)) / 2), Math.ceil((gw - (i & 1)) / 2), 3]);
        const phases = phaseShapes.map((shape, i) => rnd(shape, 30 + i) as tf.Tensor4D);
        const woven = tf.concat([interleavePhases(phases, 2, gh, gw), interleavePhases([phases[0], undefined, undefined, undefined], 2, gh, gw)]);
        const wovenRef = tf.concat([
          normOps.interleavePhases(phases, 2, gh, gw),
          normOps.interleavePhases([phases[0], undefined, undefined, undefined], 2, gh, gw),
        ]);
        return tf.stack([
          d(woven, wovenRef),
          d(y!, tf.add(tf.mul(xhat, gamma), beta)),
          d(yOnly!, y!),
          d(kStats!, tf.concat([mean, rstd], 1)),
          d(dg!, tf.sum(tf.mul(dy, xhat), 0)),
          d(db!, tf.sum(dy, 0)),
          d(kdx!, tf.add(dx, residual)),
          d(da!, tf.mul(dy, tf.add(cdf, tf.mul(tf.mul(x, tf.exp(tf.mul(tf.square(x), -0.5))), 1 / Math.sqrt(2 * Math.PI))))),
          d(dS!, tf.mul(p, tf.sub(dy, tf.sum(tf.mul(dy, p), -1, true)))),
          d(merged!, mergedRef),
          d(dqkvHeads, tf.concat(attnGrads.map(sideBySide), 1)),
          tf.div(d(norm!, tf.reshape(tf.norm(g), [1])), tf.norm(g)), // relative: a sum of up to 19k squares, in another order
          d(ascended!, tf.add(theta, tf.mul(g, tf.div(0.05, tf.add(tf.norm(g), 1e-12))))),
          d(nextBuf!, nextRef),
          d(stepped!, tf.sub(theta, tf.mul(nextRef, 0.01))),
          tf.add(d(held!, theta), d(heldBuf!, buf)),
          d(picked!, g),
          tf.add(
            tf.add(d(avgHeld!, theta), d(avgFirst!, g)),
            tf.add(d(tf.stack([avgHeldHas!, avgFirstHas!]), tf.tensor1d([1, 1])), d(avgBlend!, tf.add(tf.mul(theta, 0.9), tf.mul(g, 0.1)))),
          ),
          d(tf.concat([finiteFlag!, nanFlag!]), tf.tensor1d([1, 0])),
          d(packed!, tf.tensor1d([1, 7, 2.5])),
          d(tf.concat([packed8!, lastNaN!]), tf.tensor1d([0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 0])),
          d(eCount!, tf.reshape(tf.sum(below), [1])),
          d(eLoss!, tf.reshape(lossOf(x), [1])),
          d(eGrad!, tf.grad(lossOf)(x)),
          d(gk.y, gr.y),
          d(gk.xhat, gr.xhat),
          d(gk.inv, gr.inv),
          tf.div(d(gkGrad.dScale, grGrad.dScale), tf.add(tf.max(tf.abs(grGrad.dScale)), 1)), // relative: sums over 2·rows·7 values
          tf.div(d(gkGrad.dShift, grGrad.dShift), tf.add(tf.max(tf.abs(grGrad.dShift)), 1)),
          d(gkGrad.dx!, grGrad.dx!),
          ...qkvWay,
        ]);
      });
      const v = await diffs.data();
      diffs.dispose();
      const names = [
        'interleaved phases',
        'y',
        'y (save false)',
        'stats (mean, rstd)',
        'dgamma',
        'dbeta',
        'dx + residual',
        'GELU backward',
        'softmax backward',
        'heads merge',
        'attention backward (batched heads)',
      ]
        .concat([
          '‖g‖ (relative)',
          'SAM ascent',
          'momentum buffer',
          'SGD step',
          'closed gate',
          'pick',
          'moving average',
          'finiteness flags',
          'scalars',
          'eight scalars and flags',
          'entropy loss count',
          'entropy loss',
          'entropy loss gradient',
          'GroupNorm y',
          'GroupNorm x̂',
          'GroupNorm σ⁻¹',
          'GroupNorm dscale (relative)',
          'GroupNorm dshift (relative)',
          'GroupNorm dx',
        ])
        .concat(
          onWebgpu
            ? ['attention scores from qkv', 'attention output from qkv', 'attention backward from qkv', 'softmax of the read', 'entropy of the read']
            : [],
        );
      return { backend: tf.getBackend(), errors: Object.fromEntries(names.map((n, i) => [n, v[i]!])) };
    });
  },

  /**
   * A fixture of a convolutional family (e2e/fixtures/<folder>/<name>,
   * PyTorch's figures: 'resnet-gn' or 'convnext'): its logits and the
   * batch-mean entropy's gradient with respect to every norm scale/shift (by
   * the family's written-out backward, and by tf.grads through its
   * differentiable forward) on `backend`, as the largest errors against
   * PyTorch's, and those figures' own scale.
   */
  async familyFixture(
    folder: 'resnet-gn' | 'convnext',
    name: string,
    backend: BackendName,
  ): Promise<
    Counted<{
      backend: string;
      family: string;
      logitError: number;
      logitScale: number;
      gradError: number;
      autodiffGradError: number;
      gradScale: number;
      norms: number;
    }>
  > {
    await use(backend);
    return counted(async () => {
      const base = `/e2e/fixtures/${folder}/${encodeURIComponent(name)}/`;
      const expected = readSafetensors(await fetchBytes(`${base}expected.safetensors`)).tensors;
      const inputs = expected.get('inputs')!;
      const model = await loadBackbone(base);
      const x = tf.tensor4d(inputs.values, inputs.shape as [number, number, number, number]);
      try {
        const layout = new FlatLayout(model.variables);
        const dEntropy = (l: tf.Tensor2D) => tf.div(entropyWithGrad(l).grad, l.shape[0]) as tf.Tensor2D;
        const [logits, flat, autodiff] = tf.tidy(() => {
          const { logits: l, tape } = model.forward(x, model.param, true);
          // The same gradient by tf.grads through the family's differentiable forward.
          const viaAutodiff = autodiffGradient((im, n) => model.summaries(im, n), new AutodiffTape(x, model.param), dEntropy(l), layout);
          return [l, model.gradient(tape!, dEntropy(l), layout), viaAutodiff];
        });
        const [gotLogits, gotGrad, gotAutodiff] = await Promise.all([logits.data(), flat.data(), autodiff.data()]);
        tf.dispose([logits, flat, autodiff]);
        const worst = (a: ArrayLike<number>, b: ArrayLike<number>, offset = 0) => {
          let m = 0;
          for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[offset + i]! - b[i]!));
          return m;
        };
        const scale = (v: ArrayLike<number>) => Array.from(v).reduce((m, y) => Math.max(m, Math.abs(y)), 0);
        const wantLogits = expected.get('logits')!.values;
        let gradError = 0;
        let autodiffGradError = 0;
        let gradScale = 0;
        layout.names.forEach((n, i) => {
          const want = expected.get(`grad.${n}`)!.values;
          gradError = Math.max(gradError, worst(gotGrad, want, layout.offsets[i]!));
          autodiffGradError = Math.max(autodiffGradError, worst(gotAutodiff, want, layout.offsets[i]!));
          gradScale = Math.max(gradScale, scale(want));
        });
        return {
          backend: tf.getBackend(),
          family: model.family,
          logitError: worst(gotLogits, wantLogits),
          logitScale: scale(wantLogits),
          gradError,
          autodiffGradError,
          gradScale,
          norms: layout.names.length,
        };
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  },

  /**
   * WebGPU's SGD-momentum kernel at `count` learning rates in a row: the
   * pipelines compiled before and after (lr and momentum are uniforms, so
   * none is added) and the largest error of its steps against tfjs ops.
   */
  async sgdAcrossLearningRates(count: number): Promise<{ backend: string; pipelinesBefore: number; pipelinesAfter: number; maxError: number }> {
    await use('webgpu');
    const cache = (tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache;
    const theta = tf.randomNormal([300], 0, 1, 'float32', 1);
    const grad = tf.randomNormal([300], 0, 1, 'float32', 2);
    const buffer = tf.randomNormal([300], 0, 1, 'float32', 3);
    const gate = tf.scalar(true, 'bool');
    const errorAt = (lr: number, momentum: number) =>
      tf.tidy(() => {
        const [stepped, nextBuf] = runKernel('WildttaSgdMomentum', { theta, grad, buffer, gate }, { lr, momentum });
        const b = tf.add(tf.mul(buffer, momentum), grad);
        return tf.maximum(tf.max(tf.abs(tf.sub(stepped!, tf.sub(theta, tf.mul(b, lr))))), tf.max(tf.abs(tf.sub(nextBuf!, b))));
      });
    const first = errorAt(1e-3, 0.9);
    let maxError = (await first.data())[0]!;
    first.dispose();
    const pipelinesBefore = Object.keys(cache).length;
    for (let i = 0; i < count; i++) {
      const e = errorAt(1e-4 * (i + 2), i % 2 ? 0.9 : 0.5);
      maxError = Math.max(maxError, (await e.data())[0]!);
      e.dispose();
    }
    const pipelinesAfter = Object.keys(cache).length;
    tf.dispose([theta, grad, buffer, gate]);
    return { backend: tf.getBackend(), pipelinesBefore, pipelinesAfter, maxError };
  },

  /**
   * Top-1 accuracy of the shipped model (or `modelUrl`) on the first `n`
   * images of the shipped Fashion-MNIST test split, on `backend`.
   */
  async cleanAccuracy(n: number, backend: BackendName, opts: CleanAccuracyOptions = {}): Promise<AccuracyReport> {
    await use(backend);
    const dataUrl = opts.dataUrl ?? '/data/fashion-mnist/';
    return counted(async () => {
      const [model, data] = await Promise.all([loadViT(opts.modelUrl ?? '/models/fmnist-vit/'), fetchLabeledImages(dataUrl)]);
      try {
        if (n > data.count) throw new Error(`asked for ${n} images, the split has ${data.count}`);
        const t0 = performance.now();
        const r = await grayAccuracy(model, data.images, data.labels, {
          count: n,
          batch: opts.batch ?? 100,
          height: data.height,
          width: data.width,
        });
        const ms = performance.now() - t0;
        return { backend: tf.getBackend(), correct: r.correct, total: r.total, accuracy: r.accuracy, predictions: Array.from(r.predictions), ms };
      } finally {
        model.dispose();
      }
    });
  },

  /**
   * Runs `steps` adaptation steps of a method on a small seeded random ViT
   * (patch 7, width 16, depth 4) over seeded noise frames on `backend`, and
   * returns every step's flags, the adapted tensors at the end, and tensor
   * count / GPU bytes after `warmup` steps and at the end.
   */
  async adaptRun(
    backend: BackendName,
    o: {
      method: 'sar' | 'sar-msam' | 'tent' | 'eata' | 'deyo';
      steps: number;
      lr: number;
      warmup?: number;
      seed?: number;
      resetThreshold?: number;
      plpdThreshold?: number;
    },
  ): Promise<AdaptRunResult> {
    await use(backend);
    const cfg = tinyConfig({ depth: 4 });
    const model = new ViT(cfg, randomViTTensors(cfg, o.seed ?? 11));
    const fisherImages = o.method === 'eata' ? (tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D) : undefined;
    const adapter = await createAdapter(model, {
      method: o.method,
      lr: o.lr,
      fisherImages,
      resetThreshold: o.resetThreshold,
      plpdThreshold: o.plpdThreshold,
    } as AdapterOptions);
    fisherImages?.dispose();
    const warmup = o.warmup ?? 10;
    const steps: AdaptRunResult['steps'] = [];
    let afterWarmup = { numTensors: 0, gpuBytes: null as number | null };
    const gpuBytes = () => (tf.memory() as unknown as { numBytesInGPU?: number }).numBytesInGPU ?? null;
    try {
      for (let i = 0; i < o.steps; i++) {
        const x = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 1000 + i);
        const r = await adapter.step(x);
        x.dispose();
        const u = (await adapter.flush()) ?? r.update; // Tent reports its update with the step itself
        steps.push({
          cls: r.classes[0]!,
          entropy: r.entropies[0]!,
          reliable: r.reliable[0]!,
          updated: u?.updated ?? false,
          reset: u?.reset ?? false,
          gradNorm: u?.gradNorm ?? null,
          ema: u?.ema ?? null,
        });
        if (i + 1 === warmup) afterWarmup = { numTensors: tf.memory().numTensors, gpuBytes: gpuBytes() };
      }
      const params: Record<string, number[]> = {};
      for (const [name, p] of adapter.params) params[name] = Array.from(await p.data());
      return { backend: tf.getBackend(), steps, params, afterWarmup, atEnd: { numTensors: tf.memory().numTensors, gpuBytes: gpuBytes() } };
    } finally {
      adapter.dispose();
      model.dispose();
    }
  },

  /** tf.memory() of the active backend, for leak checks. */
  memory(): { backend: string; numTensors: number; numBytes: number } {
    const m = tf.memory();
    return { backend: tf.getBackend(), numTensors: m.numTensors, numBytes: m.numBytes };
  },
};

export interface AdaptRunResult {
  backend: string;
  steps: Array<{ cls: number; entropy: number; reliable: boolean; updated: boolean; reset: boolean; gradNorm: number | null; ema: number | null }>;
  params: Record<string, number[]>;
  afterWarmup: { numTensors: number; gpuBytes: number | null };
  atEnd: { numTensors: number; gpuBytes: number | null };
}

export type WildttaHarness = typeof harness;

declare global {
  interface Window {
    wildttaHarness?: WildttaHarness;
  }
}

window.wildttaHarness = harness;
