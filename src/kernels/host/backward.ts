// A model's backward walk in one engine call on the host at batch 1: every
// step on the backend's raw tensor infos, none of its intermediates a tfjs
// tensor, each freed as soon as the walk is done with it; the adapted norms'
// gradients written straight into one vector in the layout's order. At the
// shipped model's size this is one engine call for what is some forty as
// tensor ops (ops/backward.ts, which the host runs at other batch sizes).
import * as tf from '@tensorflow/tfjs-core';
import { runBackwardOnTensors } from '../ops/backward';
import type { BackwardArgs, BackwardWalk, GradOps, Linear } from '../types';
import { composites } from './composites';
import { runKernel } from '../calls';
import { call, freeInfos, gradientVector, product, runComposite, type Composite } from './glue';
import { PACKED_BACKWARD as PACKED, packedBackward } from './packed';
import { vitKernels } from './vit-kernels';

/** [W_head; I_D], [classes + D, D]: dL/dpooled = [dLogits, dFeatures]·[W_head; I] in one product. Kept with the Linear. */
function headWithIdentity(head: Linear): tf.Tensor2D {
  let t = head.derived.get('withIdentity') as tf.Tensor2D | undefined;
  if (!t) {
    t = tf.tidy(() => tf.keep(tf.concat([head.w, tf.eye(head.w.shape[1])], 0)));
    head.derived.set('withIdentity', t);
  }
  return t;
}

/** The packed weights that exist, by the names a composite takes. */
function packedOf(linears: Record<string, Linear>): Record<string, tf.TensorInfo> {
  const out: Record<string, tf.TensorInfo> = {};
  for (const [name, l] of Object.entries(linears)) {
    const p = l.derived.get(PACKED);
    if (p) out[name] = p;
  }
  return out;
}

/** The walk's host kernel; its attrs carry the walk and its arguments (tfjs hands attrs to the kernel untouched). */
export const backwardComposite = {
  WildttaBackward(host, inputs, attrs, made) {
    const { args, walk } = attrs as unknown as { args: BackwardArgs; walk: BackwardWalk };
    const { layout, blocks } = args;
    const { tokens: N, heads: H } = args.shape;
    const { out, put } = gradientVector(host, made, layout);
    const free = (...ts: Array<tf.TensorInfo | undefined>) => freeInfos(host, ...ts);
    const classRows = (t: tf.TensorInfo) => made(call(vitKernels.WildttaEveryNthRow, host, [t], { every: N }))[0]!;
    /** [B, D] → [B·N, D] with row b at b·N, zeros elsewhere. */
    const spread = (t: tf.TensorInfo, fill: (src: Float32Array, dst: Float32Array, D: number) => void) => {
      const D = t.shape[1]!;
      const full = made(host.make([t.shape[0]! * N, D]));
      const dst = host.values(full); // a view taken after the last allocation
      dst.fill(0);
      fill(host.values(t), dst, D);
      return full;
    };
    const ops: GradOps<tf.TensorInfo> = {
      classRowsFirst: true,
      headGrad: () => made(host.matMul(inputs.dLogits!, inputs.headW!)),
      normGrad(dy, saved, name, needInput, residual, onClassRows) {
        if (saved.kind !== 'stats') throw new Error('the host backward needs the LayerNorm kernel’s tape');
        const x = onClassRows ? classRows(saved.x) : saved.x;
        const stats = onClassRows ? classRows(saved.stats) : saved.stats;
        const [dg, db, dx] = made(call(vitKernels.WildttaLayerNormGrad, host, [dy, x, stats, saved.gamma, residual], { needInput }));
        put(name, dg!, db!);
        if (onClassRows) free(x, stats);
        return dx;
      },
      mlpGrad(dy, block, a, cdf, onClassRows) {
        const w = blocks[block]!;
        const ra = onClassRows ? classRows(a) : a;
        const rc = onClassRows ? classRows(cdf) : cdf;
        const inputs = { dy, w2: w.fc2.w, a: ra, cdf: rc, w1: w.fc1.w, ...packedOf({ p2: w.fc2, p1: w.fc1 }) };
        const [dm] = runComposite(composites.WildttaMlpGrad, host, inputs, {}, made);
        if (onClassRows) free(ra, rc);
        return dm!;
      },
      attentionGrad(dy, block, saved, onClassRows) {
        if (saved.kind !== 'perhead') throw new Error('the host backward needs the per-head attention tape');
        const w = blocks[block]!;
        if (onClassRows) {
          // Attention's gradient from the class token's row: outer products per head.
          const dO = made(product(host, dy, w.proj.w, w.proj.derived.get(PACKED)));
          const [dqkv] = made(call(vitKernels.WildttaClassAttentionGrad, host, [dO, saved.qkv], { heads: H }));
          const dh = made(product(host, dqkv!, w.qkv.w, w.qkv.derived.get(PACKED)));
          free(dO, dqkv);
          return dh;
        }
        const ps = Object.fromEntries(saved.p.map((p, h) => [`p${h}`, p]));
        const inputs = { dy, wo: w.proj.w, wqkv: w.qkv.w, qkv: saved.qkv, ...ps, ...packedOf({ pwo: w.proj, pwqkv: w.qkv }) };
        return runComposite(composites.WildttaAttentionGrad, host, inputs, { heads: H }, made)[0]!;
      },
      padClassRows: (t) =>
        spread(t, (src, dst, D) => {
          for (let b = 0; b * D < src.length; b++) dst.set(src.subarray(b * D, (b + 1) * D), b * N * D);
        }),
      spreadPatchMean: (t) =>
        spread(t, (src, dst, D) => {
          for (let b = 0; b * D < src.length; b++) {
            for (let n = 1; n < N; n++) for (let d = 0; d < D; d++) dst[(b * N + n) * D + d] = src[b * D + d]! / (N - 1);
          }
        }),
      free,
    };
    walk(ops);
    return [out];
  },
} satisfies Record<string, Composite>;

/** runBackward on the host: the walk in one engine call at batch 1, as tensor ops (class rows first) otherwise. */
export function runBackwardOnHost(args: BackwardArgs, walk: BackwardWalk): tf.Tensor1D {
  if (args.shape.batch !== 1) return runBackwardOnTensors(args, walk, true);
  for (const b of args.blocks) for (const l of [b.qkv, b.proj, b.fc1, b.fc2]) packedBackward(l);
  const { dLogits, dFeatures } = args;
  // dPooled = dLogits·W_head + dFeatures as one product of [dLogits, dFeatures] with [W_head; I].
  const inputs = dFeatures ? { dLogits: tf.concat([dLogits, dFeatures], 1), headW: headWithIdentity(args.head) } : { dLogits, headW: args.head.w };
  return runKernel('WildttaBackward', inputs, { args, walk })[0] as tf.Tensor1D;
}
