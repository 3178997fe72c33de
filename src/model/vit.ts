// A LayerNorm Vision Transformer in timm's layout (ViT, DeiT). Its forward is
// vit-forward.ts's, run on two sets of pieces: plain tfjs ops over the timm
// weights (the definition: evaluation, autodiff, source statistics), and the
// kernels over weights prepared once (the adaptation's forward, which keeps
// what its hand-written backward, vit-backward.ts, needs). Tests hold the two
// equal.
import * as tf from '@tensorflow/tfjs-core';
import * as k from '../kernels';
import type { BlockWeights, EmbedWeights, GradientLayout, Linear } from '../kernels';
import { makeParams, type Backbone, type BackboneTape, type ParamLookup, type NormSelection } from './backbone';
import { checkShapes, resolveViTConfig, type ViTConfig } from './config';
import { defineFamily } from './family';
import type { DecodedTensor } from './safetensors';
import { vitBackward, ViTTape } from './vit-backward';
import { plainPieces, vitForward, type ViTPieces } from './vit-forward';

/** True for the LayerNorm scale/shift tensors, the only weights TTA adapts. */
export function isNormParam(name: string): boolean {
  return /(^|\.)(norm\d?|fc_norm)\.(weight|bias)$/.test(name);
}

export interface ViTOptions {
  /** Which weights become tf.Variables: the LayerNorm affine ones (TTA), or all (training). */
  trainable?: 'norms' | 'all';
}

/**
 * The frozen weights as the kernels read them, made once from the timm
 * tensors: the input normalization folded into the patch kernel, the
 * attention scale 1/√d_head into the q part of the qkv weights.
 */
interface Prepared {
  embed: EmbedWeights;
  blocks: BlockWeights[];
  head: Linear;
}

function prepare(cfg: ViTConfig, p: ParamLookup): Prepared {
  const { width: D, heads, patchSize: P, inChannels: C } = cfg;
  const scale = 1 / Math.sqrt(D / heads);
  // The weights are kept: the first use may come from inside a caller's tf.tidy.
  const embed = tf.tidy(() => {
    // Kernel [D, C, P, P] → rows ordered (row, col, channel) like the patches; ((x − m)/s)·W + b = x·(W/s) + (b − Σ W·m/s).
    const kernel = tf.reshape(tf.transpose(p('patch_embed.proj.weight'), [2, 3, 1, 0]), [P * P * C, D]);
    const perChannel = (v: number[]) => tf.reshape(tf.tile(tf.tensor1d(v), [P * P]), [P * P * C, 1]);
    const scaled = tf.div(kernel, perChannel(cfg.std));
    const bias = tf.sub(p('patch_embed.proj.bias'), tf.sum(tf.mul(scaled, perChannel(cfg.mean)), 0));
    const pos = p('pos_embed') as tf.Tensor3D;
    const N = pos.shape[1];
    const patchPos = tf.add(tf.reshape(tf.slice(pos, [0, 1, 0], [1, N - 1, D]), [N - 1, D]), bias);
    const clsPos = tf.add(p('cls_token'), tf.slice(pos, [0, 0, 0], [1, 1, D]));
    return { kernel: tf.keep(scaled) as tf.Tensor2D, patchPos: tf.keep(patchPos) as tf.Tensor2D, clsPos: tf.keep(clsPos) as tf.Tensor3D, patch: P };
  });
  const head = keeping(() => k.prepareLinear(p('head.weight'), p('head.bias')));
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < cfg.depth; i++) {
    const b = `blocks.${i}`;
    blocks.push(
      keeping(() => {
        const qScale = tf.concat([tf.fill([D], scale), tf.ones([2 * D])]);
        return {
          qkv: k.prepareLinear(tf.mul(p(`${b}.attn.qkv.weight`), tf.expandDims(qScale, 1)), tf.mul(p(`${b}.attn.qkv.bias`), qScale)),
          proj: k.prepareLinear(p(`${b}.attn.proj.weight`), p(`${b}.attn.proj.bias`)),
          fc1: k.prepareLinear(p(`${b}.mlp.fc1.weight`), p(`${b}.mlp.fc1.bias`)),
          fc2: k.prepareLinear(p(`${b}.mlp.fc2.weight`), p(`${b}.mlp.fc2.bias`)),
        };
      }),
    );
  }
  return { embed, blocks, head };
}

