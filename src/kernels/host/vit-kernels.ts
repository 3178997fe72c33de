// The host kernels of a transformer's forward and backward: LayerNorm, GELU,
// the softmax backward, attention's per-head pieces and gradients, the patch
// embedding's layouts. Each is a plain loop over the tensors' memory (float64
// arithmetic, stored as float32) and, where it does the most arithmetic per
// value, a WebAssembly SIMD version (simd-kernels.wat) that runs on
// tfjs-wasm's own memory, 2-5× faster than the loop.
//
// Why: at the shipped model's size (50 tokens × 64 channels) a tfjs-wasm
// kernel costs a few microseconds of bookkeeping whatever it computes, and a
// LayerNorm backward written with tfjs ops is a dozen of them. Each kernel
// here replaces five to twelve tfjs kernels. They also hand out the layouts
// the following matrix products want (per-head pieces and their transposes)
// in the same pass, where tfjs-wasm's split and transpose are slow. None has a
// gradient: the models' hand-written backwards call them directly.
import type { Attrs, HostKernel, Shape } from './glue';
import { size } from './glue';

/** Most pieces WildttaConcatColumns takes as a registered kernel, by name (3 × 16 heads); inside composites, any number. */
const MAX_PIECES = 48;
/** Most heads WildttaAttentionHeadsGrad takes (one softmax input each) as a registered kernel. */
const MAX_HEADS = 16;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const HALF_LOG2E = Math.LOG2E / 2;
/** 2⁻ⁿ for n = 0…63. */
const POW2_NEG = Float64Array.from({ length: 64 }, (_, n) => 2 ** -n);

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
export function headsGeometry(s: Shape, heads: number) {
  const C = s[1]!;
  return { N: s[0]!, C, D: C / 3, d: C / 3 / heads };
}

/** Whether attention_head_grad takes these heads: its tiles are 4 keys and 16 columns, the last moved back to fit. */
export function headsGradSimd(qkvShape: Shape, heads: number): boolean {
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
export const HEADS_KERNEL_MAX_WORK = 1 << 17;

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

/** The transformer kernels, by the name tfjs registers them under. */
export const vitKernels = {
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
   * each ordered (row, column, channel) like the ViT's patch kernel.
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
