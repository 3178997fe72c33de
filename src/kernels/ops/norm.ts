// A convolutional network's GroupNorm, its max pool's gradient and the
// weaving of a strided conv's input gradient in tfjs ops: what runs on a
// backend without its own kernels for them (webgl, webgpu), and the
// reference the host kernels are tested against.
import * as tf from '@tensorflow/tfjs-core';
import type { Kernels } from '../types';

export const normOps = {
  groupNorm(x, scale, shift, { groups: G, epsTensor, relu }) {
    const [B, H, W, C] = x.shape;
    const grouped = tf.reshape(x, [B, H, W, G, C / G]);
    // Mean, then the mean squared deviation from it: tf.moments' values.
    const deviation = tf.sub(grouped, tf.mean(grouped, [1, 2, 4], true));
    const inv = tf.rsqrt(tf.add(tf.mean(tf.square(deviation), [1, 2, 4], true), epsTensor));
    const xhat = tf.reshape(tf.mul(deviation, inv), [B, H, W, C]) as tf.Tensor4D;
    const affine = tf.add(tf.mul(xhat, scale), shift) as tf.Tensor4D;
    return { y: relu ? (tf.relu(affine) as tf.Tensor4D) : affine, xhat, inv: tf.reshape(inv, [B, G]) as tf.Tensor2D };
  },

  groupNormGrad(dy, xhat, inv, scale, y, { groups: G, inputGrad }) {
    const d = y ? tf.mul(dy, tf.step(y)) : dy;
    const dScale = tf.sum(tf.mul(d, xhat), [0, 1, 2]) as tf.Tensor1D;
    const dShift = tf.sum(d, [0, 1, 2]) as tf.Tensor1D;
    if (!inputGrad) return { dScale, dShift };
    const [B, H, W, C] = dy.shape;
    // dx = σ⁻¹ (dx̂ − mean_g(dx̂) − x̂ · mean_g(dx̂·x̂)), dx̂ = dy·γ, means over each group's H, W and C/G.
    const dNormed = tf.reshape(tf.mul(d, scale), [B, H, W, G, C / G]);
    const xhatGrouped = tf.reshape(xhat, [B, H, W, G, C / G]);
    const centred = tf.sub(dNormed, tf.mean(dNormed, [1, 2, 4], true));
    const projected = tf.sub(centred, tf.mul(xhatGrouped, tf.mean(tf.mul(dNormed, xhatGrouped), [1, 2, 4], true)));
    const dx = tf.mul(projected, tf.reshape(inv, [B, 1, 1, G, 1]));
    return { dScale, dShift, dx: tf.reshape(dx, [B, H, W, C]) as tf.Tensor4D };
  },

  maxPoolGrad: (dy, x, y, { size, stride, pad }) =>
    tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, { filterSize: size, strides: stride, pad }) as tf.Tensor4D,

  interleavePhases(phases, s, H, W) {
    const [B, rows, cols, C] = phases[0]!.shape;
    // Phase 0 is the longest on each axis: the others pad up to it, and the woven grid is cut to H × W.
    const even = phases.map((t) =>
      t === undefined
        ? tf.zeros([B, rows, cols, C])
        : t.shape[1] === rows && t.shape[2] === cols
          ? t
          : tf.pad(t, [
              [0, 0],
              [0, rows - t.shape[1]],
              [0, cols - t.shape[2]],
              [0, 0],
            ]),
    );
    // Two stacks, columns then rows (tfjs-wasm's Concat copies whole runs; its DepthToSpace, one float at a time, took 5% of a ResNet-50 step).
    const band = (ah: number) => tf.reshape(tf.stack(even.slice(ah * s, ah * s + s), 3), [B, rows, s * cols, C]);
    const grid = tf.reshape(
      tf.stack(
        Array.from({ length: s }, (_, ah) => band(ah)),
        2,
      ),
      [B, s * rows, s * cols, C],
    ) as tf.Tensor4D;
    return s * rows === H && s * cols === W ? grid : tf.slice(grid, [0, 0, 0, 0], [B, H, W, C]);
  },
} satisfies Pick<Kernels, 'groupNorm' | 'groupNormGrad' | 'maxPoolGrad' | 'interleavePhases'>;
