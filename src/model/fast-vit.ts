import * as tf from '@tensorflow/tfjs-core';
import type { ViTConfig } from './config';
import type { ParamLookup } from './vit';
import { FUSED_LINEAR, onHostBackend, runFusedKernel } from './host-kernels';
import { registerGpuKernels } from './gpu-kernels';

/**
 * The ViT forward pass that test-time adaptation runs, with a hand-written
 * backward for the LayerNorm scale/shift only.
 *
 * Why not tf.variableGrads: the tape cannot outlive the GPU→CPU read that
 * decides whether a sample is reliable, so the prediction forward had to be
 * run again for the first gradient; and tfjs's generic gradients compute
 * weight gradients nobody wants and spend kernels on LayerNorm, GELU and
 * softmax. Here the forward keeps what its backward needs (`FastTape`), the
 * backward is the vector-Jacobian product from the logits down to the lowest
 * adapted norm, and no weight gradient is ever formed.
 *
 * On the CPU-side backends (wasm, cpu) three things change, together called
 * the host path. Matrix products: on wasm only an untransposed 2-D matMul
 * takes XNNPACK's fast path (7-10× faster here than the same product with a
 * transpose flag), so each frozen weight is kept in both layouts, [in, out]
 * for the forward and PyTorch's [out, in] for the backward; GPU shaders read
 * either layout at the same speed, so there only [out, in] is kept. At batch
 * size 1 each head's forward products are plain 2-D matMuls, and the
 * backward's products of all heads, where they are small, one SIMD kernel
 * (WildttaAttentionGrad). And a block's attention and MLP, forward and
 * backward, are each one composite host kernel (host-kernels.ts), whose
 * intermediates never become tfjs tensors.
 *
 * With token pooling only the class tokens reach the head, so on the host
 * path the last block's backward runs on their rows alone: its MLP and norm2
 * on B rows, and attention's gradient as outer products
 * (classAttentionBackward).
 *
 * On the host path and on webgpu (`fused`), LayerNorm, its backward, GELU's
 * backward, the softmax backward and the merge of per-head gradients are
 * fused kernels (host-kernels.ts, gpu-kernels.ts) instead of 2 to 13 tfjs
 * kernels each; webgl keeps tfjs ops.
 *
 * The attention scale 1/√d_head is folded into the q part of the qkv weights
 * and the input normalization into the patch kernel, once, at construction.
 * The reference forward (vit.ts, autodiff) stays the definition; tests
 * compare the two.
 */

/** Scale/shift of one LayerNorm by name prefix (e.g. 'blocks.0.norm1'). */
export type NormLookup = (name: string) => tf.Tensor;

/** A Linear: weight [out, in], its transpose as [1, in, out] where kept (the rank the fused kernel takes), bias [out]. */
type Lin = {
  w: tf.Tensor2D;
  wT?: tf.Tensor3D;
  b: tf.Tensor1D;
};

type BlockWeights = {
  /** q part pre-scaled by 1/√d_head. */
  qkv: Lin;
  proj: Lin;
  fc1: Lin;
  fc2: Lin;
};

/**
 * What a LayerNorm's backward needs. Fused kernels keep the input x and its
 * row statistics [R, 2] = (mean, 1/√(var + eps)), and rebuild x̂ as they go,
 * so that the adapting forward writes no more than inference does; tfjs ops
 * keep x̂ [R, D] and rstd [R, 1].
 */
type LnSaved =
  { kind: 'stats'; x: tf.Tensor2D; stats: tf.Tensor2D; gamma: tf.Tensor } | { kind: 'xhat'; xhat: tf.Tensor2D; rstd: tf.Tensor2D; gamma: tf.Tensor };

/**
 * Attention's saved tensors. 'heads': q, k, v [B·H, N, d_head] and P
 * [B·H, N, N], batched over heads. 'perhead' (host path, batch 1): qkv
 * [N, 3D] and per head P [N, N]; the backward's kernels read each head's q,
 * k and v out of qkv themselves.
 */
type AttnSaved = { kind: 'heads'; q: tf.Tensor3D; k: tf.Tensor3D; v: tf.Tensor3D; p: tf.Tensor3D } | { kind: 'perhead'; qkv: tf.Tensor2D; p: tf.Tensor2D[] };

interface BlockSaved {
  ln1: LnSaved;
  ln2: LnSaved;
  attn: AttnSaved;
  /** fc1 output (GELU input) and Φ(a) = ½(1 + erf(a/√2)), [R, hidden]. */
  a: tf.Tensor2D;
  cdf: tf.Tensor2D;
}

import type { GradientLayout } from './backbone';
export type { GradientLayout };

/** Everything the backward needs from one forward. */
export class FastTape {
  readonly blocks: BlockSaved[] = [];
  final!: LnSaved;
  /** The tokens entering block 0 (patch embedding, class token, positions), [B·N, D]. */
  embedded!: tf.Tensor2D;
  batch = 0;
  tokens = 0;
  private kept = false;

  /** Keeps the saved tensors past the enclosing tf.tidy (then call dispose). */
  keep(): void {
    this.kept = true;
    for (const t of this.tensors()) tf.keep(t);
  }

