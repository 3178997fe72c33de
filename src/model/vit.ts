import * as tf from '@tensorflow/tfjs-core';
import { checkShapes, type ViTConfig } from './config';
import type { DecodedTensor } from './safetensors';
import { FastViT, type FastTape } from './fast-vit';
import { concatByLayout, makeParams, type Backbone, type BackboneTape, type GradientLayout, type NormLookup, type NormSelection } from './backbone';

/** Looks a weight up by its timm name. */
export type ParamLookup = (name: string) => tf.Tensor;

/**
 * The ViT forward pass as plain functions over timm-named tensors.
 * Only differentiable core ops: no tf.fused.* (its gradient computes every
 * weight gradient) and no einsum (no gradient).
 */

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

export function block(x: tf.Tensor3D, p: ParamLookup, i: number, cfg: ViTConfig): tf.Tensor3D {
  const b = `blocks.${i}`;
  const h1 = layerNorm(x, p(`${b}.norm1.weight`), p(`${b}.norm1.bias`), cfg.normEps) as tf.Tensor3D;
  const x1 = tf.add(x, attention(h1, p, `${b}.attn`, cfg.heads)) as tf.Tensor3D;
  const h2 = layerNorm(x1, p(`${b}.norm2.weight`), p(`${b}.norm2.bias`), cfg.normEps);
  const mlp = linear(gelu(linear(h2, p(`${b}.mlp.fc1.weight`), p(`${b}.mlp.fc1.bias`))), p(`${b}.mlp.fc2.weight`), p(`${b}.mlp.fc2.bias`));
  return tf.add(x1, mlp) as tf.Tensor3D;
}

/**
 * Logits [B, classes] for images [B, H, W, C] with values in [0, 1].
 * `finalNorm` is 'fc_norm' for timm avg-pool models (norm after pooling) and
 * 'norm' otherwise (norm before pooling).
 */
export function vitLogits(cfg: ViTConfig, p: ParamLookup, images: tf.Tensor4D, finalNorm: 'norm' | 'fc_norm' = 'norm'): tf.Tensor2D {
  return linear(vitPooled(cfg, p, images, finalNorm), p('head.weight'), p('head.bias')) as tf.Tensor2D;
}

/**
 * The pooled feature [B, D] the head reads; `afterBlock` sees each block's
 * output tokens [B, N, D] (for summaries). Inside tf.tidy.
 */
function vitPooled(cfg: ViTConfig, p: ParamLookup, images: tf.Tensor4D, finalNorm: 'norm' | 'fc_norm', afterBlock?: (x: tf.Tensor3D) => void): tf.Tensor2D {
  const B = images.shape[0];
  const D = cfg.width;
  const normalized = tf.div(tf.sub(images, cfg.mean), cfg.std) as tf.Tensor4D;
  const patches = patchEmbed(normalized, p('patch_embed.proj.weight'), p('patch_embed.proj.bias'), cfg.patchSize);
  const cls = tf.tile(p('cls_token'), [B, 1, 1]);
  let x = tf.add(tf.concat([cls, patches], 1), p('pos_embed')) as tf.Tensor3D;
  for (let i = 0; i < cfg.depth; i++) {
    x = block(x, p, i, cfg);
    afterBlock?.(x);
  }
  if (cfg.pool === 'token') return tf.reshape(tf.slice(layerNorm(x, p('norm.weight'), p('norm.bias'), cfg.normEps), [0, 0, 0], [B, 1, D]), [B, D]);
  if (finalNorm === 'fc_norm') return layerNorm(meanPatchToken(x), p('fc_norm.weight'), p('fc_norm.bias'), cfg.normEps) as tf.Tensor2D;
  return meanPatchToken(layerNorm(x, p('norm.weight'), p('norm.bias'), cfg.normEps) as tf.Tensor3D);
}

/** The patch tokens' mean [B, D] (the class token left out). */
function meanPatchToken(x: tf.Tensor3D): tf.Tensor2D {
  const [B, N, D] = x.shape;
  return tf.mean(tf.slice(x, [0, 1, 0], [B, N - 1, D]), 1) as tf.Tensor2D;
}

/**
 * The reference forward with each block's summary: the class token leaving
 * each block (mean-pooled patch tokens for a model without token pooling) and
 * the pooled feature the head reads. Inside tf.tidy.
 */
export function vitSummaries(
  cfg: ViTConfig,
  p: ParamLookup,
  images: tf.Tensor4D,
  finalNorm: 'norm' | 'fc_norm',
): { pooled: tf.Tensor2D; layers: tf.Tensor2D[] } {
  const layers: tf.Tensor2D[] = [];
  const summary = (x: tf.Tensor3D) =>
    cfg.pool === 'token' ? (tf.reshape(tf.slice(x, [0, 0, 0], [x.shape[0], 1, cfg.width]), [x.shape[0], cfg.width]) as tf.Tensor2D) : meanPatchToken(x);
  const pooled = vitPooled(cfg, p, images, finalNorm, (x) => layers.push(summary(x)));
  return { pooled, layers };
}

