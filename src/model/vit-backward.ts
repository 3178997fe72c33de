// The ViT's hand-written backward for its LayerNorms' scale and shift,
// written once: the vector-Jacobian product from the logits down to the
// lowest adapted norm, through the tape vit.ts's forward keeps. No weight
// gradient is ever formed. The kernels run each step (src/kernels: on the
// host at batch 1 the whole walk is one engine call).
//
// Why not tf.grads: the tape cannot outlive the GPU→CPU read that decides
// whether a sample is reliable, so the prediction's forward would have to
// run again for the first gradient; and tfjs's generic gradients compute
// weight gradients nobody wants and spend kernels on LayerNorm, GELU and
// softmax.
import * as tf from '@tensorflow/tfjs-core';
import { savedTensors, type AttnSaved, type BackwardWalk, type GradOps, type LnSaved } from '../kernels';
import type { BackboneTape } from './backbone';
import type { ViTConfig } from './config';

/** What one forward keeps for the backward: each norm's saved tensors by name, each block's attention and GELU input. */
export class ViTTape implements BackboneTape {
  readonly norms = new Map<string, LnSaved>();
  readonly attention: AttnSaved[] = [];
  readonly gelu: Array<{ a: tf.Tensor2D; cdf: tf.Tensor2D }> = [];
  /** The tokens entering block 0, [B·N, D] (SAM's second forward on the same images reuses them). */
  embedded: tf.Tensor2D | undefined;
  private kept = false;

  constructor(
    readonly batch: number,
    readonly tokens: number,
  ) {}

  norm(name: string): LnSaved {
    const s = this.norms.get(name);
    if (!s) throw new Error(`the tape has no ${name}`);
    return s;
  }

  /** Keeps the saved tensors past the enclosing tf.tidy (then call dispose). */
  keep(): void {
    this.kept = true;
    for (const t of this.tensors()) tf.keep(t);
  }

  dispose(): void {
    if (!this.kept) return;
    this.kept = false;
    for (const t of this.tensors()) t.dispose();
  }

  private tensors(): tf.Tensor[] {
    const out: tf.Tensor[] = this.embedded ? [this.embedded] : [];
    for (const s of this.norms.values()) out.push(...savedTensors(s));
    for (const s of this.attention) out.push(...savedTensors(s));
    for (const g of this.gelu) out.push(g.a, g.cdf);
    return out;
  }
}

/**
 * The walk for `tape` and the adapted norms `names`: the head, the final
 * norm and pooling, then each block down to the lowest adapted one (its
 * norm2 only when its norm1 does not adapt). Under token pooling only the
 * class tokens reach the head; where the kernels prefer it, the last block's
 * MLP and norm2 run on their rows alone and attention's gradient is taken
 * from them (outer products per head).
 */
export function vitBackward(cfg: ViTConfig, finalNorm: 'norm' | 'fc_norm', tape: ViTTape, names: readonly string[]): BackwardWalk {
  const wanted = new Set(names);
  const adapts = (ln: string) => wanted.has(`${ln}.weight`) || wanted.has(`${ln}.bias`);
  let lowest = cfg.depth; // the lowest block with an adapted norm
  let lowestNeedsNorm1 = false;
  for (let i = cfg.depth - 1; i >= 0; i--) {
    if (adapts(`blocks.${i}.norm1`) || adapts(`blocks.${i}.norm2`)) {
      lowest = i;
      lowestNeedsNorm1 = adapts(`blocks.${i}.norm1`);
    }
  }
  const final = tape.norm(finalNorm);
  return <T>(o: GradOps<T>): void => {
    const dPooled = o.headGrad();
    if (lowest === cfg.depth) {
      // Only the final norm adapts: its gradient needs nothing below it.
      o.normGrad(dPooled, final, finalNorm, false);
      o.free(dPooled);
      return;
    }
    const classRowsOnly = cfg.pool === 'token' && o.classRowsFirst;
    let dx: T;
    if (cfg.pool === 'token') {
      const dCls = o.normGrad(dPooled, final, finalNorm, true)!;
      dx = classRowsOnly ? dCls : o.padClassRows(dCls);
      if (!classRowsOnly) o.free(dCls);
    } else if (finalNorm === 'fc_norm') {
      const dAvg = o.normGrad(dPooled, final, finalNorm, true)!;
      dx = o.spreadPatchMean(dAvg);
      o.free(dAvg);
    } else {
      const spread = o.spreadPatchMean(dPooled);
      dx = o.normGrad(spread, final, finalNorm, true)!;
      o.free(spread);
    }
    o.free(dPooled);

    for (let i = cfg.depth - 1; i >= lowest; i--) {
      const pre = `blocks.${i}`;
      const { a, cdf } = tape.gelu[i]!;
      // In the last block under token pooling, dx and dx1 are nonzero at the class tokens only: [B, D] instead of [B·N, D].
      const cls = i === cfg.depth - 1 && classRowsOnly;
      // MLP: x2 = x1 + fc2(gelu(fc1(ln2(x1)))).
      const last = i === lowest && !lowestNeedsNorm1;
      const dm = o.mlpGrad(dx, i, a, cdf, cls);
      const dx1 = o.normGrad(dm, tape.norm(`${pre}.norm2`), `${pre}.norm2`, !last, dx, cls);
      o.free(dm, dx);
      if (last) return;

      // Attention: x1 = x + proj(attention(ln1(x)·W_qkv)).
      const dh1 = o.attentionGrad(dx1!, i, tape.attention[i]!, cls);
      const skip = cls ? o.padClassRows(dx1!) : dx1!;
      const below = o.normGrad(dh1, tape.norm(`${pre}.norm1`), `${pre}.norm1`, i !== lowest, skip);
      o.free(dh1, dx1, cls ? skip : undefined);
      if (i === lowest) return;
      dx = below!;
    }
  };
}