  dispose(): void {
    if (!this.kept) return;
    this.kept = false;
    tf.dispose(this.tensors());
  }

  private tensors(): tf.Tensor[] {
    // A scale that is a model variable outlives the tape; a computed one (SAM's θ+ε) does not.
    const ln = (s: LnSaved) => [...(s.kind === 'stats' ? [s.x, s.stats] : [s.xhat, s.rstd]), ...(s.gamma instanceof tf.Variable ? [] : [s.gamma])];
    const out: tf.Tensor[] = this.final ? ln(this.final) : [];
    if (this.embedded) out.push(this.embedded);
    for (const b of this.blocks) out.push(...ln(b.ln1), ...ln(b.ln2), ...attnTensors(b.attn), b.a, b.cdf);
    return out;
  }
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** A LayerNorm's saved tensors cut to some of its rows. */
function lnRows(s: LnSaved, rows: <T extends tf.Tensor2D>(t: T) => T): LnSaved {
  return s.kind === 'stats' ? { ...s, x: rows(s.x), stats: rows(s.stats) } : { ...s, xhat: rows(s.xhat), rstd: rows(s.rstd) };
}

function attnTensors(a: AttnSaved): tf.Tensor[] {
  if (a.kind === 'perhead') return [a.qkv, ...a.p];
  return [a.q, a.k, a.v, a.p];
}

export class FastViT {
  private readonly blocks: BlockWeights[] = [];
  /** [P·P·C, D], input normalization folded in. */
  private readonly patchK: tf.Tensor2D;
  /** pos_embed of the patch tokens plus the folded patch bias, [N−1, D]. */
  private readonly patchPos: tf.Tensor2D;
  /** cls_token + pos_embed[0], [1, 1, D]. */
  private readonly clsPos: tf.Tensor3D;
  private readonly head: Lin;
  readonly finalNormName: 'norm' | 'fc_norm';
  /** The host path: both weight layouts, fused host kernels, per-head 2-D attention products (see the file comment). */
  readonly host: boolean;
  /** LayerNorm, its backward, GELU's backward and the softmax backward as fused kernels: host-kernels.ts on wasm/cpu, gpu-kernels.ts on webgpu. */
  readonly fused: boolean;
  private readonly onesRows = new Map<number, tf.Tensor2D>();
  private headEye: tf.Tensor2D | undefined;
  /** Where flatBackward puts each norm's gradients, by layout. */
  private readonly flatSlots = new WeakMap<GradientLayout, { slots: number[]; first: number } | null>();
  private disposed = false;

  constructor(
    readonly config: ViTConfig,
    p: ParamLookup,
    finalNorm: 'norm' | 'fc_norm',
    options: { host?: boolean; fused?: boolean } = {},
  ) {
    this.finalNormName = finalNorm;
    const host = options.host ?? onHostBackend();
    this.host = host;
    this.fused = options.fused ?? (host || tf.getBackend() === 'webgpu');
    if (this.fused && !host) registerGpuKernels();
    const { width: D, heads, patchSize: P, inChannels: C } = config;
    const scale = 1 / Math.sqrt(D / heads);
    // Kept: the first use may come from inside a caller's tf.tidy.
    const lin = (w: tf.Tensor, b: tf.Tensor): Lin => {
      const out: Lin = { w: tf.keep(tf.clone(w)) as tf.Tensor2D, b: tf.keep(tf.clone(b)) as tf.Tensor1D };
      if (host) out.wT = tf.keep(tf.expandDims(tf.transpose(w), 0)) as tf.Tensor3D;
      return out;
    };
    [this.patchK, this.patchPos, this.clsPos] = tf.tidy(() => {
      // Kernel [D, C, P, P] → rows ordered (row, col, channel) like the patches; ((x − m)/s)·W + b = x·(W/s) + (b − Σ W·m/s).
      const k = tf.reshape(tf.transpose(p('patch_embed.proj.weight'), [2, 3, 1, 0]), [P * P * C, D]);
      const perChannel = (v: number[]) => tf.reshape(tf.tile(tf.tensor1d(v), [P * P]), [P * P * C, 1]);
      const kScaled = tf.div(k, perChannel(config.std));
      const bias = tf.sub(p('patch_embed.proj.bias'), tf.sum(tf.mul(kScaled, perChannel(config.mean)), 0));
      const pos = p('pos_embed') as tf.Tensor3D;
      const N = pos.shape[1];
      const patchPos = tf.add(tf.reshape(tf.slice(pos, [0, 1, 0], [1, N - 1, D]), [N - 1, D]), bias);
      const clsPos = tf.add(p('cls_token'), tf.slice(pos, [0, 0, 0], [1, 1, D]));
      return [kScaled, patchPos, clsPos].map((t) => tf.keep(t)) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor3D];
    });
    this.head = tf.tidy(() => lin(p('head.weight'), p('head.bias')));
    for (let i = 0; i < config.depth; i++) {
      const b = `blocks.${i}`;
      this.blocks.push(
        tf.tidy(() => {
          const qScale = tf.concat([tf.fill([D], scale), tf.ones([2 * D])]);
          return {
            qkv: lin(tf.mul(p(`${b}.attn.qkv.weight`), tf.expandDims(qScale, 1)), tf.mul(p(`${b}.attn.qkv.bias`), qScale)),
            proj: lin(p(`${b}.attn.proj.weight`), p(`${b}.attn.proj.bias`)),
            fc1: lin(p(`${b}.mlp.fc1.weight`), p(`${b}.mlp.fc1.bias`)),
            fc2: lin(p(`${b}.mlp.fc2.weight`), p(`${b}.mlp.fc2.bias`)),
          };
        }),
      );
    }
  }

