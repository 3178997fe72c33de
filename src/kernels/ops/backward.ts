// A model's backward walk on tfjs tensors: each step is an op through its
// entry point (so the backend's own kernels run where it has them), and the
// adapted norms' gradients are laid end to end at the end.
import * as tf from '@tensorflow/tfjs-core';
import { entry } from '../registry';
import type { BackwardArgs, BackwardWalk, GradOps } from '../types';

const layerNormGrad = entry('layerNormGrad');
const mlpGrad = entry('mlpGrad');
const attentionGrad = entry('attentionGrad');
const classRows = entry('classRows');

/** `values` by name, laid end to end in the layout's order. Inside tf.tidy. */
export function concatByLayout(values: ReadonlyMap<string, tf.Tensor>, layout: BackwardArgs['layout']): tf.Tensor1D {
  if (layout.names.length === 0) return tf.zeros([0]);
  return tf.concat(
    layout.names.map((n) => {
      const t = values.get(n);
      if (!t) throw new Error(`no value for ${n}`);
      return t.rank === 1 ? t : tf.reshape(t, [-1]);
    }),
  ) as tf.Tensor1D;
}

/**
 * Runs `walk` on tensors. `classRowsFirst`: whether the last block's
 * backward under token pooling starts from the class tokens' rows (the
 * host's choice; a GPU's is not to). Inside tf.tidy.
 */
export function runBackwardOnTensors(args: BackwardArgs, walk: BackwardWalk, classRowsFirst: boolean): tf.Tensor1D {
  const { batch: B, tokens: N } = args.shape;
  const D = args.head.w.shape[1];
  const R = B * N;
  const wanted = new Set(args.layout.names);
  const grads = new Map<string, tf.Tensor>();
  const rows = (t: tf.Tensor2D, on: boolean | undefined) => (on ? classRows(t, N) : t);
  const ops: GradOps<tf.Tensor2D> = {
    classRowsFirst,
    headGrad() {
      const fromHead = tf.matMul(args.dLogits, args.head.w) as tf.Tensor2D;
      return args.dFeatures ? (tf.add(fromHead, args.dFeatures) as tf.Tensor2D) : fromHead;
    },
    normGrad(dy, saved, name, needInput, residual, onClassRows) {
      const s =
        saved.kind === 'stats'
          ? { ...saved, x: rows(saved.x, onClassRows), stats: rows(saved.stats, onClassRows) }
          : { ...saved, xhat: rows(saved.xhat, onClassRows), rstd: rows(saved.rstd, onClassRows) };
      const { dGamma, dBeta, dx } = layerNormGrad(dy, s, needInput, residual);
      if (wanted.has(`${name}.weight`)) grads.set(`${name}.weight`, dGamma);
      if (wanted.has(`${name}.bias`)) grads.set(`${name}.bias`, dBeta);
      return dx;
    },
    mlpGrad: (dy, block, a, cdf, onClassRows) => mlpGrad(dy, args.blocks[block]!, rows(a, onClassRows), rows(cdf, onClassRows)),
    attentionGrad: (dy, block, saved, onClassRows) => attentionGrad(dy, args.blocks[block]!, saved, args.shape, onClassRows),
    padClassRows: (t) =>
      tf.reshape(
        tf.pad(tf.reshape(t, [B, 1, D]), [
          [0, 0],
          [0, N - 1],
          [0, 0],
        ]),
        [R, D],
      ),
    spreadPatchMean: (d) =>
      tf.reshape(
        tf.pad(tf.broadcastTo(tf.reshape(tf.div(d, N - 1), [B, 1, D]), [B, N - 1, D]), [
          [0, 0],
          [1, 0],
          [0, 0],
        ]),
        [R, D],
      ),
    // tf.tidy frees the intermediates.
    free() {},
  };
  walk(ops);
  return concatByLayout(grads, args.layout);
}

export const backwardOps = {
  runBackward: (args: BackwardArgs, walk: BackwardWalk) => runBackwardOnTensors(args, walk, false),
};
