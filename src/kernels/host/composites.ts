// Host kernels made of other kernels (vit-kernels.ts and the backend's own:
// XNNPACK matMul, softmax, add), run on tensor infos inside one engine call:
// a transformer block's attention or MLP, forward or backward, and the patch
// embedding. Their intermediates never become tfjs tensors, whose bookkeeping
// costs about as much as the arithmetic at the shipped model's size.
import type * as tf from '@tensorflow/tfjs-core';
import { call, product, simdOn, type Composite, type Host, type Made } from './glue';
import { HEADS_KERNEL_MAX_WORK, headsGeometry, headsGradSimd, vitKernels } from './vit-kernels';

/**
 * WildttaAttentionHeadsGrad with the backend's 2-D products per head (dP =
 * dO_h·v_hᵀ, the softmax backward, dS·k, dSᵀ·q, Pᵀ·dO_h): its pieces dq
 * for every head, then dk, then dv, to be put side by side.
 */
function headsGradProducts(host: Host, dO: tf.TensorInfo, qkv: tf.TensorInfo, p: tf.TensorInfo[], made: Made): tf.TensorInfo[] {
  const H = p.length;
  const parts = made(call(vitKernels.WildttaColumnBlocks, host, [qkv], { blocks: 3 * H, transposeFrom: 2 * H }));
  const dOh = made(call(vitKernels.WildttaColumnBlocks, host, [dO], { blocks: H, transposeFrom: H }));
  const pieces: tf.TensorInfo[][] = [[], [], []];
  for (let h = 0; h < H; h++) {
    const dP = made(host.matMul(dOh[h]!, parts[3 * H + h]!));
    const [dS, dST, pT] = made(call(vitKernels.WildttaSoftmaxGrad, host, [dP, p[h]!]));
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
export const composites = {
  /**
   * Patch embedding with the class token and positions, from images [B, H,
   * W, C] in [0, 1], the ViT's patch kernel [p·p·C, D] (input normalization
   * folded in), patchPos [N−1, D] and clsPos [1, 1, D]: [B·N, D].
   */
  WildttaEmbed(host, { images, kernel, patchPos, clsPos }, { patch }, made) {
    const [patches] = made(call(vitKernels.WildttaPatches, host, [images!], { patch: patch as number }));
    const emb = made(host.matMul(patches!, kernel!));
    return made(call(vitKernels.WildttaTokens, host, [emb, patchPos!, clsPos!]));
  },

  /**
   * x1 = x + (attention(n·W_qkv + b_qkv))·W_o + b_o at batch size 1, from the
   * block input x [N, D], its norm n, wqkv [1, D, 3D] (q part pre-scaled),
   * bqkv, wo [1, D, D], bo, and where gemm.wat runs the two weights packed
   * (pqkv, po); attrs heads and save. Per head o_h = softmax(q_h·k_hᵀ)·v_h,
   * the products plain 2-D ones. Outputs x1, and with save qkv [N, 3D] and
   * per head p{h} [N, N] (what WildttaAttentionGrad takes).
   */
  WildttaAttention(host, { x, n, wqkv, bqkv, wo, bo, pqkv, po }, { heads, save }, made) {
    const H = heads as number;
    const qkv = made(product(host, n!, wqkv!, pqkv, bqkv!));
    const parts = made(call(vitKernels.WildttaColumnBlocks, host, [qkv], { blocks: 3 * H, transposeFrom: H, transposeTo: 2 * H }));
    const [q, , v, kT] = [0, 1, 2, 3].map((i) => parts.slice(i * H, (i + 1) * H)) as tf.TensorInfo[][];
    const p: tf.TensorInfo[] = [];
    const o: tf.TensorInfo[] = [];
    for (let h = 0; h < H; h++) {
      const scores = made(host.matMul(q![h]!, kT![h]!));
      p.push(made(host.kernel('Softmax', { logits: scores }, { dim: 1 }))); // the kernels take the axis as is (tf.softmax resolves -1 first)
      o.push(made(host.matMul(p[h]!, v![h]!)));
    }
    const [merged] = made(call(vitKernels.WildttaConcatColumns, host, o));
    const x1 = made(host.kernel('Add', { a: x!, b: made(product(host, merged!, wo!, po, bo!)) }));
    return save ? [x1, qkv, ...p] : [x1];
  },

  /**
   * x2 = x + GELU(n·W₁ + b₁)·W₂ + b₂ from x [R, D], its norm n, w1 [1, D,
   * hidden], b1, w2 [1, hidden, D], b2 (p1, p2: the weights packed, where
   * gemm.wat runs); with save also GELU's input a and Φ(a) [R, hidden] for
   * the backward.
   */
  WildttaMlp(host, { x, n, w1, b1, w2, b2, p1, p2 }, { save }, made) {
    const a = made(product(host, n!, w1!, p1, b1!));
    const [g, cdf] = made(call(vitKernels.WildttaGelu, host, [a]));
    const x2 = made(host.kernel('Add', { a: x!, b: made(product(host, g!, w2!, p2, b2!)) }));
    return save ? [x2, a, cdf!] : [x2];
  },

  /**
   * dL/d(fc1's input) = (GELU'(a) ⊙ dy·W₂)·W₁ from dy [R, D], the weights
   * w2 = W₂ [D, hidden] and w1 = W₁ [hidden, D] (PyTorch's layouts), GELU's
   * input a and Φ(a) [R, hidden] (p2, p1: the weights packed, where
   * gemm.wat runs).
   */
  WildttaMlpGrad(host, { dy, w2, a, cdf, w1, p2, p1 }, _attrs, made) {
    const [da] = made(call(vitKernels.WildttaGeluGrad, host, [made(product(host, dy!, w2!, p2)), a!, cdf!]));
    return [made(product(host, da!, w1!, p1))];
  },

  /**
   * Attention's backward at batch size 1, from dL/d(proj's output) dy [N, D]
   * to dL/d(qkv's input) [N, D], given wo = proj's weight [D, D], wqkv =
   * qkv's [3D, D] and what the forward kept: qkv [N, 3D] and each head's
   * softmax p{h} [N, N]. The softmax products of all heads are one SIMD
   * kernel where it applies and the heads are small enough, else per head
   * the backend's products (on wasm XNNPACK's, also faster than the
   * JavaScript loop). pwo, pwqkv: the two weights packed, where gemm.wat runs.
   */
  WildttaAttentionGrad(host, inputs, { heads }, made) {
    const H = heads as number;
    const qkv = inputs.qkv!;
    const p = Array.from({ length: H }, (_, h) => inputs[`p${h}`]!);
    const dO = made(product(host, inputs.dy!, inputs.wo!, inputs.pwo));
    const { N, d } = headsGeometry(qkv.shape, H);
    const [dqkv] =
      simdOn(host) && headsGradSimd(qkv.shape, H) && N * N * d <= HEADS_KERNEL_MAX_WORK
        ? made(call(vitKernels.WildttaAttentionHeadsGrad, host, [dO, qkv, ...p], { heads: H }))
        : made(call(vitKernels.WildttaConcatColumns, host, headsGradProducts(host, dO, qkv, p, made)));
    return [made(product(host, dqkv!, inputs.wqkv!, inputs.pwqkv))];
  },
} satisfies Record<string, Composite>;