  /**
   * Logits [B, classes] for images [B, H, W, C] in [0, 1], with the norms'
   * scale/shift from `norm` (e.g. SAM's perturbed values). With `save`, also
   * the tape for `backward`. `sameImages`, the tape of an earlier forward on
   * these very images, lends its patch embedding (SAM's second forward
   * changes only the norms). Also returns `features`, the pooled feature
   * [B, D] the head reads (after the final norm), for methods that align it.
   * Call inside tf.tidy; tape.keep() to use it later.
   */
  forward(images: tf.Tensor4D, norm: NormLookup, save = false, sameImages?: FastTape): { logits: tf.Tensor2D; features: tf.Tensor2D; tape?: FastTape } {
    if (this.disposed) throw new Error('FastViT used after dispose()');
    const cfg = this.config;
    const { width: D, patchSize: P } = cfg;
    const [B, H, W, C] = images.shape;
    const gh = H / P;
    const gw = W / P;
    const N = gh * gw + 1;
    const R = B * N;
    const tape = save ? new FastTape() : undefined;
    if (tape) {
      tape.batch = B;
      tape.tokens = N;
    }

    let x: tf.Tensor2D;
    if (sameImages?.tokens === N && sameImages.batch === B) {
      x = sameImages.embedded;
    } else if (this.host) {
      x = runFusedKernel('WildttaEmbed', { images, kernel: this.patchK, patchPos: this.patchPos, clsPos: this.clsPos }, { patch: P })[0] as tf.Tensor2D;
    } else {
      const rows = tf.reshape(images, [B * gh, P, gw, P * C]);
      const patches = tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [B * (N - 1), P * P * C]);
      const embedded = tf.reshape(tf.matMul(patches, this.patchK), [B, N - 1, D]);
      const cls = B === 1 ? this.clsPos : tf.tile(this.clsPos, [B, 1, 1]);
      x = tf.reshape(tf.concat([cls, tf.add(embedded, this.patchPos)], 1), [R, D]) as tf.Tensor2D;
    }
    if (tape) tape.embedded = x;

    for (let i = 0; i < cfg.depth; i++) {
      const w = this.blocks[i]!;
      const pre = `blocks.${i}`;
      const n1 = this.layerNorm(x, norm(`${pre}.norm1.weight`), norm(`${pre}.norm1.bias`), save);
      const { x1, attn } = this.attentionBlock(x, n1.y, w, B, N, save);
      const n2 = this.layerNorm(x1, norm(`${pre}.norm2.weight`), norm(`${pre}.norm2.bias`), save);
      const mlp = this.mlpBlock(x1, n2.y, w, save);
      x = mlp.x2;
      tape?.blocks.push({ ln1: n1.saved!, ln2: n2.saved!, attn: attn!, a: mlp.a!, cdf: mlp.cdf! });
    }

