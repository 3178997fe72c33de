// A convolutional network's backward walk on tfjs tensors: each step an op
// through its entry point (so the backend's own kernels run where it has
// them), the adapted norms' gradients laid end to end at the end.
import * as tf from '@tensorflow/tfjs-core';
import { entry } from '../registry';
import { concatByLayout } from './backward';
import type { ConvBackwardArgs, ConvBackwardWalk, ConvGradOps, ConvPiece } from '../types';

const groupNormGrad = entry('groupNormGrad');
const maxPoolGrad = entry('maxPoolGrad');
const interleavePhases = entry('interleavePhases');

/** A stride-1 conv of x with a piece's filter and padding, x cropped first where a padding is negative. */
export function convPiece(x: tf.Tensor4D, { filter, pads }: ConvPiece): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const [top, bottom, left, right] = pads.map((n) => Math.max(0, -n)) as [number, number, number, number];
  const input = top + bottom + left + right > 0 ? tf.slice(x, [0, top, left, 0], [B, H - top - bottom, W - left - right, C]) : x;
  return tf.conv2d(input, filter, 1, [
    [0, 0],
    [Math.max(0, pads[0]), Math.max(0, pads[1])],
    [Math.max(0, pads[2]), Math.max(0, pads[3])],
    [0, 0],
  ]);
}

/** Runs `walk` on tensors. Inside tf.tidy. */
export function runConvBackwardOnTensors(args: ConvBackwardArgs, walk: ConvBackwardWalk): tf.Tensor1D {
  const wanted = new Set(args.layout.names);
  const grads = new Map<string, tf.Tensor>();
  const ops: ConvGradOps<tf.Tensor> = {
    headGrad() {
      const fromHead = tf.matMul(args.dLogits, args.headW);
      return args.dFeatures ? tf.add(fromHead, args.dFeatures) : fromHead;
    },
    spreadMean(dy, shape, scale) {
      const [B, H, W, D] = shape as [number, number, number, number];
      if (H * W === 1) return tf.reshape(dy, [B, 1, 1, D]);
      return tf.broadcastTo(tf.reshape(tf.mul(dy, scale), [B, 1, 1, D]), [B, H, W, D]);
    },
    groupNormGrad(dy, { xhat, inv, scale, groups }, name, inputGrad, mask) {
      const g = groupNormGrad(dy as tf.Tensor4D, xhat, inv, scale, mask, { groups, inputGrad });
      if (wanted.has(`${name}.weight`)) grads.set(`${name}.weight`, g.dScale);
      if (wanted.has(`${name}.bias`)) grads.set(`${name}.bias`, g.dShift);
      return g.dx;
    },
    reluGrad: (dy, out) => tf.mul(dy, tf.step(out)),
    add: (a, b) => tf.add(a, b),
    maxPoolGrad: (dy, x, y, o) => maxPoolGrad(dy as tf.Tensor4D, x, y, o),
    conv: (x, piece) => convPiece(x as tf.Tensor4D, piece),
    interleave: (phases, stride, height, width) => interleavePhases(phases as Array<tf.Tensor4D | undefined>, stride, height, width),
    zeros: (shape) => tf.zeros(shape as number[]),
    // Early, not at the tidy's end: on a GPU a 224 px ResNet's intermediates add up. The walk never frees a saved tensor.
    free: (...ts) => tf.dispose(ts.filter((t) => t !== undefined)),
  };
  walk(ops);
  return concatByLayout(grads, args.layout);
}

export const convBackwardOps = {
  runConvBackward: runConvBackwardOnTensors,
};
