import * as tf from '@tensorflow/tfjs-core';
import { simdKernelsFor, tfjsWasmMemory, type SimdKernels } from './simd-kernels';
import { registerGpuKernels } from './gpu-kernels';

/**
 * Fused kernels for the CPU-side backends (wasm and cpu), registered with
 * tfjs like its own.
 *
 * Why: at this model's size (50 tokens × 64 channels) a tfjs-wasm kernel
 * costs a few microseconds of bookkeeping whatever it computes, and a
 * LayerNorm backward written with tfjs ops is a dozen of them. Each kernel
 * here replaces five to twelve tfjs kernels. They also hand out the layouts
 * the following matrix products want (per-head pieces and their transposes)
 * in the same pass, where tfjs-wasm's split and transpose are slow.
 *
 * Three layers:
 * - `kernels`: plain loops over the tensors' memory (float64 arithmetic,
 *   stored as float32), and for the ones that do the most arithmetic per
 *   value a WebAssembly SIMD version (simd-kernels.wat) that runs on
 *   tfjs-wasm's own memory, 2-5× faster than the loop;
 * - `composites`: kernels made of those and of the backend's own (XNNPACK
 *   matMul, softmax, add), run on tensor infos inside one engine call, so
 *   their intermediates never become tfjs tensors. A block's attention or
 *   MLP, forward or backward, is one call;
 * - the glue that registers both for wasm and cpu.
 *
 * None of these kernels has a gradient: FastViT's backward calls them
 * directly.
 */

type Shape = number[];
type Attrs = Record<string, number | boolean | number[]>;

interface HostKernel {
  /** Input names, in the order `compute` receives them; a name ending in '?' may be absent. */
  inputs: string[];
  /** Output shapes from the input shapes (absent inputs have shape []). */
  outputs(shapes: Shape[], attrs: Attrs): Shape[];
  compute(ins: Float32Array[], outs: Float32Array[], shapes: Shape[], attrs: Attrs): void;
  /**
   * The same arithmetic with WebAssembly SIMD (simd-kernels.wat) on
   * tfjs-wasm's memory, given the tensors' byte offsets there (0 for an
   * absent one); returns false where it does not apply, and `compute` runs.
   */
  simd?(k: SimdKernels, ins: number[], outs: number[], shapes: Shape[], attrs: Attrs, scratch: number[]): boolean;
  /** Shapes of the working buffers `simd` gets (byte offsets, in `scratch`), freed once it returns. */
  scratch?(shapes: Shape[], attrs: Attrs): Shape[];
}