/** fn's result, its intermediates freed (prepareLinear keeps what it returns). */
function keeping<T>(fn: () => T): T {
  let out: T | undefined;
  tf.tidy(() => {
    out = fn();
  });
  return out!;
}

/**
 * The forward's steps on the kernels, tokens as [B·N, D], norm scale/shift
 * from `norm` (SAM's θ + ε, or the model's own); with a tape, each step's
 * saved tensors go into it.
 */
function kernelPieces(
  cfg: ViTConfig,
  w: Prepared,
  norm: ParamLookup,
  batch: number,
  tokens: number,
  tape: ViTTape | undefined,
  sameImages: ViTTape | undefined,
): ViTPieces {
  const shape = { batch, tokens, heads: cfg.heads };
  const save = tape !== undefined;
  return {
    embed(images) {
      // SAM's second forward changes only the norms: the images' embedding is the first forward's.
      const x = sameImages?.embedded && sameImages.batch === batch && sameImages.tokens === tokens ? sameImages.embedded : k.embed(images, w.embed);
      if (tape) tape.embedded = x;
      return x;
    },
    norm(x, name) {
      const { y, saved } = k.layerNorm(x as tf.Tensor2D, norm(`${name}.weight`), norm(`${name}.bias`), cfg.normEps, save);
      if (tape) tape.norms.set(name, saved!);
      return y;
    },
    attention(x, n, i) {
      const { x1, saved } = k.attention(x as tf.Tensor2D, n as tf.Tensor2D, w.blocks[i]!, shape, save);
      if (tape) tape.attention[i] = saved!;
      return x1;
    },
    mlp(x, n, i) {
      const { x2, a, cdf } = k.mlp(x as tf.Tensor2D, n as tf.Tensor2D, w.blocks[i]!, save);
      if (tape) tape.gelu[i] = { a: a!, cdf: cdf! };
      return x2;
    },
    classTokens: (x) => k.classRows(x as tf.Tensor2D, tokens),
    patchMean(x) {
      const D = x.shape[1]!;
      return tf.mean(tf.slice(tf.reshape(x, [batch, tokens, D]), [0, 1, 0], [batch, tokens - 1, D]), 1) as tf.Tensor2D;
    },
    head: (pooled) => k.linear(pooled, w.head),
  };
}

/**
 * A loaded ViT. Frozen weights are constant tensors; the LayerNorm
 * scale/shift are tf.Variables so gradients can be taken with respect to
 * them alone.
 */