/** True for the LayerNorm scale/shift tensors, the only weights TTA adapts. */
export function isNormParam(name: string): boolean {
  return /(^|\.)(norm\d?|fc_norm)\.(weight|bias)$/.test(name);
}

export interface ViTOptions {
  /** Which weights become tf.Variables: the LayerNorm affine ones (TTA), or all (training). */
  trainable?: 'norms' | 'all';
}

/**
 * A loaded ViT. Frozen weights are constant tensors; the LayerNorm
 * scale/shift are tf.Variables so gradients can be taken with respect to them alone.
 */
export class ViT implements Backbone {
  readonly family = 'vit';
  readonly headWeightName = 'head.weight';
  readonly finalNorm: 'norm' | 'fc_norm';
  /** Every weight by timm name (variables included). */
  readonly params = new Map<string, tf.Tensor>();
  /** The LayerNorm scale/shift variables in forward order (or every weight with trainable: 'all'). */
  readonly variables = new Map<string, tf.Variable>();
  private disposed = false;
  private fastPath: FastViT | undefined;
  private readonly trainAll: boolean;

  constructor(
    readonly config: ViTConfig,
    tensors: ReadonlyMap<string, DecodedTensor>,
    options: ViTOptions = {},
  ) {
    const shapes = new Map([...tensors].map(([k, v]) => [k, v.shape] as const));
    this.finalNorm = checkShapes(config, shapes);
    const trainAll = options.trainable === 'all';
    this.trainAll = trainAll;
    makeParams(tensors, (name) => trainAll || isNormParam(name), this.params, this.variables);
  }

  readonly param: ParamLookup = (name) => {
    const t = this.params.get(name);
    if (t === undefined) throw new Error(`ViT has no weight ${name}`);
    return t;
  };

  /** Logits for images [B, H, W, C] in [0, 1]. The caller owns the result (use inside tf.tidy). */
  logits(images: tf.Tensor4D): tf.Tensor2D {
    if (this.disposed) throw new Error('ViT used after dispose()');
    return vitLogits(this.config, this.param, images, this.finalNorm);
  }

  /**
   * The adaptation forward/backward (fast-vit.ts), built on first use from the
   * frozen weights. Only for models whose trainable weights are the norms.
   */
  get fast(): FastViT {
    if (this.disposed) throw new Error('ViT used after dispose()');
    if (this.trainAll) throw new Error('the fast path assumes frozen weights outside the norms (trainable: "norms")');
    this.fastPath ??= new FastViT(this.config, this.param, this.finalNorm);
    return this.fastPath;
  }

  get featureWidth(): number {
    return this.config.width;
  }

  get normUnits(): number {
    return this.config.depth;
  }

  /** The blocks' norm1/norm2 below the last `skipLastBlocks` (default: the last quarter), and the final norm if asked. */
  selectNorms(sel: NormSelection): string[] {
    const depth = this.config.depth;
    const skip = sel.skipLastBlocks ?? Math.floor(depth / 4);
    if (!Number.isInteger(skip) || skip < 0 || skip > depth) throw new RangeError(`skipLastBlocks must be an integer in [0, ${depth}], got ${skip}`);
    return [...this.variables.keys()].filter((name) => {
      const block = /^blocks\.(\d+)\.norm[12]\.(weight|bias)$/.exec(name);
      if (block) return Number(block[1]) < depth - skip;
      return /^(norm|fc_norm)\.(weight|bias)$/.test(name) && sel.includeFinalNorm === true;
    });
  }

  get summaryWidths(): number[] {
    return Array<number>(this.config.depth).fill(this.config.width);
  }

  summaries(images: tf.Tensor4D, norm: NormLookup = this.param): { logits: tf.Tensor2D; features: tf.Tensor2D; layers: tf.Tensor2D[] } {
    if (this.disposed) throw new Error('ViT used after dispose()');
    const lookup: ParamLookup = (name) => (this.variables.has(name) ? norm(name) : this.param(name));
    const { pooled, layers } = vitSummaries(this.config, lookup, images, this.finalNorm);
    return { logits: linear(pooled, this.param('head.weight'), this.param('head.bias')) as tf.Tensor2D, features: pooled, layers };
  }

  /** The fast path's forward (fast-vit.ts): what its hand-written backward needs, kept with `save`. */
  forward(images: tf.Tensor4D, norm: NormLookup, save = false, sameImages?: BackboneTape): { logits: tf.Tensor2D; features: tf.Tensor2D; tape?: BackboneTape } {
    return this.fast.forward(images, norm, save, sameImages as FastTape | undefined);
  }

  /** The hand-written backward: one kernel laying the gradients end to end where it applies, else per tensor. */
  gradient(tape: BackboneTape, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D {
    const fast = this.fast;
    const t = tape as FastTape;
    return fast.flatBackward(t, dLogits, layout, dFeatures) ?? concatByLayout(fast.backward(t, dLogits, new Set(layout.names), dFeatures), layout);
  }

  /** Names of LayerNorm affine tensors, in forward order. */
  normParamNames(): string[] {
    return [...this.params.keys()].filter(isNormParam);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.fastPath?.dispose();
    for (const t of this.params.values()) t.dispose();
    this.params.clear();
    this.variables.clear();
  }
}