    const fn = this.finalNormName;
    let pooled: tf.Tensor2D;
    if (cfg.pool === 'token') {
      // LayerNorm is per token: normalizing the class token alone gives the same values.
      const clsRows = this.host
        ? this.classRows(x, N)
        : B === 1
          ? tf.slice(x, [0, 0], [1, D])
          : tf.reshape(tf.slice(tf.reshape(x, [B, N, D]), [0, 0, 0], [B, 1, D]), [B, D]);
      const n = this.layerNorm(clsRows as tf.Tensor2D, norm(`${fn}.weight`), norm(`${fn}.bias`), save);
      pooled = n.y;
      if (tape) tape.final = n.saved!;
    } else if (fn === 'fc_norm') {
      const avg = tf.mean(tf.slice(tf.reshape(x, [B, N, D]), [0, 1, 0], [B, N - 1, D]), 1) as tf.Tensor2D;
      const n = this.layerNorm(avg, norm('fc_norm.weight'), norm('fc_norm.bias'), save);
      pooled = n.y;
      if (tape) tape.final = n.saved!;
    } else {
      const n = this.layerNorm(x, norm('norm.weight'), norm('norm.bias'), save);
      pooled = tf.mean(tf.slice(tf.reshape(n.y, [B, N, D]), [0, 1, 0], [B, N - 1, D]), 1) as tf.Tensor2D;
      if (tape) tape.final = n.saved!;
    }
    const logits = this.linear(pooled, this.head);
    return tape ? { logits, features: pooled, tape } : { logits, features: pooled };
  }

  /**
   * What `backward` gives for the norms named in `layout.names`, laid end to
   * end (each at its offset in a vector of `layout.total` values: an
   * adapter's methods/flat.ts layout), as one host kernel (host-kernels.ts's WildttaBackward) where it
   * applies: the host path, batch 1, token pooling, only block norms and the
   * final norm adapted, at least one block norm among them. Elsewhere
   * undefined, and the caller takes `backward`. `dFeatures` [B, D] adds a
   * gradient with respect to the pooled feature (a loss on `features`).
   * Inside tf.tidy.
   */
  flatBackward(tape: FastTape, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D | undefined {
    const cfg = this.config;
    if (!this.host || tape.batch !== 1 || cfg.pool !== 'token' || tape.final?.kind !== 'stats') return undefined;
    let placed = this.flatSlots.get(layout);
    if (placed === undefined) {
      placed = this.slotsOf(layout);
      this.flatSlots.set(layout, placed);
    }
    if (!placed) return undefined;
    const { slots, first } = placed;
    // dPooled = dLogits·W_head + dFeatures is one product of [dLogits, dFeatures] with [W_head; I].
    const withFeatures = dFeatures !== undefined;
    const inputs: Record<string, tf.Tensor> = {
      dLogits: withFeatures ? tf.concat([dLogits, dFeatures], 1) : dLogits,
      headW: withFeatures ? this.headWithIdentity() : this.head.w,
      'final.x': tape.final.x,
      'final.s': tape.final.stats,
      'final.g': tape.final.gamma,
    };
    for (let i = first; i < cfg.depth; i++) {
      const s = tape.blocks[i]!;
      const w = this.blocks[i]!;
      if (s.ln1.kind !== 'stats' || s.ln2.kind !== 'stats' || s.attn.kind !== 'perhead') return undefined;
      Object.assign(inputs, {
        [`${i}.ln1x`]: s.ln1.x,
        [`${i}.ln1s`]: s.ln1.stats,
        [`${i}.ln1g`]: s.ln1.gamma,
        [`${i}.ln2x`]: s.ln2.x,
        [`${i}.ln2s`]: s.ln2.stats,
        [`${i}.ln2g`]: s.ln2.gamma,
        [`${i}.qkv`]: s.attn.qkv,
        [`${i}.a`]: s.a,
        [`${i}.cdf`]: s.cdf,
        [`${i}.fc1`]: w.fc1.w,
        [`${i}.fc2`]: w.fc2.w,
        [`${i}.proj`]: w.proj.w,
        [`${i}.qkvw`]: w.qkv.w,
      });
      s.attn.p.forEach((p, h) => (inputs[`${i}.p${h}`] = p));
    }
    const attrs = {
      heads: cfg.heads,
      tokens: tape.tokens,
      depth: cfg.depth,
      first,
      stopAfterNorm2: slots[4 * first]! < 0 && slots[4 * first + 1]! < 0,
      total: layout.total,
      slots,
    };
    return runFusedKernel('WildttaBackward', inputs, attrs)[0] as tf.Tensor1D;
  }

  /**
   * Where flatBackward puts each norm's gradients: slot 2i is block i's
   * norm1, 2i + 1 its norm2, 2·depth the final norm, each with a weight and
   * a bias entry (an offset, or −1); and the lowest block with an adapted
   * norm. Null where a name is not a block or final norm, or no block norm
   * adapts.
   */
  private slotsOf({ names: order, offsets }: GradientLayout): { slots: number[]; first: number } | null {
    const depth = this.config.depth;
    const slots = new Array<number>(2 * (2 * depth + 1)).fill(-1);
    let first = depth;
    for (let k = 0; k < order.length; k++) {
      const block = /^blocks\.(\d+)\.norm([12])\.(weight|bias)$/.exec(order[k]!);
      const final = /^(norm|fc_norm)\.(weight|bias)$/.exec(order[k]!);
      if (!block && final?.[1] !== this.finalNormName) return null;
      const slot = block ? 2 * Number(block[1]) + (block[2] === '2' ? 1 : 0) : 2 * depth;
      slots[2 * slot + ((block ? block[3] : final![2]) === 'bias' ? 1 : 0)] = offsets[k]!;
      if (block) first = Math.min(first, Number(block[1]));
    }
    return first < depth ? { slots, first } : null;
  }

  /**
   * Gradients of a loss with respect to the scale/shift named in `wanted`
   * (timm names, e.g. 'blocks.0.norm1.weight'), given dLoss/dlogits [B,
   * classes] and the tape of the forward that made those logits. Stops at the
   * lowest wanted norm. `dFeatures` as in flatBackward. Inside tf.tidy.
   */
  backward(tape: FastTape, dLogits: tf.Tensor2D, wanted: ReadonlySet<string>, dFeatures?: tf.Tensor2D): Map<string, tf.Tensor1D> {
    const cfg = this.config;
    const D = cfg.width;
    const B = tape.batch;
    const N = tape.tokens;
    const R = B * N;
    const grads = new Map<string, tf.Tensor1D>();
    const want = (ln: string) => wanted.has(`${ln}.weight`) || wanted.has(`${ln}.bias`);
    let lowest = cfg.depth; // lowest block with a wanted norm
    let lowestNeedsNorm1 = false;
    for (let i = cfg.depth - 1; i >= 0; i--) {
      if (want(`blocks.${i}.norm1`) || want(`blocks.${i}.norm2`)) {
        lowest = i;
        lowestNeedsNorm1 = want(`blocks.${i}.norm1`);
      }
    }

    const fn = this.finalNormName;
    const fromHead = tf.matMul(dLogits, this.head.w);
    const dPooled = dFeatures ? (tf.add(fromHead, dFeatures) as tf.Tensor2D) : fromHead;
    let dx: tf.Tensor2D;
    if (lowest === cfg.depth) {
      // Only the final norm adapts: its gradient needs nothing below it.
      this.lnBackward(dPooled, tape.final, fn, wanted, grads, false);
      return grads;
    }
    // With token pooling only the class tokens reach the head. On the host path the last block's backward starts
    // from those rows alone; on a GPU the dozen small kernels that takes cost more than the arithmetic they save.
    let classRowsOnly = false;
    if (cfg.pool === 'token') {
      const dCls = this.lnBackward(dPooled, tape.final, fn, wanted, grads, true)!;
      classRowsOnly = this.host;
      dx = classRowsOnly
        ? dCls
        : (tf.reshape(
            tf.pad(tf.reshape(dCls, [B, 1, D]), [
              [0, 0],
              [0, N - 1],
              [0, 0],
            ]),
            [R, D],
          ) as tf.Tensor2D);
    } else if (fn === 'fc_norm') {
      const dAvg = this.lnBackward(dPooled, tape.final, fn, wanted, grads, true)!;
      const spread = tf.broadcastTo(tf.reshape(tf.div(dAvg, N - 1), [B, 1, D]), [B, N - 1, D]);
      dx = tf.reshape(
        tf.pad(spread, [
          [0, 0],
          [1, 0],
          [0, 0],
        ]),
        [R, D],
      );
    } else {
      const spread = tf.broadcastTo(tf.reshape(tf.div(dPooled, N - 1), [B, 1, D]), [B, N - 1, D]);
      const dNormed = tf.reshape(
        tf.pad(spread, [
          [0, 0],
          [1, 0],
          [0, 0],
        ]),
        [R, D],
      ) as tf.Tensor2D;
      dx = this.lnBackward(dNormed, tape.final, fn, wanted, grads, true)!;
    }

    for (let i = cfg.depth - 1; i >= lowest; i--) {
      const w = this.blocks[i]!;
      const s = tape.blocks[i]!;
      const pre = `blocks.${i}`;
      // In the last block under token pooling, dx and dx1 are nonzero at the class tokens only: [B, D] instead of [B·N, D].
      const cls = i === cfg.depth - 1 && classRowsOnly;
      const rows = <T extends tf.Tensor2D>(t: T) => (cls ? this.classRows(t, N) : t);
      // MLP: x2 = x1 + fc2(gelu(fc1(ln2(x1)))).
      const last = i === lowest && !lowestNeedsNorm1;
      const ln2 = cls ? lnRows(s.ln2, rows) : s.ln2;
      const dx1 = this.lnBackward(this.mlpBackward(dx, w, rows(s.a), rows(s.cdf)), ln2, `${pre}.norm2`, wanted, grads, !last, dx);
      if (last) break;

      // Attention: x1 = x + proj(attention(ln1(x)·W_qkv)).
      const dh1 = this.attentionBackward(dx1!, w, s.attn, B, N, cls);
      const skip = cls
        ? (tf.reshape(
            tf.pad(tf.reshape(dx1!, [B, 1, D]), [
              [0, 0],
              [0, N - 1],
              [0, 0],
            ]),
            [R, D],
          ) as tf.Tensor2D)
        : dx1;
      const dxBelow = this.lnBackward(dh1, s.ln1, `${pre}.norm1`, wanted, grads, i !== lowest, skip);
      if (i === lowest) break;
      dx = dxBelow!;
    }
    return grads;
  }

  /** [W_head; I_D], [classes + D, D], made once. */
  private headWithIdentity(): tf.Tensor2D {
    this.headEye ??= tf.tidy(() => tf.keep(tf.concat([this.head.w, tf.eye(this.config.width)], 0)));
    return this.headEye;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.headEye?.dispose();
    const lins = [this.head, ...this.blocks.flatMap((b) => [b.qkv, b.proj, b.fc1, b.fc2])];
    tf.dispose([this.patchK, this.patchPos, this.clsPos, ...lins.flatMap((l) => (l.wT ? [l.w, l.wT, l.b] : [l.w, l.b]))]);
    this.blocks.length = 0;
    tf.dispose([...this.onesRows.values()]);
    this.onesRows.clear();
  }

  /**
   * x1 = x + proj(attention(n·W_qkv)) for the block input x and its norm n,
   * with what the backward needs when `save`. At batch 1 on the host path,
   * one composite kernel (host-kernels.ts).
   */
  private attentionBlock(x: tf.Tensor2D, n: tf.Tensor2D, w: BlockWeights, B: number, N: number, save: boolean): { x1: tf.Tensor2D; attn?: AttnSaved } {
    if (B === 1 && this.host) {
      const H = this.config.heads;
      const outs = runFusedKernel(
        'WildttaAttention',
        { x, n, wqkv: w.qkv.wT!, bqkv: w.qkv.b, wo: w.proj.wT!, bo: w.proj.b },
        { heads: H, save },
      ) as tf.Tensor2D[];
      if (!save) return { x1: outs[0]! };
      return { x1: outs[0]!, attn: { kind: 'perhead', qkv: outs[1]!, p: outs.slice(2) } };
    }
    if (this.host && !save) {
      // A forward with nothing to keep (the engine's side-by-side reference, batch evaluation): attention
      // mixes tokens within an image only, so the batch-1 kernel runs per image on its rows. The generic
      // batched path below is several times slower on the host backends.
      const D = this.config.width;
      const rows = (t: tf.Tensor2D, b: number) => tf.slice(t, [b * N, 0], [N, D]);
      const per = Array.from({ length: B }, (_, b) => this.attentionBlock(rows(x, b), rows(n, b), w, 1, N, false).x1);
      return { x1: tf.concat(per, 0) as tf.Tensor2D };
    }
    const { o, saved } = this.attention(this.linear(n, w.qkv), B, N);
    return { x1: tf.add(x, this.linear(o, w.proj)) as tf.Tensor2D, attn: saved };
  }

  /** x2 = x1 + fc2(GELU(fc1(n))), with GELU's input a and Φ(a) when `save`; on the host path one composite kernel. */
  private mlpBlock(x1: tf.Tensor2D, n: tf.Tensor2D, w: BlockWeights, save: boolean): { x2: tf.Tensor2D; a?: tf.Tensor2D; cdf?: tf.Tensor2D } {
    if (this.host) {
      const [x2, a, cdf] = runFusedKernel('WildttaMlp', { x: x1, n, w1: w.fc1.wT!, b1: w.fc1.b, w2: w.fc2.wT!, b2: w.fc2.b }, { save }) as tf.Tensor2D[];
      return { x2: x2!, a, cdf };
    }
    const a = this.linear(n, w.fc1);
    const { y: g, cdf } = this.gelu(a);
    return { x2: tf.add(x1, this.linear(g, w.fc2)) as tf.Tensor2D, a, cdf };
  }

  /** Multi-head attention o = softmax(q·kᵀ)·v per head, from qkv [B·N, 3D] to o [B·N, D] (scale folded into q), batched over heads. */
  private attention(qkv: tf.Tensor2D, B: number, N: number): { o: tf.Tensor2D; saved: AttnSaved } {
    const { width: D, heads: H } = this.config;
    const hd = D / H;
    // [B·N, 3D] → [3, B·H, N, d_head]: one transpose gives q, k, v split by head.
    const split = tf.transpose(tf.reshape(qkv, [B, N, 3, H, hd]), [2, 0, 3, 1, 4]);
    const [q, k, v] = tf.split(tf.reshape(split, [3 * B * H, N, hd]), 3, 0) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
    const p = tf.softmax(tf.matMul(q, k, false, true)) as tf.Tensor3D;
    const o = tf.reshape(tf.transpose(tf.reshape(tf.matMul(p, v), [B, H, N, hd]), [0, 2, 1, 3]), [B * N, D]) as tf.Tensor2D;
    return { o, saved: { kind: 'heads', q, k, v, p } };
  }

  /** dL/d(fc1's input) from dL/d(fc2's output): fc2ᵀ, GELU's backward, fc1ᵀ (one composite kernel on the host path). */
  private mlpBackward(dy: tf.Tensor2D, w: BlockWeights, a: tf.Tensor2D, cdf: tf.Tensor2D): tf.Tensor2D {
    if (this.host) return runFusedKernel('WildttaMlpGrad', { dy, w2: w.fc2.w, a, cdf, w1: w.fc1.w })[0] as tf.Tensor2D;
    return tf.matMul(this.geluBackward(tf.matMul(dy, w.fc2.w), a, cdf), w.fc1.w);
  }

  /**
   * dL/d(qkv's input) from dL/d(proj's output), through proj, attention and
   * qkv (at batch 1 on the host path, one composite kernel; in the last
   * block under token pooling, from the class tokens' rows: `cls`).
   */
  private attentionBackward(dy: tf.Tensor2D, w: BlockWeights, s: AttnSaved, B: number, N: number, cls: boolean): tf.Tensor2D {
    const H = this.config.heads;
    if (s.kind === 'perhead' && !cls) {
      const inputs: Record<string, tf.Tensor> = { dy, wo: w.proj.w, wqkv: w.qkv.w, qkv: s.qkv };
      s.p.forEach((p, h) => (inputs[`p${h}`] = p));
      return runFusedKernel('WildttaAttentionGrad', inputs, { heads: H })[0] as tf.Tensor2D;
    }
    const dO = tf.matMul(dy, w.proj.w) as tf.Tensor2D;
    return tf.matMul(cls ? this.classAttentionBackward(dO, s, B, N) : this.headsBackward(dO, s, B, N), w.qkv.w);
  }

  /** dL/dqkv [B·N, 3D] from dL/do [B·N, D], batched over heads. */
  private headsBackward(dO: tf.Tensor2D, s: AttnSaved, B: number, N: number): tf.Tensor2D {
    if (s.kind !== 'heads') throw new Error('batched attention backward needs the batched tape');
    // On WebGPU three dispatches (gpu-kernels.ts); the host keeps XNNPACK's batched products, faster than a JavaScript loop.
    if (this.fused && !this.host) return runFusedKernel('WildttaHeadsGrad', { dO, q: s.q, k: s.k, v: s.v, p: s.p })[0] as tf.Tensor2D;
    const { width: D, heads: H } = this.config;
    const hd = D / H;
    const dOh = tf.reshape(tf.transpose(tf.reshape(dO, [B, N, H, hd]), [0, 2, 1, 3]), [B * H, N, hd]) as tf.Tensor3D;
    const dv = tf.matMul(s.p, dOh, true, false) as tf.Tensor3D;
    const dP = tf.matMul(dOh, s.v, false, true);
    // Softmax backward per head: dS = P ⊙ (dP − Σ_row dP ⊙ P).
    const dS = (
      this.fused ? runFusedKernel('WildttaSoftmaxBackward', { dP, p: s.p })[0]! : tf.mul(s.p, tf.sub(dP, tf.sum(tf.mul(dP, s.p), -1, true)))
    ) as tf.Tensor3D;
    return this.mergeHeads(tf.matMul(dS, s.k), tf.matMul(dS, s.q, true, false), dv, B, N);
  }

  /**
   * dL/dqkv [B·N, 3D] when dL/do [B, D] is nonzero at the class tokens only:
   * just their queries get a gradient, and each head's dk and dv are outer
   * products (dk = dSᵀ·q_cls, dv = P_clsᵀ·dO), so no N×N product is needed.
   */
  private classAttentionBackward(dO: tf.Tensor2D, s: AttnSaved, B: number, N: number): tf.Tensor2D {
    const { width: D, heads: H } = this.config;
    const hd = D / H;
    if (s.kind === 'perhead') return runFusedKernel('WildttaClassAttentionGrad', { dO, qkv: s.qkv }, { heads: H })[0] as tf.Tensor2D;
    const q0 = tf.slice(s.q, [0, 0, 0], [B * H, 1, hd]);
    const p0 = tf.slice(s.p, [0, 0, 0], [B * H, 1, N]);
    const dOh = tf.reshape(dO, [B * H, 1, hd]);
    const dP = tf.matMul(dOh, s.v, false, true);
    const dS = (
      this.fused ? runFusedKernel('WildttaSoftmaxBackward', { dP, p: p0 })[0]! : tf.mul(p0, tf.sub(dP, tf.sum(tf.mul(dP, p0), -1, true)))
    ) as tf.Tensor3D;
    const dq = tf.pad(tf.matMul(dS, s.k), [
      [0, 0],
      [0, N - 1],
      [0, 0],
    ]) as tf.Tensor3D;
    return this.mergeHeads(dq, tf.matMul(dS, q0, true, false), tf.matMul(p0, dOh, true, false), B, N);
  }

  /** Per-head dq, dk, dv [B·H, N, d_head] back into the qkv layout [B·N, 3D]. */
  private mergeHeads(dq: tf.Tensor3D, dk: tf.Tensor3D, dv: tf.Tensor3D, B: number, N: number): tf.Tensor2D {
    const { width: D, heads: H } = this.config;
    if (this.fused) return runFusedKernel('WildttaHeadsMerge', { dq, dk, dv }, { batch: B })[0] as tf.Tensor2D;
    const dqkv = tf.transpose(tf.reshape(tf.stack([dq, dk, dv]), [3, B, H, N, D / H]), [1, 3, 0, 2, 4]);
    return tf.reshape(dqkv, [B * N, 3 * D]) as tf.Tensor2D;
  }

  /** Rows 0, N, 2N, … (each image's class token) of [B·N, C]. */
  private classRows<T extends tf.Tensor2D>(t: T, N: number): T {
    if (this.host) return runFusedKernel('WildttaEveryNthRow', { x: t }, { every: N })[0] as T;
    const [R, C] = t.shape;
    return tf.stridedSlice(t, [0, 0], [R, C], [N, 1]) as T;
  }

  /**
   * Σ over rows of [R, C] as ones[1, R]·x: a reduction over a leading axis
   * costs tfjs-wasm a transpose first, a 2-D product does not.
   */
  private colSum(x: tf.Tensor): tf.Tensor1D {
    const [R, C] = x.shape as [number, number];
    let ones = this.onesRows.get(R);
    if (!ones) {
      ones = tf.keep(tf.ones([1, R])) as tf.Tensor2D;
      this.onesRows.set(R, ones);
    }
    return tf.reshape(tf.matMul(ones, x as tf.Tensor2D), [C]) as tf.Tensor1D;
  }

  /** x·Wᵀ + b, as an untransposed product where the [in, out] layout is kept. */
  private linear(x: tf.Tensor2D, l: Lin): tf.Tensor2D {
    if (!l.wT) return tf.fused.matMul({ a: x, b: l.w, transposeB: true, bias: l.b }) as tf.Tensor2D;
    // The kernel itself, skipping tf.fused.matMul's checks and reshapes of the weight: a third of this call's cost at 50×64.
    const [R, K] = x.shape;
    const out = tf.engine().runKernel('_FusedMatMul', { a: tf.reshape(x, [1, R, K]), b: l.wT, bias: l.b }, FUSED_LINEAR) as tf.Tensor;
    return tf.reshape(out, [R, l.wT.shape[2]]) as tf.Tensor2D;
  }

  /** Same arithmetic as vit.ts's layerNorm (moments, then (x − μ)·rsqrt(σ² + ε)·γ + β). */
  private layerNorm(x: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor, save: boolean): { y: tf.Tensor2D; saved?: LnSaved } {
    if (this.fused) {
      const [y, stats] = runFusedKernel('WildttaLayerNorm', { x, gamma, beta }, { eps: this.config.normEps, save }) as tf.Tensor2D[];
      return save ? { y: y!, saved: { kind: 'stats', x, stats: stats!, gamma } } : { y: y! };
    }
    const mean = tf.mean(x, -1, true);
    const variance = tf.mean(tf.squaredDifference(x, mean), -1, true);
    const rstd = tf.rsqrt(tf.add(variance, this.config.normEps)) as tf.Tensor2D;
    const xhat = tf.mul(tf.sub(x, mean), rstd) as tf.Tensor2D;
    return { y: tf.add(tf.mul(xhat, gamma), beta) as tf.Tensor2D, saved: { kind: 'xhat', xhat, rstd, gamma } };
  }

  /**
   * dγ, dβ (into `grads` when wanted) and, if `needInput`, dL/dx of
   * y = x̂·γ + β, plus `residual` (the gradient reaching x by the skip
   * connection) when given.
   */
  private lnBackward(
    dy: tf.Tensor,
    s: LnSaved,
    ln: string,
    wanted: ReadonlySet<string>,
    grads: Map<string, tf.Tensor1D>,
    needInput: boolean,
    residual?: tf.Tensor2D,
  ): tf.Tensor2D | undefined {
    const D = this.config.width;
    const dy2 = tf.reshape(dy, [-1, D]);
    if (s.kind === 'stats') {
      const inputs: Record<string, tf.Tensor> = { dy: dy2, x: s.x, stats: s.stats, gamma: s.gamma };
      if (residual) inputs.residual = residual;
      const [dg, db, dx] = runFusedKernel('WildttaLayerNormGrad', inputs, { needInput });
      if (wanted.has(`${ln}.weight`)) grads.set(`${ln}.weight`, dg as tf.Tensor1D);
      if (wanted.has(`${ln}.bias`)) grads.set(`${ln}.bias`, db as tf.Tensor1D);
      return dx as tf.Tensor2D | undefined;
    }
    if (wanted.has(`${ln}.weight`)) grads.set(`${ln}.weight`, this.colSum(tf.mul(dy2, s.xhat)));
    if (wanted.has(`${ln}.bias`)) grads.set(`${ln}.bias`, this.colSum(dy2));
    if (!needInput) return undefined;
    // dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), dx̂ = dy · γ.
    const dxhat = tf.mul(dy2, s.gamma);
    const centered = tf.sub(dxhat, tf.mean(dxhat, -1, true));
    const proj = tf.mul(s.xhat, tf.mean(tf.mul(dxhat, s.xhat), -1, true));
    const dx = tf.mul(tf.sub(centered, proj), s.rstd) as tf.Tensor2D;
    return residual ? (tf.add(residual, dx) as tf.Tensor2D) : dx;
  }

  /** Exact GELU as a·Φ(a), Φ(a) = ½(1 + erf(a/√2)) kept for the backward. */
  private gelu(a: tf.Tensor2D): { y: tf.Tensor2D; cdf: tf.Tensor2D } {
    // Five tfjs kernels here beat one host kernel: wasm's SIMD erf is 3-4× faster than JavaScript's.
    // (a·((e+1)·½) equals ½a·(e+1) bit for bit.)
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(a, Math.SQRT1_2)), 1), 0.5) as tf.Tensor2D;
    return { y: tf.mul(a, cdf) as tf.Tensor2D, cdf };
  }

  /**
   * dy·GELU'(a), GELU'(a) = Φ(a) + a·φ(a). Taken here, not in the forward, so
   * that a forward whose sample turns out unreliable costs no more than
   * inference.
   */
  private geluBackward(dy: tf.Tensor2D, a: tf.Tensor2D, cdf: tf.Tensor2D): tf.Tensor2D {
    if (this.fused) return runFusedKernel('WildttaGeluGrad', { dy, a, cdf })[0] as tf.Tensor2D;
    const aPdf = tf.mul(a, tf.exp(tf.mul(tf.square(a), -0.5)));
    return tf.mul(dy, tf.add(cdf, tf.mul(aPdf, INV_SQRT_2PI))) as tf.Tensor2D;
  }
}
