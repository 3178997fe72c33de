// A convolutional network's backward walk in one engine call on the host:
// every step on the backend's raw tensor infos (XNNPACK's convolutions and
// adds on wasm, our GroupNorm, max-pool and weaving kernels), none of its
// intermediates a tfjs tensor, each freed as soon as the walk is done with
// it; the adapted norms' gradients written straight into one vector in the
// layout's order. At the shipped ResNet's size a backward is some forty
// engine calls as tensor ops (ops/conv-backward.ts), each with about 1.5 µs
// of the engine's own bookkeeping in Node.
import * as tf from '@tensorflow/tfjs-core';
import { runKernel } from '../calls';
import type { ConvBackwardArgs, ConvBackwardWalk, ConvGradOps } from '../types';
import { call, freeInfos, gradientVector, type Composite, type Host, type Made } from './glue';
import { normKernels } from './norm-kernels';

/** Conv2D's attributes for a stride-1 conv with explicit padding. */
const convAttrs = (pads: readonly number[]) => ({
  strides: [1, 1],
  pad: [
    [0, 0],
    [Math.max(0, pads[0]!), Math.max(0, pads[1]!)],
    [Math.max(0, pads[2]!), Math.max(0, pads[3]!)],
    [0, 0],
  ],
  dataFormat: 'NHWC',
  dilations: [1, 1],
});

/**
 * ConvGradOps on the host's tensor infos: what they allocate goes through
 * `made`; a GroupNorm's gradients go to `put` (gradientVector's). The
 * head's gradient reads `inputs` (dLogits, headW, dFeatures).
 */
export function hostConvGradOps(
  host: Host,
  made: Made,
  inputs: Record<string, tf.TensorInfo>,
  put: (norm: string, dScale: tf.TensorInfo, dShift: tf.TensorInfo) => void,
): ConvGradOps<tf.TensorInfo> {
  const free = (...ts: Array<tf.TensorInfo | undefined>) => freeInfos(host, ...ts);
  /** A new tensor of `shape` filled by `fill` on views taken after its allocation. */
  const filled = (shape: number[], fill: (dst: Float32Array) => void) => {
    const t = made(host.make(shape));
    fill(host.values(t));
    return t;
  };
  return {
    headGrad() {
      const fromHead = made(host.matMul(inputs.dLogits!, inputs.headW!));
      if (!inputs.dFeatures) return fromHead;
      const sum = made(host.kernel('Add', { a: fromHead, b: inputs.dFeatures }));
      free(fromHead);
      return sum;
    },
    spreadMean(dy, shape) {
      // 1/(H·W) as a number: the host reads no scalar tensor.
      const [B, H, W, D] = shape as [number, number, number, number];
      return filled([B, H, W, D], (dst) => {
        const src = host.values(dy);
        for (let b = 0; b < B; b++) for (let i = 0; i < H * W; i++) for (let d = 0; d < D; d++) dst[(b * H * W + i) * D + d] = src[b * D + d]! / (H * W);
      });
    },
    groupNormGrad(dy, { xhat, inv, scale, groups }, name, inputGrad, mask) {
      const [dScale, dShift, dx] = made(call(normKernels.WildttaGroupNormGrad, host, [dy, xhat, inv, scale, mask], { groups, inputGrad }));
      put(name, dScale!, dShift!);
      return dx;
    },
    reluGrad: (dy, mask) =>
      filled([...dy.shape], (dst) => {
        const d = host.values(dy);
        const m = host.values(mask);
        // As tf.mul(dy, tf.step(out)): a NaN in out or a non-finite dy gives NaN, not 0.
        for (let i = 0; i < dst.length; i++) dst[i] = m[i]! > 0 ? d[i]! : Number.isNaN(m[i]!) ? NaN : d[i]! * 0;
      }),
    add: (a, b) => made(host.kernel('Add', { a, b })),
    maxPoolGrad: (dy, x, _y, o) => made(call(normKernels.WildttaMaxPoolGrad, host, [dy, x], o))[0]!,
    conv(x, { filter, pads }) {
      const [B, H, W, C] = x.shape as [number, number, number, number];
      const [top, bottom, left, right] = pads.map((n) => Math.max(0, -n)) as [number, number, number, number];
      const cropped = top + bottom + left + right > 0;
      const input = cropped ? made(host.kernel('Slice', { x }, { begin: [0, top, left, 0], size: [B, H - top - bottom, W - left - right, C] })) : x;
      const y = made(host.kernel('Conv2D', { x: input, filter }, convAttrs(pads)));
      if (cropped) free(input);
      return y;
    },
    // WildttaInterleave reads as many phases as it is given (s² of them).
    interleave: (phases, stride, height, width) => made(call(normKernels.WildttaInterleave, host, phases, { stride, height, width }))[0]!,
    zeros: (shape) => filled([...shape], (dst) => dst.fill(0)),
    free,
  };
}

/** The walk's host kernel; its attrs carry the walk and its arguments (tfjs hands attrs to the kernel untouched). */
export const convBackwardComposite = {
  WildttaConvBackward(host, inputs, attrs, made) {
    const { args, walk } = attrs as unknown as { args: ConvBackwardArgs; walk: ConvBackwardWalk };
    const { layout } = args;
    const { out, put } = gradientVector(host, made, layout);
    walk(hostConvGradOps(host, made, inputs, put));
    return [out];
  },
} satisfies Record<string, Composite>;

/** runConvBackward on the host: the whole walk as one engine call. */
export function runConvBackwardOnHost(args: ConvBackwardArgs, walk: ConvBackwardWalk): tf.Tensor1D {
  const { dLogits, dFeatures, headW } = args;
  return runKernel('WildttaConvBackward', dFeatures ? { dLogits, headW, dFeatures } : { dLogits, headW }, { args, walk })[0] as tf.Tensor1D;
}
