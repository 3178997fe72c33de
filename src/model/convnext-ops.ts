// The ConvNeXt's differentiable pieces as single tfjs ops with their backward
// written out (tf.customGrad), for adaptation through tf.grads, as
// resnet-ops.ts does for the GroupNorm ResNet: fewer kernels on the tape than
// autodiff of the plain ops, no saved copies of frozen weights, and gradients
// only for what can depend on the adapted norms (never a filter).
import * as tf from '@tensorflow/tfjs-core';
import { layerNorm, layerNormGrad, type LnSaved } from '../kernels';

export type LayerNormFn = <T extends tf.Tensor>(x: T, scale: tf.Tensor, shift: tf.Tensor) => T;

/**
 * LayerNorm over the last axis (a channels-last map's channels, or a pooled
 * vector's), then scale and shift, as one op: timm's LayerNorm2d and its
 * blocks' channels-last LayerNorm are both this on an NHWC map. Forward and
 * backward are the kernels' layerNorm and layerNormGrad on the rows (one
 * host kernel each on wasm and cpu, as the ViT's; tfjs ops elsewhere): the
 * mean, then the mean squared deviation from it, as PyTorch's layer_norm,
 * and the closed-form backward, x̂ the normalized input, σ⁻¹ each row's
 * inverse deviation, dx̂ = dy·γ:
 *
 *   dγ = Σ_rows dy·x̂,  dβ = Σ_rows dy,  dx = σ⁻¹ (dx̂ − mean(dx̂) − x̂ · mean(dx̂·x̂))
 *
 * `inputGrad` false: x never depends on an adapted value (the stem's norm
 * reads the image's convolution), so dx is zeros, which the engine drops.
 */
export function layerNormOp(eps: number, o: { inputGrad: boolean }): LayerNormFn {
  return <T extends tf.Tensor>(x: T, scale: tf.Tensor, shift: tf.Tensor) =>
    tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const input = args[0] as tf.Tensor;
      const save = args[3] as tf.GradSaveFunc;
      const D = input.shape[input.rank - 1]!;
      const rows = tf.reshape(input, [-1, D]) as tf.Tensor2D;
      const { y, saved } = layerNorm(rows, scale, shift, eps, true);
      // What the backend's kernel kept: the rows and their statistics (host), or x̂ and σ⁻¹ (tfjs ops).
      const kind = saved!.kind;
      save(saved!.kind === 'stats' ? [saved!.x, saved!.stats] : [saved!.xhat, saved!.rstd]);
      const gradFunc = (dy: tf.Tensor, kept: tf.Tensor[]) => {
        const [a, b] = kept as [tf.Tensor2D, tf.Tensor2D];
        const tape: LnSaved = kind === 'stats' ? { kind, x: a, stats: b, gamma: scale } : { kind, xhat: a, rstd: b, gamma: scale };
        const { dGamma, dBeta, dx } = layerNormGrad(tf.reshape(dy, [-1, D]) as tf.Tensor2D, tape, o.inputGrad);
        return [dx ? tf.reshape(dx, input.shape) : tf.zerosLike(input), dGamma, dBeta];
      };
      return { value: tf.reshape(y, input.shape), gradFunc };
    })(x, scale, shift) as T;
}

/**
 * x·Wᵀ + b for a frozen Linear, x [R, in], with the input's gradient only:
 * the forward reads W as [in, out] (`wT`) and the backward dy·W as [out,
 * in] (`w`), so that neither product needs tfjs's transpose flag, which
 * takes tfjs-wasm off XNNPACK's fast path (several times slower).
 */
export function linearNoWeightGrad(x: tf.Tensor2D, w: tf.Tensor2D, wT: tf.Tensor2D, bias: tf.Tensor): tf.Tensor2D {
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: tf.add(tf.matMul(args[0] as tf.Tensor2D, wT), bias) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor2D) => tf.matMul(dy, w),
  }))(x) as tf.Tensor2D;
}

/**
 * A depthwise convolution (stride 1, `pad` each side, a frozen filter
 * [k, k, C, 1]) plus its bias, with the input's gradient only. That gradient
 * is the same depthwise convolution of dy with the filter turned 180°
 * (`flipped`, made by the caller once) and padding k − 1 − pad: tfjs's own
 * gradient is DepthwiseConv2dNativeBackpropInput, which tfjs-wasm lacks.
 */
export function depthwiseNoFilterGrad(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, pad: number, flipped: () => tf.Tensor4D): tf.Tensor4D {
  const k = filter.shape[0];
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: tf.add(tf.depthwiseConv2d(args[0] as tf.Tensor4D, filter, 1, pad), bias) as tf.Tensor4D,
    gradFunc: (dy: tf.Tensor4D) => tf.depthwiseConv2d(dy, flipped(), 1, k - 1 - pad),
  }))(x) as tf.Tensor4D;
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * PyTorch's exact GELU, a·Φ(a) with Φ(a) = ½(1 + erf(a/√2)) (F.gelu's
 * default, which timm's ConvNeXt uses), as one op: the backward
 * dy·(Φ(a) + a·φ(a)) reuses Φ from the forward, as the ViT's kernels do
 * (src/kernels/ops/vit.ts). tf.erf is a polynomial fit with error under
 * 1.5e-7 (Abramowitz and Stegun 7.1.26).
 */
export function geluExact<T extends tf.Tensor>(a: T): T {
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(input, Math.SQRT1_2)), 1), 0.5);
    (args[1] as tf.GradSaveFunc)([input, cdf]);
    return {
      value: tf.mul(input, cdf),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [x, phi] = saved as [tf.Tensor, tf.Tensor];
        const xPdf = tf.mul(x, tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), INV_SQRT_2PI));
        return tf.mul(dy, tf.add(phi, xPdf));
      },
    };
  })(a) as T;
}
