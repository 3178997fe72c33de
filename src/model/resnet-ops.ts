// Convolutional pieces as single tfjs ops with their backward written out
// (tf.customGrad), for adaptation through tf.grads (the ConvNeXt's convs) and
// the GroupNorm ResNet's differentiable forward (what its hand-written
// backward is tested against).
// Autodiff of the plain ops records every kernel on the tape, copies each
// kernel's saved inputs (a conv's filter, every step) and runs a backward of
// four to five kernels per forward kernel; at this model's sizes each kernel
// costs a few µs of fixed overhead on wasm, so that was most of a reliable
// SAR step. Each op computes the same forward values as the plain ops, and
// gradients only for what can depend on the adapted norms: never a filter.
import * as tf from '@tensorflow/tfjs-core';
import { groupNorm, groupNormGrad } from '../kernels';
import { convInputGrad, type DerivedFilters } from './conv-grad';

export type GroupNormFn = (x: tf.Tensor4D, scale: tf.Tensor, shift: tf.Tensor) => tf.Tensor4D;

/**
 * tf.conv2d with a frozen filter: its gradient is the input's only. Nothing
 * is saved: the filter is the model's, alive as long as it is. With
 * `derived` (the model's store of filters made for its backward, and this
 * filter's name there), dx is conv-grad.ts's stride-1 convs of dy, one per
 * phase of the stride; without it, tfjs's conv2dTranspose, a plain loop on
 * wasm about 3× slower at the shipped ResNet's sizes. Same sums, another order.
 */
export function convNoFilterGrad(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  stride: number,
  pad: number,
  derived?: { filters: DerivedFilters; key: string },
): tf.Tensor4D {
  const shape = x.shape;
  const backward = derived
    ? (dy: tf.Tensor4D) => convInputGrad(dy, filter, shape, stride, pad, derived.filters, derived.key)
    : (dy: tf.Tensor4D) => tf.conv2dTranspose(dy, filter, shape, stride, pad);
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: tf.conv2d(args[0] as tf.Tensor4D, filter, stride, pad),
    gradFunc: backward,
  }))(x) as tf.Tensor4D;
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