export class ViT implements Backbone {
  readonly family = 'vit';
  readonly headWeightName = 'head.weight';
  readonly finalNorm: 'norm' | 'fc_norm';
  /** Every weight by timm name (variables included). */
  readonly params = new Map<string, tf.Tensor>();
  /** The LayerNorm scale/shift variables in forward order (or every weight with trainable: 'all'). */
  readonly variables = new Map<string, tf.Variable>();
  readonly weightsHash: string;
  private disposed = false;
  private prepared: Prepared | undefined;
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
    this.weightsHash = makeParams(tensors, (name) => trainAll || isNormParam(name), this.params, this.variables);
  }

  readonly param: ParamLookup = (name) => {
    const t = this.params.get(name);
    if (t === undefined) throw new Error(`ViT has no weight ${name}`);
    return t;
  };

  get featureWidth(): number {
    return this.config.width;
  }

  get normUnits(): number {
    return this.config.depth;
  }

  get summaryWidths(): number[] {
    return Array<number>(this.config.depth).fill(this.config.width);
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

  /** Names of LayerNorm affine tensors, in forward order. */
  normParamNames(): string[] {
    return [...this.params.keys()].filter(isNormParam);
  }

  /** Plain logits for images [B, H, W, C] in [0, 1] at the model's parameters (evaluation, autodiff). The caller owns the result. */
  logits(images: tf.Tensor4D): tf.Tensor2D {
    this.assertAlive();
    // In tidy: called outside one (evaluation, a benchmark's inference), the forward's intermediates would outlive it.
    return tf.tidy(() => vitForward(this.config, this.finalNorm, plainPieces(this.config, this.param), images).logits);
  }

  summaries(images: tf.Tensor4D, norm: ParamLookup = this.param): { logits: tf.Tensor2D; features: tf.Tensor2D; layers: tf.Tensor2D[] } {
    this.assertAlive();
    const pieces = plainPieces(this.config, (name) => (this.variables.has(name) ? norm(name) : this.param(name)));
    const layers: tf.Tensor2D[] = [];
    // Each block's class token (the mean patch token without token pooling).
    const summary = (x: tf.Tensor) => (this.config.pool === 'token' ? pieces.classTokens(x) : pieces.patchMean(x));
    const out = vitForward(this.config, this.finalNorm, pieces, images, (x) => layers.push(summary(x)));
    return { ...out, layers };
  }

  /**
   * The adaptation's forward on the kernels, the norms' values from `norm`;
   * with `save`, the tape `gradient` needs. `sameImages`: the tape of an
   * earlier forward on these very images, which lends its patch embedding.
   * Only for models whose trainable weights are the norms.
   */
  forward(
    images: tf.Tensor4D,
    norm: ParamLookup,
    save = false,
    sameImages?: BackboneTape,
  ): { logits: tf.Tensor2D; features: tf.Tensor2D; tape?: BackboneTape } {
    this.assertAlive();
    if (this.trainAll) throw new Error('the adaptation forward assumes frozen weights outside the norms (trainable: "norms")');
    this.prepared ??= prepare(this.config, this.param);
    const [B, H, W] = images.shape;
    const P = this.config.patchSize;
    const tokens = (H / P) * (W / P) + 1;
    const tape = save ? new ViTTape(B, tokens) : undefined;
    const pieces = kernelPieces(this.config, this.prepared, norm, B, tokens, tape, sameImages instanceof ViTTape ? sameImages : undefined);
    const out = vitForward(this.config, this.finalNorm, pieces, images);
    return tape ? { ...out, tape } : out;
  }

  /** dLoss/d(adapted norms) laid out as `layout`, by the hand-written backward (vit-backward.ts). Inside tf.tidy. */
  gradient(tape: BackboneTape, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D {
    if (!(tape instanceof ViTTape)) throw new TypeError('ViT.gradient needs the tape of ViT.forward');
    const w = this.prepared!;
    const args = { dLogits, head: w.head, blocks: w.blocks, shape: { batch: tape.batch, tokens: tape.tokens, heads: this.config.heads }, layout };
    return k.runBackward(dFeatures ? { ...args, dFeatures } : args, vitBackward(this.config, this.finalNorm, tape, layout.names));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const w = this.prepared;
    if (w) {
      tf.dispose([w.embed.kernel, w.embed.patchPos, w.embed.clsPos]);
      for (const l of [w.head, ...w.blocks.flatMap((b) => [b.qkv, b.proj, b.fc1, b.fc2])]) k.disposeLinear(l);
    }
    for (const t of this.params.values()) t.dispose();
    this.params.clear();
    this.variables.clear();
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error('ViT used after dispose()');
  }
}

/** The ViT's entry in the family registry (families.ts): the last asked, it reads any file no other family claims. */
export const vitFamily = defineFamily({
  name: 'vit',
  detect: () => true,
  config: resolveViTConfig,
  build: (config, tensors) => new ViT(config, tensors),
});
