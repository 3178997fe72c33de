// A transformer's pieces in tfjs ops: the forward the adaptation runs, what
// it saves, and the hand-written backward's steps. What runs on a backend
// without its own kernel for a piece (webgl everywhere; webgpu for the
// products), and the reference the kernels are tested against.
import * as tf from '@tensorflow/tfjs-core';
import { entry } from '../registry';
import type { AttnSaved, AttentionShape, Kernels, Linear, LnSaved } from '../types';

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

const linear = entry('linear');
const geluGrad = entry('geluGrad');
const headsGrad = entry('headsGrad');
const softmaxBackward = entry('softmaxBackward');
const headsMerge = entry('headsMerge');

/** Frees a Linear's tensors (what prepareLinear kept and what kernels derived from it). */
export function disposeLinear(l: Linear): void {
  tf.dispose([l.w, l.b, ...(l.wT ? [l.wT] : []), ...l.derived.values()]);
  l.derived.clear();
}

/** The tensors a LayerNorm or attention saved for its backward (a γ that is a model variable outlives the tape, so it is not among them). */
export function savedTensors(s: LnSaved | AttnSaved): tf.Tensor[] {
  switch (s.kind) {
    case 'stats':
      return [s.x, s.stats, ...(s.gamma instanceof tf.Variable ? [] : [s.gamma])];
    case 'xhat':
      return [s.xhat, s.rstd, ...(s.gamma instanceof tf.Variable ? [] : [s.gamma])];
    case 'perhead':
      return [s.qkv, ...s.p];
    case 'heads':
      return [s.q, s.k, s.v, s.p];
    case 'qkv':
      return [s.qkv, s.p];
  }
}

/** Multi-head attention o = softmax(q·kᵀ)·v per head, from qkv [B·N, 3D] to o [B·N, D] (scale folded into q), batched over heads. */
function batchedAttention(qkv: tf.Tensor2D, { batch: B, tokens: N, heads: H }: AttentionShape): { o: tf.Tensor2D; saved: AttnSaved } {
  const D = qkv.shape[1] / 3;
  const hd = D / H;
  // [B·N, 3D] → [3, B·H, N, d_head]: one transpose gives q, k, v split by head.
  const split = tf.transpose(tf.reshape(qkv, [B, N, 3, H, hd]), [2, 0, 3, 1, 4]);
  const [q, k, v] = tf.split(tf.reshape(split, [3 * B * H, N, hd]), 3, 0) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
  const p = tf.softmax(tf.matMul(q, k, false, true)) as tf.Tensor3D;
  const o = tf.reshape(tf.transpose(tf.reshape(tf.matMul(p, v), [B, H, N, hd]), [0, 2, 1, 3]), [B * N, D]) as tf.Tensor2D;
  return { o, saved: { kind: 'heads', q, k, v, p } };
}

/**
 * dL/dqkv [B·N, 3D] when dL/do [B, D] is nonzero at the class tokens only:
 * just their queries get a gradient, and each head's dk and dv are outer
 * products (dk = dSᵀ·q_cls, dv = P_clsᵀ·dO), so no N×N product is needed.
 */
function classAttentionBackward(dO: tf.Tensor2D, s: Extract<AttnSaved, { kind: 'heads' }>, B: number): tf.Tensor2D {
  const [BH, N, hd] = s.q.shape;
  const q0 = tf.slice(s.q, [0, 0, 0], [BH, 1, hd]);
  const p0 = tf.slice(s.p, [0, 0, 0], [BH, 1, N]);
  const dOh = tf.reshape(dO, [BH, 1, hd]);
  const dP = tf.matMul(dOh, s.v, false, true);
  const dS = softmaxBackward(dP, p0) as tf.Tensor3D;
  const dq = tf.pad(tf.matMul(dS, s.k), [
    [0, 0],
    [0, N - 1],
    [0, 0],
  ]) as tf.Tensor3D;
  return headsMerge(dq, tf.matMul(dS, q0, true, false), tf.matMul(p0, dOh, true, false), B);
}

