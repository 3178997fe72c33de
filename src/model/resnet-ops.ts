// The GroupNorm ResNet's differentiable pieces as single tfjs ops with their
// backward written out (tf.customGrad), for adaptation through tf.grads.
// Autodiff of the plain ops records every kernel on the tape, copies each
// kernel's saved inputs (a conv's filter, every step) and runs a backward of
// four to five kernels per forward kernel; at this model's sizes each kernel
// costs a few µs of fixed overhead on wasm, so that was most of a reliable
// SAR step. Each op computes the same forward values as the plain ops, and
// gradients only for what can depend on the adapted norms: never a filter.
import * as tf from '@tensorflow/tfjs-core';
import { groupNorm, groupNormGrad } from '../kernels';

export type GroupNormFn = (x: tf.Tensor4D, scale: tf.Tensor, shift: tf.Tensor) => tf.Tensor4D;

/**
 * tf.conv2d with a frozen filter: its gradient is the input's only. Nothing
 * is saved: the filter is the model's, alive as long as it is. With
 * `flipped` (the filter turned 180° with its in/out channels swapped), dx
 * is a stride-1 conv2d with it: of dy itself at stride 1, of dy spread out
 * with zeros between its rows and columns at a larger stride (spreadRows).
 * wasm runs conv2d through XNNPACK and conv2DBackpropInput (tfjs's own
 * gradient, used without `flipped`) as a plain loop: about 3× slower at the
 * shipped ResNet's sizes, and most of a ResNet-50 step's backward at 224 px.
 * Same sums, another order.
 */
export function convNoFilterGrad(x: tf.Tensor4D, filter: tf.Tensor4D, stride: number, pad: number, flipped?: () => tf.Tensor4D): tf.Tensor4D {
  const shape = x.shape;
  const k = filter.shape[0];
  const backward =
    flipped && filter.shape[1] === k
      ? (dy: tf.Tensor4D) => flippedConvGrad(dy, flipped(), shape, stride, pad)
      : (dy: tf.Tensor4D) => tf.conv2dTranspose(dy, filter, shape, stride, pad);
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: tf.conv2d(args[0] as tf.Tensor4D, filter, stride, pad),
    gradFunc: backward,
  }))(x) as tf.Tensor4D;
}

/**
 * dL/dx of y = conv2d(x, w, stride s, padding p) with a k×k filter, from dy
 * and w flipped: with z = dy spread to s·O rows (dy's row o at s·o, zeros
 * between), dx[i] = Σ_m z[i + p − (k−1) + m]·w_flipped[m], a stride-1 conv
 * of z padded by k−1−p before and H + p − s·O after (cut instead where that
 * is negative); the same for columns.
 */
function flippedConvGrad(dy: tf.Tensor4D, flipped: tf.Tensor4D, [, H, W]: number[], s: number, p: number): tf.Tensor4D {
  const k = flipped.shape[0];
  if (s === 1) return tf.conv2d(dy, flipped, 1, k - 1 - p);
  const [B, O, Q, C] = dy.shape;
  const z = spreadRows(spreadRows(dy, s), s, true);
  const before = k - 1 - p;
  const after = [H! + p - s * O, W! + p - s * Q];
  const cut = after[0]! < 0 || after[1]! < 0 ? tf.slice(z, [0, 0, 0, 0], [B, s * O + Math.min(after[0]!, 0), s * Q + Math.min(after[1]!, 0), C]) : z;
  return tf.conv2d(cut, flipped, 1, [
    [0, 0],
    [before, Math.max(after[0]!, 0)],
    [before, Math.max(after[1]!, 0)],
    [0, 0],
  ]);
}

/** x [B, R, Q, C] with s − 1 rows of zeros after each row (columns with `columns`): [B, s·R, Q, C]. Rank 4 throughout, which every backend pads. */
function spreadRows(x: tf.Tensor4D, s: number, columns = false): tf.Tensor4D {
  const [B, R, Q, C] = x.shape;
  if (columns) {
    const padded = tf.pad(tf.reshape(x, [B * R, Q, 1, C]), [
      [0, 0],
      [0, 0],
      [0, s - 1],
      [0, 0],
    ]);
    return tf.reshape(padded, [B, R, s * Q, C]);
  }
  const padded = tf.pad(tf.reshape(x, [B * R, 1, Q, C]), [
    [0, 0],
    [0, s - 1],
    [0, 0],
    [0, 0],
  ]);
  return tf.reshape(padded, [B, s * R, Q, C]);
}

/** `filter` [kh, kw, in, out] turned 180° in space, in and out swapped: the stride-1 conv whose output is conv2d's input gradient. */
export function flipFilter(filter: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D);
}

/** relu(y + shortcut): both get dy where the output is positive, as tfjs's Add and Relu gradients give. */
export function addRelu(y: tf.Tensor4D, shortcut: tf.Tensor4D): tf.Tensor4D {
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const value = tf.relu(tf.add(args[0] as tf.Tensor4D, args[1] as tf.Tensor4D)) as tf.Tensor4D;
    (args[2] as tf.GradSaveFunc)([value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const d = tf.mul(dy, tf.step(saved[0]!));
        // Two tensors, not one twice: the engine may dispose one input's gradient as it adds to it.
        return [d, tf.reshape(d, d.shape)];
      },
    };
  })(y, shortcut) as tf.Tensor4D;
}

/**
 * GroupNorm over [B, H, W, C] in G groups, then scale and shift (then ReLU
 * where `relu`), as one op: the kernels' groupNorm (one host kernel on wasm
 * and cpu, tfjs ops elsewhere) and its closed-form backward, groupNormGrad:
 *
 *   dγ = Σ_{b,h,w} dy·x̂,  dβ = Σ_{b,h,w} dy,
 *   dx = σ⁻¹ (dŷ − mean_g(dŷ) − x̂ · mean_g(dŷ·x̂))   (means over each group's H, W, C/G)
 *
 * with x̂ the normalized input, σ⁻¹ its group's inverse deviation and dŷ =
 * dy·γ (dy masked by the ReLU first). `inputGrad` false: x never depends on
 * an adapted value (the stem's), so dx is zeros, which the engine drops. The
 * scale is read in the backward from the caller's tensor, alive until the
 * gradient is taken. ε comes as a number and as the caller's tensor: a JS number given to
 * tf.add is a new scalar (on WebGPU an upload) in every norm of every forward.
 */
export function groupNormOp(G: number, eps: { value: number; tensor: tf.Scalar }, o: { relu: boolean; inputGrad: boolean }): GroupNormFn {
  const attrs = { groups: G, eps: eps.value, epsTensor: eps.tensor, relu: o.relu };
  return (x, scale, shift) =>
    tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const input = args[0] as tf.Tensor4D;
      const save = args[3] as tf.GradSaveFunc;
      const { y, xhat, inv } = groupNorm(input, scale, shift, attrs);
      save(o.relu ? [xhat, inv, y] : [xhat, inv]);
      const gradFunc = (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sXhat, sInv, sY] = saved as [tf.Tensor4D, tf.Tensor2D, tf.Tensor4D | undefined];
        const { dScale, dShift, dx } = groupNormGrad(dy, sXhat, sInv, scale, sY, { groups: G, inputGrad: o.inputGrad });
        return [dx ?? tf.zerosLike(input), dScale, dShift];
      };
      return { value: y, gradFunc };
    })(x, scale, shift) as tf.Tensor4D;
}
