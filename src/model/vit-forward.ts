// The ViT forward, written once: embedding, blocks, pooling, head. What each
// step runs is a `ViTPieces`: the plain, differentiable tfjs ops below (the
// definition, which autodiff, evaluation and source statistics use), or the
// kernels with what the hand-written backward needs saved (vit.ts).
import * as tf from '@tensorflow/tfjs-core';
import type { ViTConfig } from './config';
import type { ParamLookup } from './backbone';

/** The steps of the forward; X is whatever tensor layout a set of pieces keeps the tokens in. */
export interface ViTPieces {
  /** Images [B, H, W, C] in [0, 1] → the tokens entering block 0 (class token first). */
  embed(images: tf.Tensor4D): tf.Tensor;
  /** The LayerNorm `name` (e.g. 'blocks.0.norm1') over the last axis. */
  norm(x: tf.Tensor, name: string): tf.Tensor;
  /** x + attention(n) of block `block`, n the block's norm1 of x. */
  attention(x: tf.Tensor, n: tf.Tensor, block: number): tf.Tensor;
  /** x + mlp(n) of block `block`, n its norm2 of x. */
  mlp(x: tf.Tensor, n: tf.Tensor, block: number): tf.Tensor;
  /** Each image's class token, [B, D]. */
  classTokens(x: tf.Tensor): tf.Tensor2D;
  /** The mean of each image's patch tokens (the class token left out), [B, D]. */
  patchMean(x: tf.Tensor): tf.Tensor2D;
  /** The head's logits for the pooled feature [B, D]. */
  head(pooled: tf.Tensor2D): tf.Tensor2D;
}

/**
 * Logits and the pooled feature the head reads. The final norm is 'norm' on
 * the tokens (token pooling, or avg pooling without fc_norm) or 'fc_norm'
 * after avg pooling (timm's layout). LayerNorm is per token, so under token
 * pooling normalizing the class token alone gives the same values as
 * normalizing every token. `afterBlock` sees each block's output. Inside
 * tf.tidy.
 */
export function vitForward(
  cfg: ViTConfig,
  finalNorm: 'norm' | 'fc_norm',
  pieces: ViTPieces,
  images: tf.Tensor4D,
  afterBlock?: (x: tf.Tensor, block: number) => void,
): { logits: tf.Tensor2D; features: tf.Tensor2D } {
  let x = pieces.embed(images);
  for (let i = 0; i < cfg.depth; i++) {
    const b = `blocks.${i}`;
    x = pieces.attention(x, pieces.norm(x, `${b}.norm1`), i);
    x = pieces.mlp(x, pieces.norm(x, `${b}.norm2`), i);
    afterBlock?.(x, i);
  }
  let features: tf.Tensor2D;
  if (cfg.pool === 'token') features = pieces.norm(pieces.classTokens(x), finalNorm) as tf.Tensor2D;
  else if (finalNorm === 'fc_norm') features = pieces.norm(pieces.patchMean(x), finalNorm) as tf.Tensor2D;
  else features = pieces.patchMean(pieces.norm(x, finalNorm));
  return { logits: pieces.head(features), features };
}

// The plain pieces: only differentiable core ops (no tf.fused.*, whose gradient computes every weight's; no einsum).

export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/** PyTorch Linear: y = x W^T + b with W stored [out, in]; x of any rank. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.rank - 1]!;
  const outDim = weight.shape[0]!;
  const flat = tf.reshape(x, [-1, inDim]);
  const y = tf.add(tf.matMul(flat, weight, false, true), bias);
  return tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
}

/** Exact GELU, 0.5·x·(1 + erf(x/√2)), as in torch.nn.GELU(). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/**
 * Patch embedding as a matrix product (identical to timm's stride-P conv).
 * Images [B, H, W, C] become [B, N, P·P·C] with patches in row-major order and
 * pixels ordered (row, col, channel); the [D, C, P, P] kernel is permuted to match.
 * A matMul keeps every backend (wasm has no conv filter gradient) and the
 * transposes at rank 4.
 */
export function patchEmbed(x: tf.Tensor4D, weight: tf.Tensor, bias: tf.Tensor, patch: number): tf.Tensor3D {
  const [B, H, W, C] = x.shape;
  const gh = H / patch;
  const gw = W / patch;
  const rows = tf.reshape(x, [B * gh, patch, gw, patch * C]);
  const patches = tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [B, gh * gw, patch * patch * C]);
  const D = weight.shape[0]!;
  const kernel = tf.reshape(tf.transpose(weight, [0, 2, 3, 1]), [D, patch * patch * C]);
  return linear(patches, kernel, bias) as tf.Tensor3D;
}

function attention(x: tf.Tensor3D, p: ParamLookup, prefix: string, heads: number): tf.Tensor3D {
  const [B, N, D] = x.shape;
  const hd = D / heads;
  const qkv = linear(x, p(`${prefix}.qkv.weight`), p(`${prefix}.qkv.bias`));
  const toHeads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, N, heads, hd]), [0, 2, 1, 3]);
  const [q, k, v] = tf.split(qkv, 3, 2).map(toHeads) as [tf.Tensor, tf.Tensor, tf.Tensor];
  const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd));
  const mixed = tf.matMul(tf.softmax(scores), v);
  const merged = tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [B, N, D]);
  return linear(merged, p(`${prefix}.proj.weight`), p(`${prefix}.proj.bias`)) as tf.Tensor3D;
}

/** The forward's steps in plain tfjs ops on tokens [B, N, D], every weight from `p` by its timm name. */
export function plainPieces(cfg: ViTConfig, p: ParamLookup): ViTPieces {
  return {
    embed(images) {
      const B = images.shape[0];
      const normalized = tf.div(tf.sub(images, cfg.mean), cfg.std) as tf.Tensor4D;
      const patches = patchEmbed(normalized, p('patch_embed.proj.weight'), p('patch_embed.proj.bias'), cfg.patchSize);
      const cls = tf.tile(p('cls_token'), [B, 1, 1]);
      return tf.add(tf.concat([cls, patches], 1), p('pos_embed'));
    },
    norm: (x, name) => layerNorm(x, p(`${name}.weight`), p(`${name}.bias`), cfg.normEps),
    attention: (x, n, i) => tf.add(x, attention(n as tf.Tensor3D, p, `blocks.${i}.attn`, cfg.heads)),
    mlp: (x, n, i) => {
      const b = `blocks.${i}.mlp`;
      return tf.add(x, linear(gelu(linear(n, p(`${b}.fc1.weight`), p(`${b}.fc1.bias`))), p(`${b}.fc2.weight`), p(`${b}.fc2.bias`)));
    },
    classTokens(x) {
      const [B, , D] = x.shape as [number, number, number];
      return tf.reshape(tf.slice(x, [0, 0, 0], [B, 1, D]), [B, D]) as tf.Tensor2D;
    },
    patchMean(x) {
      const [B, N, D] = x.shape as [number, number, number];
      return tf.mean(tf.slice(x, [0, 1, 0], [B, N - 1, D]), 1) as tf.Tensor2D;
    },
    head: (pooled) => linear(pooled, p('head.weight'), p('head.bias')) as tf.Tensor2D,
  };
}