export const vitOps = {
  prepareLinear(w, b) {
    return { w: tf.keep(tf.clone(w)) as tf.Tensor2D, b: tf.keep(tf.clone(b)) as tf.Tensor1D, derived: new Map() };
  },

  linear(x, l) {
    return tf.fused.matMul({ a: x, b: l.w, transposeB: true, bias: l.b }) as tf.Tensor2D;
  },

  embed(images, { kernel, patchPos, clsPos, patch: P }) {
    const [B, H, W, C] = images.shape;
    const gh = H / P;
    const gw = W / P;
    const N = gh * gw + 1;
    const D = kernel.shape[1];
    const rows = tf.reshape(images, [B * gh, P, gw, P * C]);
    const patches = tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [B * (N - 1), P * P * C]);
    const embedded = tf.reshape(tf.matMul(patches, kernel), [B, N - 1, D]);
    const cls = B === 1 ? clsPos : tf.tile(clsPos, [B, 1, 1]);
    return tf.reshape(tf.concat([cls, tf.add(embedded, patchPos)], 1), [B * N, D]) as tf.Tensor2D;
  },

  layerNorm(x, gamma, beta, eps) {
    const mean = tf.mean(x, -1, true);
    const variance = tf.mean(tf.squaredDifference(x, mean), -1, true);
    const rstd = tf.rsqrt(tf.add(variance, eps)) as tf.Tensor2D;
    const xhat = tf.mul(tf.sub(x, mean), rstd) as tf.Tensor2D;
    return { y: tf.add(tf.mul(xhat, gamma), beta) as tf.Tensor2D, saved: { kind: 'xhat', xhat, rstd, gamma } };
  },

  layerNormGrad(dy, s, needInput, residual) {
    if (s.kind !== 'xhat') throw new Error("a LayerNorm saved by a backend's kernel needs that backend's backward");
    const dGamma = tf.sum(tf.mul(dy, s.xhat), 0) as tf.Tensor1D;
    const dBeta = tf.sum(dy, 0) as tf.Tensor1D;
    if (!needInput) return { dGamma, dBeta };
    // dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), dx̂ = dy · γ.
    const dxhat = tf.mul(dy, s.gamma);
    const centered = tf.sub(dxhat, tf.mean(dxhat, -1, true));
    const proj = tf.mul(s.xhat, tf.mean(tf.mul(dxhat, s.xhat), -1, true));
    const dx = tf.mul(tf.sub(centered, proj), s.rstd) as tf.Tensor2D;
    return { dGamma, dBeta, dx: residual ? (tf.add(residual, dx) as tf.Tensor2D) : dx };
  },

  attention(x, n, w, shape) {
    const { o, saved } = batchedAttention(linear(n, w.qkv), shape);
    return { x1: tf.add(x, linear(o, w.proj)) as tf.Tensor2D, saved };
  },

  mlp(x, n, w) {
    const a = linear(n, w.fc1);
    // Exact GELU as a·Φ(a), Φ(a) = ½(1 + erf(a/√2)) kept for the backward. (a·((e+1)·½) equals ½a·(e+1) bit for bit.)
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(a, Math.SQRT1_2)), 1), 0.5) as tf.Tensor2D;
    return { x2: tf.add(x, linear(tf.mul(a, cdf) as tf.Tensor2D, w.fc2)) as tf.Tensor2D, a, cdf };
  },

  mlpGrad(dy, w, a, cdf) {
    return tf.matMul(geluGrad(tf.matMul(dy, w.fc2.w), a, cdf), w.fc1.w);
  },

  geluGrad(dy, a, cdf) {
    const aPdf = tf.mul(a, tf.exp(tf.mul(tf.square(a), -0.5)));
    return tf.mul(dy, tf.add(cdf, tf.mul(aPdf, INV_SQRT_2PI))) as tf.Tensor2D;
  },

  attentionGrad(dy, w, s, { batch }, classRows) {
    if (s.kind === 'perhead') throw new Error('the per-head attention tape is the host backend’s');
    if (classRows && s.kind !== 'heads') throw new Error('the class-rows attention backward reads the heads’ tape');
    const dO = tf.matMul(dy, w.proj.w) as tf.Tensor2D;
    return tf.matMul(classRows ? classAttentionBackward(dO, s as Extract<AttnSaved, { kind: 'heads' }>, batch) : headsGrad(dO, s, batch), w.qkv.w);
  },

  headsGrad(dO, s, B) {
    if (s.kind !== 'heads') throw new Error('only WebGPU’s kernel reads q, k and v from qkv');
    const [BH, N, hd] = s.q.shape;
    const H = BH / B;
    const dOh = tf.reshape(tf.transpose(tf.reshape(dO, [B, N, H, hd]), [0, 2, 1, 3]), [BH, N, hd]) as tf.Tensor3D;
    const dv = tf.matMul(s.p, dOh, true, false) as tf.Tensor3D;
    const dP = tf.matMul(dOh, s.v, false, true);
    const dS = softmaxBackward(dP, s.p) as tf.Tensor3D;
    return headsMerge(tf.matMul(dS, s.k), tf.matMul(dS, s.q, true, false), dv, B);
  },

  softmaxBackward(dP, p) {
    // Per row: dS = P ⊙ (dP − Σ_row dP ⊙ P).
    return tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true)));
  },

  headsMerge(dq, dk, dv, B) {
    const [BH, N, hd] = dq.shape;
    const H = BH / B;
    const dqkv = tf.transpose(tf.reshape(tf.stack([dq, dk, dv]), [3, B, H, N, hd]), [1, 3, 0, 2, 4]);
    return tf.reshape(dqkv, [B * N, 3 * H * hd]) as tf.Tensor2D;
  },

  classRows(x, N) {
    const [R, D] = x.shape;
    const B = R / N;
    if (B === 1) return tf.slice(x, [0, 0], [1, D]);
    return tf.reshape(tf.slice(tf.reshape(x, [B, N, D]), [0, 0, 0], [B, 1, D]), [B, D]) as tf.Tensor2D;
  },
} satisfies Partial<Kernels>;