/** The backend calls the glue needs; both are public methods of tfjs's wasm and cpu backends. */
interface WasmLike {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  // Not declared public by tfjs-wasm, but what typedArrayFromHeap itself reads.
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined };
}
interface CpuLike {
  data: { get(id: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

export const HOST_BACKENDS: readonly string[] = ['wasm', 'cpu'];

/** Whether the current backend is one these kernels serve. */
export const onHostBackend = (): boolean => HOST_BACKENDS.includes(tf.getBackend());

const size = (s: Shape) => s.reduce((a, b) => a * b, 1);
/** Most pieces WildttaConcatColumns takes as a registered kernel, by name (3 × 16 heads); inside composites, any number. */
const MAX_PIECES = 48;
/** Most heads WildttaAttentionHeadsGrad takes (one softmax input each) as a registered kernel. */
const MAX_HEADS = 16;
/** Most scalars WildttaScalars packs. */
const MAX_SCALARS = 8;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const HALF_LOG2E = Math.LOG2E / 2;
/** 2⁻ⁿ for n = 0…63. */
const POW2_NEG = Float64Array.from({ length: 64 }, (_, n) => 2 ** -n);

/** log softmax of the row of z starting at o into logp (its length is the row's); returns the row's entropy. */
function rowLogSoftmax(z: Float32Array, o: number, logp: Float64Array): number {
  const C = logp.length;
  let max = -Infinity;
  for (let c = 0; c < C; c++) max = Math.max(max, z[o + c]!);
  let sum = 0;
  for (let c = 0; c < C; c++) sum += Math.exp(z[o + c]! - max);
  const logSum = Math.log(sum);
  let ent = 0;
  for (let c = 0; c < C; c++) {
    logp[c] = z[o + c]! - max - logSum;
    ent -= Math.exp(logp[c]!) * logp[c]!;
  }
  return ent;
}

/** Images [B, H, W, C] cut into p × p patches. */
function patchGeometry(s: Shape, p: number) {
  return { B: s[0]!, H: s[1]!, W: s[2]!, C: s[3]!, p };
}

/** WildttaColumnBlocks's geometry: x [N, C] cut into nb pieces of width w, pieces from…to−1 also transposed. */
function columnBlocks(s: Shape, { blocks, transposeFrom, transposeTo }: Attrs) {
  const nb = blocks as number;
  return { N: s[0]!, C: s[1]!, nb, from: transposeFrom as number, to: (transposeTo as number | undefined) ?? nb, w: s[1]! / nb };
}

/** qkv [N, 3D] cut into `heads` heads of width d. */
function headsGeometry(s: Shape, heads: number) {
  const C = s[1]!;
  return { N: s[0]!, C, D: C / 3, d: C / 3 / heads };
}

/** Whether attention_head_grad takes these heads: its tiles are 4 keys and 16 columns, the last moved back to fit. */
function headsGradSimd(qkvShape: Shape, heads: number): boolean {
  const { N, d } = headsGeometry(qkvShape, heads);
  return N >= 4 && d >= 16 && d % 4 === 0;
}

/**
 * Most multiply-adds per head product (N²·d) for which WildttaAttentionGrad
 * takes the SIMD kernel. On one thread it was ahead of XNNPACK's products at
 * every size measured (2.5× at 50 tokens and head width 16, level at 197 and
 * 64), but it runs on one thread where tfjs-wasm's threaded build spreads
 * XNNPACK's products over its pool. At this size a head's four products
 * are some 35 µs of arithmetic against some 25 µs of setting up its five
 * XNNPACK operators, so that a pool of four threads would about break even
 * (an estimate: the 2-core machine measured on cannot show it).
 */
const HEADS_KERNEL_MAX_WORK = 1 << 17;

/** erf(z) by Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7). */
function erf(z: number): number {
  const x = Math.abs(z);
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const r = 1 - poly * Math.exp(-x * x);
  return z < 0 ? -r : r;
}

/**
 * exp(−v²/2) to about 1e-7 relative, twice as fast as Math.exp here (GELU's
 * backward calls it for every hidden value): 2^−t with t = v²·log₂e/2 split
 * into its nearest integer n (a table) and a rest r in [−½, ½], whose 2^−r =
 * e^y, |y| ≤ 0.35, is a degree-6 Taylor polynomial (error < 1e-7).
 */
function gaussian(v: number): number {
  const t = v * v * HALF_LOG2E;
  if (t > 62) return 0; // below 2⁻⁶²; against Φ(v) in GELU's derivative, nothing
  const n = Math.round(t);
  const y = (n - t) * Math.LN2;
  const e = 1 + y * (1 + y * (0.5 + y * (1 / 6 + y * (1 / 24 + y * (1 / 120 + y / 720)))));
  return e * POW2_NEG[n]!;
}

const kernels = {
  /**
   * y = x̂·γ + β per row, x̂ = (x − mean)·rstd, rstd = 1/√(σ² + ε); unless
   * `save` is false also the row statistics for the backward: x [R, D] → y
   * [R, D], stats [R, 2] = (mean, rstd).
   */
  WildttaLayerNorm: {
    inputs: ['x', 'gamma', 'beta'],
    outputs: ([x], { save }) => (save === false ? [x!] : [x!, [x![0]!, 2]]),
    compute([x, g, b], [y, stats], [shape], { eps }) {
      const D = shape![1]!;
      const R = shape![0]!;
      for (let r = 0, o = 0; r < R; r++, o += D) {
        let mean = 0;
        for (let d = 0; d < D; d++) mean += x![o + d]!;
        mean /= D;
        let v = 0;
        for (let d = 0; d < D; d++) v += (x![o + d]! - mean) ** 2;
        const rs = 1 / Math.sqrt(v / D + (eps as number));
        if (stats) {
          stats[2 * r] = mean;
          stats[2 * r + 1] = rs;
        }
        for (let d = 0; d < D; d++) y![o + d] = (x![o + d]! - mean) * rs * g![d]! + b![d]!;
      }
    },
    simd(k, [x, g, b], [y, stats], [shape], { eps }) {
      if (shape![1]! % 4 !== 0) return false;
      k.layer_norm(x!, g!, b!, y!, stats ?? 0, shape![0]!, shape![1]!, eps as number);
      return true;
    },
  },

  /**
   * Backward of y = x̂·γ + β from the input x and its row statistics:
   * dγ = Σ_rows dy·x̂, dβ = Σ_rows dy, and (with needInput)
   * dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·γ, plus the
   * residual branch's gradient when given (the block's skip connection).
   */
  WildttaLayerNormGrad: {
    inputs: ['dy', 'x', 'stats', 'gamma', 'residual?'],
    outputs: ([dy], { needInput }) => (needInput ? [[dy![1]!], [dy![1]!], dy!] : [[dy![1]!], [dy![1]!]]),
    compute([dy, x, stats, g, res], [dg, db, dx], [shape], { needInput }) {
      const R = shape![0]!;
      const D = shape![1]!;
      const sums = new Float64Array(2 * D); // Σ dy·x̂, then Σ dy
      const xhat = new Float64Array(D);
      const withResidual = res!.length > 0;
      for (let r = 0, o = 0; r < R; r++, o += D) {
        const mean = stats![2 * r]!;
        const rs = stats![2 * r + 1]!;
        let sum = 0;
        let dot = 0;
        for (let d = 0; d < D; d++) {
          const gy = dy![o + d]!;
          const h = (x![o + d]! - mean) * rs;
          xhat[d] = h;
          sums[d] = sums[d]! + gy * h;
          sums[D + d] = sums[D + d]! + gy;
          const dh = gy * g![d]!;
          sum += dh;
          dot += dh * h;
        }
        if (!needInput) continue;
        sum /= D;
        dot /= D;
        for (let d = 0; d < D; d++) {
          const v = rs * (dy![o + d]! * g![d]! - sum - xhat[d]! * dot);
          dx![o + d] = withResidual ? v + res![o + d]! : v;
        }
      }
      dg!.set(sums.subarray(0, D));
      db!.set(sums.subarray(D));
    },
    simd(k, [dy, x, stats, g, res], [dg, db, dx], [shape]) {
      if (shape![1]! % 4 !== 0) return false;
      k.layer_norm_grad(dy!, x!, stats!, g!, res!, dg!, db!, dx ?? 0, shape![0]!, shape![1]!);
      return true;
    },
  },

  /**
   * Exact GELU y = a·Φ(a) with Φ(a) = ½(1 + erf(a/√2)) kept for the
   * backward: a → y, cdf. erf is Abramowitz & Stegun's 7.1.26 (error under
   * 1.5e-7).
   */
  WildttaGelu: {
    inputs: ['a'],
    outputs: ([a]) => [a!, a!],
    compute([a], [y, cdf]) {
      for (let i = 0; i < a!.length; i++) {
        const v = a![i]!;
        const phi = 0.5 * (1 + erf(v * Math.SQRT1_2));
        cdf![i] = phi;
        y![i] = v * phi;
      }
    },
    simd(k, [a], [y, cdf], [shape]) {
      const n = size(shape!);
      if (n % 4 !== 0) return false;
      k.gelu(a!, y!, cdf!, n);
      return true;
    },
  },

  /** da = dy·(Φ(a) + a·φ(a)), GELU's backward from its input a and Φ(a). */
  WildttaGeluGrad: {
    inputs: ['dy', 'a', 'cdf'],
    outputs: ([dy]) => [dy!],
    compute([dy, a, cdf], [da]) {
      for (let i = 0; i < a!.length; i++) {
        const v = a![i]!;
        da![i] = dy![i]! * (cdf![i]! + v * gaussian(v) * INV_SQRT_2PI);
      }
    },
    simd(k, [dy, a, cdf], [da], [shape]) {
      const n = size(shape!);
      if (n % 4 !== 0) return false;
      k.gelu_grad(dy!, a!, cdf!, da!, n);
      return true;
    },
  },

  /** Softmax backward along the last axis: dS = P ⊙ (dP − Σ dP ⊙ P), any leading shape. */
  WildttaSoftmaxBackward: {
    inputs: ['dP', 'p'],
    outputs: ([s]) => [s!],
    compute([dP, p], [dS], [s]) {
      const M = s![s!.length - 1]!;
      for (let o = 0; o < p!.length; o += M) {
        let dot = 0;
        for (let m = 0; m < M; m++) dot += dP![o + m]! * p![o + m]!;
        for (let m = 0; m < M; m++) dS![o + m] = p![o + m]! * (dP![o + m]! - dot);
      }
    },
  },

  /**
   * Per-head gradients dq, dk, dv [B·H, N, d] back into the qkv layout
   * [B·N, 3·H·d] (column t·H·d + h·d + j), which with tfjs ops is a stack
   * and a transpose.
   */
  WildttaHeadsMerge: {
    inputs: ['dq', 'dk', 'dv'],
    outputs: ([s], { batch }) => [[(batch as number) * s![1]!, (3 * s![0]! * s![2]!) / (batch as number)]],
    compute(ins, [out], [s], { batch }) {
      const B = batch as number;
      const H = s![0]! / B;
      const N = s![1]!;
      const d = s![2]!;
      const C = 3 * H * d;
      ins.forEach((src, t) => {
        for (let bh = 0; bh < B * H; bh++) {
          const b = Math.floor(bh / H);
          const h = bh - b * H;
          for (let n = 0; n < N; n++) {
            const from = (bh * N + n) * d;
            const to = (b * N + n) * C + t * H * d + h * d;
            for (let j = 0; j < d; j++) out![to + j] = src![from + j]!;
          }
        }
      });
    },
  },

  /**
   * Attention's backward through the softmax products with heads batched:
   * from dL/d(heads' outputs) dO [B·N, D] (heads side by side) and the
   * forward's q, k, v [B·H, N, d] and softmaxes p [B·H, N, N], dL/dqkv
   * [B·N, 3D] in qkv's layout. Per head dP = dO_h·vᵀ, dS = P ⊙ (dP −
   * Σ_key dP ⊙ P), dq = dS·k, dk = dSᵀ·q, dv = Pᵀ·dO_h: the five products,
   * the softmax backward and the merge of the batched path in one kernel.
   */
  WildttaHeadsGrad: {
    inputs: ['dO', 'q', 'k', 'v', 'p'],
    outputs: ([s]) => [[s![0]!, 3 * s![1]!]],
    compute([dO, q, k, v, p], [out], [sO, sq]) {
      const [R, D] = sO as [number, number];
      const [BH, N, d] = sq as [number, number, number];
      const H = BH / (R / N);
      const C = 3 * D;
      const dS = new Float64Array(N * N);
      for (let bh = 0; bh < BH; bh++) {
        const b = Math.floor(bh / H);
        const col = (bh - b * H) * d; // the head's first column in dO and in each third of dqkv
        const at = (i: number) => bh * N * d + i * d; // row i of this head's q, k or v
        const dORow = (i: number) => (b * N + i) * D + col;
        for (let i = 0; i < N; i++) {
          let dot = 0;
          for (let j = 0; j < N; j++) {
            let dp = 0;
            for (let c = 0; c < d; c++) dp += dO![dORow(i) + c]! * v![at(j) + c]!;
            dS[i * N + j] = dp;
            dot += dp * p![(bh * N + i) * N + j]!;
          }
          for (let j = 0; j < N; j++) dS[i * N + j] = p![(bh * N + i) * N + j]! * (dS[i * N + j]! - dot);
        }
        for (let n = 0; n < N; n++) {
          const o = (b * N + n) * C + col;
          for (let c = 0; c < d; c++) {
            let dq = 0;
            let dk = 0;
            let dv = 0;
            for (let m = 0; m < N; m++) {
              dq += dS[n * N + m]! * k![at(m) + c]!;
              dk += dS[m * N + n]! * q![at(m) + c]!;
              dv += p![(bh * N + m) * N + n]! * dO![dORow(m) + c]!;
            }
            out![o + c] = dq;
            out![o + D + c] = dk;
            out![o + 2 * D + c] = dv;
          }
        }
      }
    },
  },

  /**
   * Softmax, entropy and the entropy's gradient per row of logits [B, C]:
   * p [B, C], E = −Σ p·log p [B], dE/dz = −p·(log p + E) [B, C]. (tfjs's
   * logSoftmax alone is six kernels.)
   */
  WildttaSoftmaxEntropy: {
    inputs: ['logits'],
    outputs: ([s]) => [s!, [s![0]!], s!],
    compute([z], [p, e, g], [s]) {
      const B = s![0]!;
      const C = s![1]!;
      const logp = new Float64Array(C);
      for (let b = 0, o = 0; b < B; b++, o += C) {
        const ent = rowLogSoftmax(z!, o, logp);
        e![b] = ent;
        for (let c = 0; c < C; c++) {
          const pc = Math.exp(logp[c]!);
          p![o + c] = pc;
          g![o + c] = -pc * (logp[c]! + ent);
        }
      }
    },
  },

  /**
   * An entropy loss over rows of logits [B, C]: with E_b the entropy of row
   * b, the rows with E_b < margin (all rows when margin is absent), weighted
   * by `weights` [B] where given, L = Σ w_b·E_b, divided by the number of
   * those rows (at least 1) with `mean`. Outputs the entropies [B], L [1],
   * that count [1] and dL/dlogits [B, C].
   */
  WildttaEntropyLoss: {
    inputs: ['logits', 'weights?'],
    outputs: ([s]) => [[s![0]!], [1], [1], s!],
    compute([z, weights], [e, loss, count, g], [s], { margin, mean }) {
      const B = s![0]!;
      const C = s![1]!;
      const below = margin === undefined ? Infinity : (margin as number);
      // Every row's log softmax and entropy first: the weights need the count of rows below the margin.
      const logp = new Float64Array(B * C);
      const ents = new Float64Array(B);
      let n = 0;
      for (let b = 0, o = 0; b < B; b++, o += C) {
        ents[b] = rowLogSoftmax(z!, o, logp.subarray(o, o + C));
        e![b] = ents[b]!;
        if (e![b]! < below) n++;
      }
      const scale = mean ? 1 / Math.max(n, 1) : 1;
      let sum = 0;
      // As the same loss written with tfjs ops: a dropped row counts 0·E_b, so a NaN still shows.
      for (let b = 0, o = 0; b < B; b++, o += C) {
        const ent = ents[b]!;
        const w = e![b]! < below ? (weights!.length > 0 ? weights![b]! : 1) * scale : 0; // the float32 entropy, as the filters see it
        sum += w * ent;
        for (let c = 0; c < C; c++) g![o + c] = -w * Math.exp(logp[o + c]!) * (logp[o + c]! + ent);
      }
      loss![0] = sum;
      count![0] = n;
    },
  },

  /** A vector cut into consecutive pieces of the given sizes (tfjs-wasm's split copies piece by piece at 25-35 µs a call). */
  WildttaSplit: {
    inputs: ['x'],
    outputs: (_s, { sizes }) => (sizes as number[]).map((n) => [n]),
    compute([x], outs) {
      let at = 0;
      for (const out of outs) {
        out.set(x!.subarray(at, at + out.length));
        at += out.length;
      }
    },
  },

  /**
   * Column blocks of x [N, C]: `blocks` pieces [N, C/blocks] in order, then
   * the transposes [C/blocks, N] of pieces transposeFrom…transposeTo−1
   * (transposeTo defaults to blocks; none when transposeFrom = blocks).
   * Splits qkv into per-head q, k, v (and kᵀ or vᵀ) in one pass, where
   * tfjs-wasm's split costs 35-75 µs.
   */
  WildttaColumnBlocks: {
    inputs: ['x'],
    outputs: ([s], attrs) => {
      const { N, nb, from, to, w } = columnBlocks(s!, attrs);
      const out: Shape[] = [];
      for (let i = 0; i < nb; i++) out.push([N, w]);
      for (let i = from; i < to; i++) out.push([w, N]);
      return out;
    },
    compute([x], outs, [s], attrs) {
      const { N, C, nb, from, to, w } = columnBlocks(s!, attrs);
      for (let i = 0; i < nb; i++) {
        const piece = outs[i]!;
        const t = i >= from && i < to ? outs[nb + i - from]! : undefined;
        for (let n = 0; n < N; n++) {
          const row = n * C + i * w;
          for (let j = 0; j < w; j++) {
            const v = x![row + j]!;
            piece[n * w + j] = v;
            if (t) t[j * N + n] = v;
          }
        }
      }
    },
    simd(k, [x], outs, [s], attrs) {
      const { N, C, nb, from, to, w } = columnBlocks(s!, attrs);
      for (let i = 0; i < nb; i++) {
        k.copy_block(x! + 4 * i * w, C, outs[i]!, w, N, w);
        if (i >= from && i < to) k.transpose_block(x! + 4 * i * w, C, outs[nb + i - from]!, N, w);
      }
      return true;
    },
  },

  /**
   * Softmax backward of one head: from P and dP [N, N] (query, key), gives
   * dS = P ⊙ (dP − Σ_key dP ⊙ P), its transpose, and Pᵀ: the left operands of
   * dq = dS·k, dk = dSᵀ·q and dv = Pᵀ·dO.
   */
  WildttaSoftmaxGrad: {
    inputs: ['dP', 'p'],
    outputs: ([s]) => [s!, s!, s!],
    compute([dP, p], [dS, dST, pT], [s]) {
      const N = s![0]!;
      const M = s![1]!;
      for (let n = 0; n < N; n++) {
        const o = n * M;
        let dot = 0;
        for (let m = 0; m < M; m++) dot += dP![o + m]! * p![o + m]!;
        for (let m = 0; m < M; m++) {
          const pv = p![o + m]!;
          const v = pv * (dP![o + m]! - dot);
          dS![o + m] = v;
          dST![m * N + n] = v;
          pT![m * N + n] = pv;
        }
      }
    },
    simd(k, [dP, p], [dS, dST, pT], [s]) {
      k.softmax_grad(dP!, p!, dS!, dST!, pT!, s![0]!, s![1]!);
      return true;
    },
  },

  /**
   * Attention's backward at batch 1 through the softmax products of every
   * head: from dO [N, D] (dL/d(heads' outputs), side by side), qkv [N, 3D] (q
   * pre-scaled) and each head's softmax p{h} [N, N], dL/dqkv [N, 3D]. Per
   * head dP = dO_h·v_hᵀ, dS = P ⊙ (dP − Σ_key dP ⊙ P), dq_h = dS·k_h,
   * dk_h = dSᵀ·q_h, dv_h = Pᵀ·dO_h. One pass per head over operands read in
   * place, where the five XNNPACK products it replaces spend more on setting
   * up than on arithmetic at this model's size.
   */
  WildttaAttentionHeadsGrad: {
    inputs: ['dO', 'qkv', ...Array.from({ length: MAX_HEADS }, (_, h) => `p${h}?`)],
    outputs: ([, s]) => [s!],
    scratch: ([, s]) => [[s![0]! + 1, s![0]!]], // dS [N, N] and one dP row
    compute([dO, qkv, ...p], [out], [, s], { heads }) {
      const { N, C, D, d } = headsGeometry(s!, heads as number);
      const dP = new Float64Array(N);
      const dq = new Float64Array(d);
      const dkv = new Float64Array(2 * N * d); // dk, then dv, summed over the queries
      for (let h = 0; h < (heads as number); h++) {
        const P = p[h]!;
        const qo = h * d;
        const ko = D + qo;
        const vo = 2 * D + qo;
        dkv.fill(0);
        // Query by query: its dS row gives its dq and adds its terms to every key's dk and dv.
        for (let i = 0; i < N; i++) {
          const oi = i * D + qo;
          const qi = i * C + qo;
          const pi = i * N;
          let dot = 0;
          for (let j = 0; j < N; j++) {
            const vj = j * C + vo;
            let dp = 0;
            for (let c = 0; c < d; c++) dp += dO![oi + c]! * qkv![vj + c]!;
            dP[j] = dp;
            dot += dp * P[pi + j]!;
          }
          dq.fill(0);
          for (let j = 0; j < N; j++) {
            const pv = P[pi + j]!;
            const g = pv * (dP[j]! - dot);
            const kj = j * C + ko;
            const dk = j * d;
            const dv = (N + j) * d;
            for (let c = 0; c < d; c++) {
              dq[c] = dq[c]! + g * qkv![kj + c]!;
              dkv[dk + c] = dkv[dk + c]! + g * qkv![qi + c]!;
              dkv[dv + c] = dkv[dv + c]! + pv * dO![oi + c]!;
            }
          }
          for (let c = 0; c < d; c++) out![qi + c] = dq[c]!;
        }
        for (let j = 0; j < N; j++) {
          for (let c = 0; c < d; c++) {
            out![j * C + ko + c] = dkv[j * d + c]!;
            out![j * C + vo + c] = dkv[(N + j) * d + c]!;
          }
        }
      }
    },
    simd(k, [dO, qkv, ...p], [out], [, s], { heads }, [scratch]) {
      if (!headsGradSimd(s!, heads as number)) return false;
      const { N, D, d } = headsGeometry(s!, heads as number);
      for (let h = 0; h < (heads as number); h++) k.attention_head_grad(dO!, qkv!, p[h]!, scratch!, out!, N, D, h * d, d);
      return true;
    },
  },

  /**
   * Matrices [R, Cᵢ] side by side, [R, ΣCᵢ]: the per-head pieces back into
   * one matrix (tfjs-wasm's concat copies row by row in JavaScript, 600
   * small copies for 12 pieces of 50 rows).
   */
  WildttaConcatColumns: {
    inputs: Array.from({ length: MAX_PIECES }, (_, i) => `x${i}?`),
    outputs: (shapes) => [[shapes[0]![0]!, shapes.reduce((sum, s) => sum + (s[1] ?? 0), 0)]],
    compute(ins, [out], shapes) {
      const R = shapes[0]![0]!;
      const C = out!.length / R;
      let col = 0;
      for (let i = 0; i < ins.length && shapes[i]!.length > 0; i++) {
        const x = ins[i]!;
        const w = shapes[i]![1]!;
        for (let r = 0; r < R; r++) {
          const from = r * w;
          const to = r * C + col;
          for (let j = 0; j < w; j++) out![to + j] = x[from + j]!;
        }
        col += w;
      }
    },
    simd(k, ins, [out], shapes) {
      const R = shapes[0]![0]!;
      const C = shapes.reduce((sum, s) => sum + (s[1] ?? 0), 0);
      let col = 0;
      for (let i = 0; i < ins.length && shapes[i]!.length > 0; i++) {
        const w = shapes[i]![1]!;
        k.copy_block(ins[i]!, w, out! + 4 * col, C, R, w);
        col += w;
      }
      return true;
    },
  },

  /**
   * The image patches of images [B, H, W, C] as rows [B·(H/p)·(W/p), p·p·C],
   * each ordered (row, column, channel) like FastViT's patch kernel.
   */
  WildttaPatches: {
    inputs: ['images'],
    outputs: ([s], { patch }) => {
      const p = patch as number;
      return [[(s![0]! * s![1]! * s![2]!) / (p * p), p * p * s![3]!]];
    },
    compute([x], [out], [s], { patch }) {
      const { B, H, W, C, p } = patchGeometry(s!, patch as number);
      const span = p * C;
      let to = 0;
      for (let b = 0; b < B; b++)
        for (let gy = 0; gy < H; gy += p)
          for (let gx = 0; gx < W; gx += p)
            for (let r = 0; r < p; r++, to += span) {
              const from = ((b * H + gy + r) * W + gx) * C;
              for (let j = 0; j < span; j++) out![to + j] = x![from + j]!;
            }
    },
    simd(k, [x], [out], [s], { patch }) {
      const { B, H, W, C, p } = patchGeometry(s!, patch as number);
      let to = out!;
      for (let b = 0; b < B; b++)
        for (let gy = 0; gy < H; gy += p)
          for (let gx = 0; gx < W; gx += p, to += 4 * p * p * C) k.copy_block(x! + 4 * ((b * H + gy) * W + gx) * C, W * C, to, p * C, p, p * C);
      return true;
    },
  },

  /**
   * The tokens entering block 0: per image the class token (clsPos [1, 1, D])
   * then its patch embeddings emb [B·(N−1), D] plus patchPos [N−1, D] (the
   * position embeddings with the patch bias folded in): [B·N, D].
   */
  WildttaTokens: {
    inputs: ['emb', 'patchPos', 'clsPos'],
    outputs: ([e, pos]) => [[e![0]! + e![0]! / pos![0]!, e![1]!]],
    compute([emb, pos, cls], [out], [e, s]) {
      const D = e![1]!;
      const tokens = s![0]! * D;
      for (let from = 0, to = 0; from < emb!.length; from += tokens) {
        out!.set(cls!, to);
        to += D;
        for (let i = 0; i < tokens; i++) out![to + i] = emb![from + i]! + pos![i]!;
        to += tokens;
      }
    },
  },

  // The update arithmetic of methods/ on the flat vector of adapted values
  // (methods/flat.ts): each replaces four to thirteen tfjs kernels, most of
  // them on scalars, where a kernel's bookkeeping is all its cost.

  /** SAM's ascent θ + ρ·g/(‖g‖₂ + 1e-12) on flat vectors [P], and ‖g‖₂ [1]. */
  WildttaSamAscent: {
    inputs: ['theta', 'grad'],
    outputs: ([s]) => [s!, [1]],
    compute([theta, g], [out, norm], _s, { rho }) {
      let squares = 0;
      for (let i = 0; i < g!.length; i++) squares += g![i]! * g![i]!;
      const n = Math.fround(Math.sqrt(squares));
      const scale = (rho as number) / (n + 1e-12);
      for (let i = 0; i < g!.length; i++) out![i] = theta![i]! + g![i]! * scale;
      norm![0] = n;
    },
  },

  /**
   * SGD with momentum on flat vectors [P] where the scalar gate holds
   * (buf ← μ·buf + g, θ ← θ − lr·buf), θ and buf unchanged where it does not:
   * outputs θ and buf.
   */
  WildttaSgdMomentum: {
    inputs: ['theta', 'grad', 'buffer', 'gate'],
    outputs: ([s]) => [s!, s!],
    compute([theta, g, buf, gate], [outTheta, outBuf], _s, { lr, momentum }) {
      if (!gate![0]) {
        outTheta!.set(theta!);
        outBuf!.set(buf!);
        return;
      }
      for (let i = 0; i < g!.length; i++) {
        const b = Math.fround((momentum as number) * buf![i]! + g![i]!);
        outBuf![i] = b;
        outTheta![i] = theta![i]! - (lr as number) * b;
      }
    },
  },

  /**
   * A gated moving average: where the scalar gate holds, m ← x if `has` is
   * 0, else decay·m + (1 − decay)·x, and has ← 1; elsewhere both unchanged.
   * Outputs m (x's shape) and has [].
   */
  WildttaMovingAverage: {
    inputs: ['value', 'has', 'x', 'gate'],
    outputs: ([s, h]) => [s!, h!],
    compute([m, has, x, gate], [outM, outHas], _s, { decay }) {
      if (!gate![0]) {
        outM!.set(m!);
        outHas![0] = has![0]!;
        return;
      }
      const d = decay as number;
      for (let i = 0; i < m!.length; i++) outM![i] = has![0] ? d * m![i]! + (1 - d) * x![i]! : x![i]!;
      outHas![0] = 1;
    },
  },

  /**
   * Input alignment (methods/input-align.ts) in one pass per image: x [B, …]
   * with each image's pixel mean m and standard deviation s (population)
   * brought into [meanLo, meanHi] and [stdLo, stdHi]: (x − m)·s′/s + m′,
   * clipped to [0, 1].
   */
  WildttaInputAlign: {
    inputs: ['x'],
    outputs: ([x]) => [x!],
    compute([x], [out], [shape], { meanLo, meanHi, stdLo, stdHi }) {
      const B = shape![0]!;
      const n = x!.length / B;
      for (let b = 0; b < B; b++) {
        const at = b * n;
        let sum = 0;
        for (let i = 0; i < n; i++) sum += x![at + i]!;
        const m = sum / n;
        let sq = 0;
        for (let i = 0; i < n; i++) sq += (x![at + i]! - m) ** 2;
        const sd = Math.sqrt(sq / n);
        const mt = Math.min(Math.max(m, meanLo as number), meanHi as number);
        const gain = sd > 1e-6 ? Math.min(Math.max(sd, stdLo as number), stdHi as number) / sd : 1;
        for (let i = 0; i < n; i++) out![at + i] = Math.min(1, Math.max(0, (x![at + i]! - m) * gain + mt));
      }
    },
  },

  /**
   * Feature re-centering's update (methods/recenter.ts) in one pass: each
   * row of features [B, D] folded into the running mean of the class its
   * (re-centred) logits [B, C] predict, means [C, D] and weights [C] moved
   * by `decay` for the classes present; then the logit shift W·(μ_src − μ̂)
   * [1, C] from head [C, D], μ_src = mean of srcMeans [C, D], and the
   * feature shift μ̂ − μ_src [1, D]. A non-finite
   * feature anywhere changes nothing.
   */
  WildttaRecenter: {
    inputs: ['features', 'logits', 'means', 'weights', 'srcMeans', 'head'],
    outputs: ([, , means, weights, , head]) => [means!, weights!, [1, head![0]!], [1, head![1]!]],
    compute([f, z, means, weights, src, head], [outMeans, outWeights, offset, shift], [fs, zs], { decay, biasCorrected }) {
      const [B, D] = [fs![0]!, fs![1]!];
      const C = zs![1]!;
      const d = decay as number;
      outMeans!.set(means!);
      outWeights!.set(weights!);
      let finite = true;
      for (let i = 0; i < f!.length && finite; i++) finite = Number.isFinite(f![i]!);
      if (finite) {
        const counts = new Float64Array(C);
        const sums = new Float64Array(C * D);
        for (let b = 0; b < B; b++) {
          let best = 0;
          for (let c = 1; c < C; c++) if (z![b * C + c]! > z![b * C + best]!) best = c;
          counts[best]!++;
          for (let j = 0; j < D; j++) sums[best * D + j]! += f![b * D + j]!;
        }
        for (let c = 0; c < C; c++) {
          if (counts[c] === 0) continue;
          for (let j = 0; j < D; j++) outMeans![c * D + j] = d * means![c * D + j]! + (1 - d) * (sums[c * D + j]! / counts[c]!);
          outWeights![c] = d * weights![c]! + (1 - d);
        }
      }
      // μ_src − μ̂, with μ̂ the plain or the bias-corrected class average.
      let total = 0;
      for (let c = 0; c < C; c++) total += outWeights![c]!;
      const delta = new Float64Array(D);
      for (let j = 0; j < D; j++) {
        let moved = 0;
        for (let c = 0; c < C; c++) moved += outMeans![c * D + j]! - src![c * D + j]!;
        delta[j] = -(biasCorrected ? moved / Math.max(total, 1e-6) : moved / C);
        shift![j] = -delta[j]!;
      }
      for (let c = 0; c < C; c++) {
        let v = 0;
        for (let j = 0; j < D; j++) v += head![c * D + j]! * delta[j]!;
        offset![c] = v;
      }
    },
  },

  /** a where the scalar `when` holds (is non-zero), else b (a and b of one shape). */
  WildttaPick: {
    inputs: ['when', 'a', 'b'],
    outputs: ([, s]) => [s!],
    compute([when, a, b], [out]) {
      out!.set(when![0] ? a! : b!);
    },
  },

  /**
   * Scalars s0… (any dtype, booleans as 0/1) as one float vector, an absent
   * one as its entry in `fallback`, whose length is the output's.
   */
  WildttaScalars: {
    inputs: Array.from({ length: MAX_SCALARS }, (_, i) => `s${i}?`),
    outputs: (_s, { fallback }) => [[(fallback as number[]).length]],
    compute(ins, [out], _s, { fallback }) {
      (fallback as number[]).forEach((f, i) => (out![i] = ins[i]!.length === 0 ? f : ins[i]![0]!));
    },
  },

  /** [1] if every value of x (and of x1… where given) is finite, else [0] (as tfjs's isFinite, all and a cast give it, in one pass). */
  WildttaAllFinite: {
    inputs: ['x', ...Array.from({ length: MAX_SCALARS - 1 }, (_, i) => `x${i + 1}?`)],
    outputs: () => [[1]],
    compute(ins, [out]) {
      let ok = 1;
      for (const x of ins) {
        for (let i = 0; i < x.length && ok; i++) if (!Number.isFinite(x[i]!)) ok = 0;
      }
      out![0] = ok;
    },
  },

  /** Rows 0, N, 2N, … of x [R, C] (each image's class token): [R/N, C]. */
  WildttaEveryNthRow: {
    inputs: ['x'],
    outputs: ([s], { every }) => [[s![0]! / (every as number), s![1]!]],
    compute([x], [y], [s], { every }) {
      const C = s![1]!;
      const step = (every as number) * C;
      for (let from = 0, to = 0; to < y!.length; from += step, to += C) y!.set(x!.subarray(from, from + C), to);
    },
    simd(k, [x], [y], [s], { every }) {
      const C = s![1]!;
      k.copy_block(x!, (every as number) * C, y!, C, s![0]! / (every as number), C);
      return true;
    },
  },

  /**
   * Attention's backward at batch 1 when dL/do [1, D] is nonzero at the class
   * token (row 0) only, from qkv [N, 3D] (q pre-scaled): dL/dqkv [N, 3D]. Per
   * head, P₀ = softmax(q₀·kᵀ) is recomputed (N·d multiply-adds), dS₀ =
   * P₀ ⊙ (dP₀ − Σ dP₀ ⊙ P₀) with dP₀ = dO·vᵀ; then dq₀ = dS₀·k, and dk, dv are
   * the outer products dS₀ᵀ·q₀ and P₀ᵀ·dO. Other rows' dq are zero.
   */
  WildttaClassAttentionGrad: {
    inputs: ['dO', 'qkv'],
    outputs: ([, s]) => [s!],
    compute([dO, qkv], [out], [, s], { heads }) {
      const N = s![0]!;
      const C = s![1]!;
      const D = C / 3;
      const hd = D / (heads as number);
      const p = new Float64Array(N);
      const dS = new Float64Array(N);
      out!.fill(0); // dq stays zero below the class token
      for (let h = 0; h < (heads as number); h++) {
        const qo = h * hd;
        const ko = D + qo;
        const vo = 2 * D + qo;
        let max = -Infinity;
        for (let j = 0, row = 0; j < N; j++, row += C) {
          let dot = 0;
          for (let c = 0; c < hd; c++) dot += qkv![qo + c]! * qkv![row + ko + c]!;
          p[j] = dot;
          if (dot > max) max = dot;
        }
        let sum = 0;
        for (let j = 0; j < N; j++) sum += p[j] = Math.exp(p[j]! - max);
        let pdp = 0;
        for (let j = 0, row = 0; j < N; j++, row += C) {
          p[j] = p[j]! / sum;
          let dp = 0;
          for (let c = 0; c < hd; c++) dp += dO![qo + c]! * qkv![row + vo + c]!;
          dS[j] = dp;
          pdp += p[j]! * dp;
        }
        for (let j = 0, row = 0; j < N; j++, row += C) {
          const g = p[j]! * (dS[j]! - pdp);
          const pj = p[j]!;
          for (let c = 0; c < hd; c++) {
            out![qo + c] = out![qo + c]! + g * qkv![row + ko + c]!;
            out![row + ko + c] = g * qkv![qo + c]!;
            out![row + vo + c] = pj * dO![qo + c]!;
          }
        }
      }
    },
  },
} satisfies Record<string, HostKernel>;

export type HostKernelName = keyof typeof kernels | keyof typeof composites;

/** A kernel's inputs in its order (undefined where an optional one is absent) and their shapes. */
function inputGetter(k: HostKernel): (inputs: tf.NamedTensorInfoMap) => { infos: Array<tf.TensorInfo | undefined>; shapes: Shape[] } {
  const names = k.inputs.map((n) => n.replace('?', ''));
  return (inputs) => {
    const infos = names.map((n) => (inputs as Record<string, tf.TensorInfo | undefined>)[n]);
    return { infos, shapes: infos.map((i) => i?.shape ?? NO_SHAPE) };
  };
}

// Shared stand-ins for absent optional inputs (WildttaConcatColumns has 48 of them).
const NO_SHAPE: Shape = [];
const NO_VALUES = new Float32Array(0);

let simdEnabled = true;

/** Whether the wasm backend may use the SIMD kernels where they exist (default yes; tests compare both). */
export function useSimdKernels(enabled: boolean): void {
  simdEnabled = enabled;
}

/** The backend a host kernel runs on, with what the glue needs of it. */
interface Host {
  backend: tf.KernelBackend;
  /** Present on wasm when the SIMD module loaded (runOnHost also asks whether it is enabled). */
  simd: SimdKernels | null;
  make(shape: Shape): tf.TensorInfo;
  values(info: tf.TensorInfo): Float32Array;
  offset(info: tf.TensorInfo): number;
  /** The backend's own 2-D product a·b, as a tensor info (tfjs-wasm: XNNPACK). */
  matMul(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo;
  /** x·W + b for x [R, K], W as [1, K, out] (FastViT's kept layout), b [out]: the backend's fused product. */
  linear(x: tf.TensorInfo, w: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo;
  /** Any of the backend's own kernels with one output, on tensor infos. */
  kernel(name: string, inputs: Record<string, tf.TensorInfo>, attrs?: Record<string, unknown>): tf.TensorInfo;
}

const PLAIN_PRODUCT = { transposeA: false, transposeB: false };

/** The attributes of tfjs's _FusedMatMul for x·W + b with no activation (FastViT calls the kernel directly too). */
export const FUSED_LINEAR = { transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0 } as unknown as tf.NamedAttrMap;

// One Host per backend instance: every kernel call reads it, so its kernel lookups and SIMD module are resolved once.
const hosts = new WeakMap<tf.KernelBackend, Host>();

function hostOf(backend: tf.KernelBackend, backendName: string): Host {
  let host = hosts.get(backend);
  if (!host) {
    host = makeHost(backend, backendName);
    hosts.set(backend, host);
  }
  return host;
}

function makeHost(backend: tf.KernelBackend, backendName: string): Host {
  const funcs = new Map<string, tf.KernelFunc>();
  const kernel = (name: string, inputs: Record<string, tf.TensorInfo>, attrs: Record<string, unknown> = {}) => {
    let func = funcs.get(name);
    if (!func) {
      func = tf.getKernel(name, backendName)!.kernelFunc;
      funcs.set(name, func);
    }
    return func({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  };
  const matMul = (a: tf.TensorInfo, b: tf.TensorInfo) => kernel('BatchMatMul', { a, b }, PLAIN_PRODUCT);
  const linear = (x: tf.TensorInfo, w: tf.TensorInfo, bias: tf.TensorInfo) => {
    const [R, K] = x.shape as [number, number];
    const out = kernel('_FusedMatMul', { a: { ...x, shape: [1, R, K] }, b: w, bias }, FUSED_LINEAR);
    return { ...out, shape: [R, w.shape[2]!] };
  };
  const wasm = backend as unknown as WasmLike;
  if (typeof wasm.typedArrayFromHeap === 'function') {
    return {
      backend,
      matMul,
      linear,
      kernel,
      simd: simdKernelsFor(tfjsWasmMemory(backend)),
      make: (shape) => wasm.makeOutput(shape, 'float32'),
      values: (info) => wasm.typedArrayFromHeap(info),
      offset: (info) => wasm.dataIdMap.get(info.dataId)!.memoryOffset,
    };
  }
  const cpu = backend as unknown as CpuLike;
  return {
    backend,
    matMul,
    linear,
    kernel,
    simd: null,
    make: (shape) => cpu.makeTensorInfo(shape, 'float32', new Float32Array(size(shape))),
    values: (info) => cpu.data.get(info.dataId).values as Float32Array,
    offset: () => 0,
  };
}

/** One host kernel on tensor infos: its SIMD version where there is one and it applies, else its JavaScript. */
function runOnHost(k: HostKernel, host: Host, infos: Array<tf.TensorInfo | undefined>, shapes: Shape[], attrs: Attrs): tf.TensorInfo[] {
  const outs = k.outputs(shapes, attrs).map((s) => host.make(s));
  const at = (i: tf.TensorInfo | undefined) => (i ? host.offset(i) : 0);
  if (simdEnabled && host.simd && k.simd) {
    const scratch = k.scratch?.(shapes, attrs).map((s) => host.make(s)) ?? [];
    try {
      if (k.simd(host.simd, infos.map(at), outs.map(at), shapes, attrs, scratch.map(at))) return outs;
    } finally {
      for (const t of scratch) host.backend.disposeData(t.dataId);
    }
  }
  // Views only after every allocation: a malloc may grow the wasm heap and detach older views.
  const ins = infos.map((i) => (i ? host.values(i) : NO_VALUES));
  k.compute(
    ins,
    outs.map((o) => host.values(o)),
    shapes,
    attrs,
  );
  return outs;
}

function hostKernel(k: HostKernel, backendName: string): tf.KernelFunc {
  const getInputs = inputGetter(k);
  return ({ inputs, backend, attrs }) => {
    const { infos, shapes } = getInputs(inputs);
    return runOnHost(k, hostOf(backend as tf.KernelBackend, backendName), infos, shapes, attrs as Attrs);
  };
}

/** A host kernel on tensor infos inside a composite (shapes taken from the infos; undefined for an absent optional input). */
function call(k: HostKernel, host: Host, infos: Array<tf.TensorInfo | undefined>, attrs: Attrs = {}): tf.TensorInfo[] {
  return runOnHost(
    k,
    host,
    infos,
    infos.map((i) => i?.shape ?? NO_SHAPE),
    attrs,
  );
}

/** What a composite allocates, passed through `made` so that the glue frees all of it but the outputs. */
type Made = <T extends tf.TensorInfo | tf.TensorInfo[]>(t: T) => T;
type Composite = (host: Host, inputs: Record<string, tf.TensorInfo>, attrs: Attrs, made: Made) => tf.TensorInfo[];

/**
 * WildttaAttentionHeadsGrad with the backend's 2-D products per head (dP =
 * dO_h·v_hᵀ, the softmax backward, dS·k, dSᵀ·q, Pᵀ·dO_h): its pieces dq
 * for every head, then dk, then dv, to be put side by side.
 */
function headsGradProducts(host: Host, dO: tf.TensorInfo, qkv: tf.TensorInfo, p: tf.TensorInfo[], made: Made): tf.TensorInfo[] {
  const H = p.length;
  const parts = made(call(kernels.WildttaColumnBlocks, host, [qkv], { blocks: 3 * H, transposeFrom: 2 * H }));
  const dOh = made(call(kernels.WildttaColumnBlocks, host, [dO], { blocks: H, transposeFrom: H }));
  const pieces: tf.TensorInfo[][] = [[], [], []];
  for (let h = 0; h < H; h++) {
    const dP = made(host.matMul(dOh[h]!, parts[3 * H + h]!));
    const [dS, dST, pT] = made(call(kernels.WildttaSoftmaxGrad, host, [dP, p[h]!]));
    pieces[0]!.push(made(host.matMul(dS!, parts[H + h]!)));
    pieces[1]!.push(made(host.matMul(dST!, parts[h]!)));
    pieces[2]!.push(made(host.matMul(pT!, dOh[h]!)));
  }
  return pieces.flat();
}

/**
 * Kernels made of other kernels, run on tensor infos inside one engine call:
 * their intermediates never become tfjs tensors, whose bookkeeping costs
 * about as much as the arithmetic at this model's size. Everything a
 * composite allocates goes through `made`; the glue frees what it does not
 * return, also when a step throws.
 */
const composites = {
  /**
   * Patch embedding with the class token and positions, from images [B, H,
   * W, C] in [0, 1], FastViT's patch kernel [p·p·C, D] (input normalization
   * folded in), patchPos [N−1, D] and clsPos [1, 1, D]: [B·N, D].
   */
  WildttaEmbed(host, { images, kernel, patchPos, clsPos }, { patch }, made) {
    const [patches] = made(call(kernels.WildttaPatches, host, [images!], { patch: patch as number }));
    const emb = made(host.matMul(patches!, kernel!));
    return made(call(kernels.WildttaTokens, host, [emb, patchPos!, clsPos!]));
  },

  /**
   * x1 = x + (attention(n·W_qkv + b_qkv))·W_o + b_o at batch size 1, from the
   * block input x [N, D], its norm n, wqkv [1, D, 3D] (q part pre-scaled),
   * bqkv, wo [1, D, D], bo; attrs heads and save. Per head
   * o_h = softmax(q_h·k_hᵀ)·v_h, the products plain 2-D ones. Outputs x1,
   * and with save qkv [N, 3D] and per head p{h} [N, N] (what
   * WildttaAttentionGrad takes).
   */
  WildttaAttention(host, { x, n, wqkv, bqkv, wo, bo }, { heads, save }, made) {
    const H = heads as number;
    const qkv = made(host.linear(n!, wqkv!, bqkv!));
    const parts = made(call(kernels.WildttaColumnBlocks, host, [qkv], { blocks: 3 * H, transposeFrom: H, transposeTo: 2 * H }));
    const [q, , v, kT] = [0, 1, 2, 3].map((i) => parts.slice(i * H, (i + 1) * H)) as tf.TensorInfo[][];
    const p: tf.TensorInfo[] = [];
    const o: tf.TensorInfo[] = [];
    for (let h = 0; h < H; h++) {
      const scores = made(host.matMul(q![h]!, kT![h]!));
      p.push(made(host.kernel('Softmax', { logits: scores }, { dim: 1 }))); // the kernels take the axis as is (tf.softmax resolves -1 first)
      o.push(made(host.matMul(p[h]!, v![h]!)));
    }
    const [merged] = made(call(kernels.WildttaConcatColumns, host, o));
    const x1 = made(host.kernel('Add', { a: x!, b: made(host.linear(merged!, wo!, bo!)) }));
    return save ? [x1, qkv, ...p] : [x1];
  },

  /**
   * x2 = x + GELU(n·W₁ + b₁)·W₂ + b₂ from x [R, D], its norm n, w1 [1, D,
   * hidden], b1, w2 [1, hidden, D], b2; with save also GELU's input a and
   * Φ(a) [R, hidden] for the backward.
   */
  WildttaMlp(host, { x, n, w1, b1, w2, b2 }, { save }, made) {
    const a = made(host.linear(n!, w1!, b1!));
    const [g, cdf] = made(call(kernels.WildttaGelu, host, [a]));
    const x2 = made(host.kernel('Add', { a: x!, b: made(host.linear(g!, w2!, b2!)) }));
    return save ? [x2, a, cdf!] : [x2];
  },

  /**
   * dL/d(fc1's input) = (GELU'(a) ⊙ dy·W₂)·W₁ from dy [R, D], the weights
   * w2 = W₂ [D, hidden] and w1 = W₁ [hidden, D] (PyTorch's layouts), GELU's
   * input a and Φ(a) [R, hidden].
   */
  WildttaMlpGrad(host, { dy, w2, a, cdf, w1 }, _attrs, made) {
    const [da] = made(call(kernels.WildttaGeluGrad, host, [made(host.matMul(dy!, w2!)), a!, cdf!]));
    return [made(host.matMul(da!, w1!))];
  },

  /**
   * Attention's backward at batch size 1, from dL/d(proj's output) dy [N, D]
   * to dL/d(qkv's input) [N, D], given wo = proj's weight [D, D], wqkv =
   * qkv's [3D, D] and what the forward kept: qkv [N, 3D] and each head's
   * softmax p{h} [N, N]. The softmax products of all heads are one SIMD
   * kernel where it applies and the heads are small enough, else per head
   * the backend's products (on wasm XNNPACK's, also faster than the
   * JavaScript loop).
   */
  WildttaAttentionGrad(host, inputs, { heads }, made) {
    const H = heads as number;
    const qkv = inputs.qkv!;
    const p = Array.from({ length: H }, (_, h) => inputs[`p${h}`]!);
    const dO = made(host.matMul(inputs.dy!, inputs.wo!));
    const { N, d } = headsGeometry(qkv.shape, H);
    const [dqkv] =
      simdEnabled && host.simd && headsGradSimd(qkv.shape, H) && N * N * d <= HEADS_KERNEL_MAX_WORK
        ? made(call(kernels.WildttaAttentionHeadsGrad, host, [dO, qkv, ...p], { heads: H }))
        : made(call(kernels.WildttaConcatColumns, host, headsGradProducts(host, dO, qkv, p, made)));
    return [made(host.matMul(dqkv!, inputs.wqkv!))];
  },

  /**
   * FastViT's whole backward on the host path at batch 1 under token pooling
   * (fast-vit.ts's backward, which it replaces there, reads the same way):
   * from dL/dlogits [1, C] to the gradients of the adapted LayerNorms laid
   * end to end in one vector [total] (methods/flat.ts's layout). One engine
   * call for what was some forty, none of whose intermediates becomes a tfjs
   * tensor; each is freed once the next block down no longer needs it.
   *
   * Inputs: dLogits, headW [C, D]; the final norm's x, stats, gamma as
   * 'final.x', 'final.s', 'final.g'; for each block i from `first` up,
   * 'i.ln1x', 'i.ln1s', 'i.ln1g', 'i.ln2x', 'i.ln2s', 'i.ln2g', 'i.qkv',
   * 'i.p0'…, 'i.a', 'i.cdf' (the tape) and 'i.fc1', 'i.fc2', 'i.proj',
   * 'i.qkvw' (PyTorch's weight layouts). Attributes: heads, tokens, depth,
   * first (the lowest block with an adapted norm), stopAfterNorm2 (that
   * block adapts only norm2), total, and slots: for norm1 and norm2 of each
   * block, then the final norm, the offsets of its weight's and its bias's
   * gradients in the output (−1 where not adapted).
   */
  WildttaBackward(host, inputs, attrs, made) {
    const H = attrs.heads as number;
    const N = attrs.tokens as number;
    const depth = attrs.depth as number;
    const first = attrs.first as number;
    const slots = attrs.slots as number[];
    const out = made(host.make([attrs.total as number]));
    host.values(out).fill(0);
    const free = (...ts: Array<tf.TensorInfo | undefined>) => {
      for (const t of ts) if (t) host.backend.disposeData(t.dataId);
    };
    // A norm's backward; its dγ and dβ go straight into the output where adapted. slot: 2·block (+1 for norm2), 2·depth for the final norm.
    const lnGrad = (
      dy: tf.TensorInfo,
      x: tf.TensorInfo,
      stats: tf.TensorInfo,
      gamma: tf.TensorInfo,
      slot: number,
      needInput: boolean,
      residual?: tf.TensorInfo,
    ) => {
      const [dg, db, dx] = made(call(kernels.WildttaLayerNormGrad, host, [dy, x, stats, gamma, residual], { needInput }));
      const o = host.values(out); // a view taken after the last allocation
      if (slots[2 * slot]! >= 0) o.set(host.values(dg!), slots[2 * slot]!);
      if (slots[2 * slot + 1]! >= 0) o.set(host.values(db!), slots[2 * slot + 1]!);
      free(dg, db);
      return dx;
    };
    const dPooled = made(host.matMul(inputs.dLogits!, inputs.headW!));
    // Only the class token reaches the head: dx holds its row alone through the last block's MLP.
    let dx = lnGrad(dPooled, inputs['final.x']!, inputs['final.s']!, inputs['final.g']!, 2 * depth, true)!;
    free(dPooled);
    for (let i = depth - 1; i >= first; i--) {
      const at = (name: string) => inputs[`${i}.${name}`]!;
      const cls = i === depth - 1;
      const rows = (t: tf.TensorInfo) => (cls ? made(call(kernels.WildttaEveryNthRow, host, [t], { every: N }))[0]! : t);
      const [a, cdf, ln2x, ln2s] = [at('a'), at('cdf'), at('ln2x'), at('ln2s')].map(rows) as [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo, tf.TensorInfo];
      const [dm] = runComposite(composites.WildttaMlpGrad, host, { dy: dx, w2: at('fc2'), a, cdf, w1: at('fc1') }, {}, made);
      const stop = i === first && (attrs.stopAfterNorm2 as boolean);
      const dx1 = lnGrad(dm!, ln2x, ln2s, at('ln2g'), 2 * i + 1, !stop, dx);
      free(dm, dx, ...(cls ? [a, cdf, ln2x, ln2s] : []));
      if (stop) break;
      let dh1: tf.TensorInfo;
      let skip = dx1!;
      if (cls) {
        // Attention's gradient from the class token's row (outer products per head), then the skip connection padded to every row.
        const dO = made(host.matMul(dx1!, at('proj')));
        const [dqkv] = made(call(kernels.WildttaClassAttentionGrad, host, [dO, at('qkv')], { heads: H }));
        dh1 = made(host.matMul(dqkv!, at('qkvw')));
        free(dO, dqkv);
        skip = made(host.make([N, dx1!.shape[1]!]));
        const padded = host.values(skip);
        padded.fill(0);
        padded.set(host.values(dx1!));
      } else {
        const ps = Object.fromEntries(Array.from({ length: H }, (_, h) => [`p${h}`, at(`p${h}`)]));
        [dh1] = runComposite(
          composites.WildttaAttentionGrad,
          host,
          { dy: dx1!, wo: at('proj'), wqkv: at('qkvw'), qkv: at('qkv'), ...ps },
          { heads: H },
          made,
        ) as [tf.TensorInfo];
      }
      const below = lnGrad(dh1, at('ln1x'), at('ln1s'), at('ln1g'), 2 * i, i !== first, skip);
      free(dh1, dx1, skip);
      if (i === first) break;
      dx = below!;
    }
    return [out];
  },
} satisfies Record<string, Composite>;

/**
 * Runs a composite and frees all it allocated but what it returns, also when
 * it throws; what it returns goes on to `made`. As a registered kernel, that
 * is the engine's; inside another composite, the caller's, whose whole
 * backward would otherwise hold every block's intermediates until its end.
 */
function runComposite(c: Composite, host: Host, inputs: Record<string, tf.TensorInfo>, attrs: Attrs, made: Made): tf.TensorInfo[] {
  const mine: tf.TensorInfo[] = [];
  const track: Made = (t) => {
    if (Array.isArray(t)) mine.push(...t);
    else mine.push(t as tf.TensorInfo);
    return t;
  };
  let outs: tf.TensorInfo[] = [];
  try {
    outs = made(c(host, inputs, attrs, track));
    return outs;
  } finally {
    const kept = new Set(outs.map((o) => o.dataId));
    for (const t of mine) if (!kept.has(t.dataId)) host.backend.disposeData(t.dataId);
  }
}

function compositeKernel(c: Composite, backendName: string): tf.KernelFunc {
  return ({ inputs, backend, attrs }) =>
    runComposite(c, hostOf(backend as tf.KernelBackend, backendName), inputs as Record<string, tf.TensorInfo>, attrs as Attrs, (t) => t);
}

let registered = false;

/** Registers the kernels for the wasm and cpu backends (once). */
export function registerHostKernels(): void {
  if (registered) return;
  registered = true;
  for (const [name, k] of Object.entries(kernels) as Array<[string, HostKernel]>) {
    for (const backendName of HOST_BACKENDS) {
      if (tf.getKernel(name, backendName)) continue;
      tf.registerKernel({ kernelName: name, backendName, kernelFunc: hostKernel(k, backendName) });
    }
  }
  for (const [name, c] of Object.entries(composites) as Array<[string, Composite]>) {
    for (const backendName of HOST_BACKENDS) {
      if (!tf.getKernel(name, backendName)) tf.registerKernel({ kernelName: name, backendName, kernelFunc: compositeKernel(c, backendName) });
    }
  }
}

/**
 * Whether the current backend has this fused kernel: wasm and cpu have all
 * of them, webgpu those gpu-kernels.ts writes in WGSL, webgl none.
 */
export function hasFusedKernel(name: HostKernelName): boolean {
  registerHostKernels();
  registerGpuKernels();
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * Runs one of these kernels on the current backend, which must be wasm or
 * cpu, or webgpu for the kernels gpu-kernels.ts registers; always returns the
 * outputs as a list.
 */
export function runFusedKernel(name: HostKernelName, inputs: Record<string, tf.Tensor>, attrs: Attrs = {}): tf.Tensor[] {
  registerHostKernels();
  const out = tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap);
  return Array.isArray(out) ? out : [out as tf.Tensor];
}
