import * as tf from '@tensorflow/tfjs-core';
import { runKernel } from '../calls';
import { vitOps } from '../ops/vit';
import type { Kernels } from '../types';
import { program, registerWebgpu, rowEntropy, type GpuBackend } from './kernels';

// WebGPU kernels for what tfjs ops would do with constants made from JS
// values (scalar tensors uploaded on every call), or in many dispatches: the
// MLP's GELU, the float → bool conversion, the read's softmax and entropy.

/**
 * The MLP's GELU on WebGPU. In tfjs ops, a·Φ(a) with Φ(a) = ½(1 + erf(a/√2))
 * is five dispatches (mul, erf, add, mul, mul), and its three constants are
 * JS numbers that tfjs turns into scalar tensors on every call: each one an
 * upload, a new staging buffer and a break in the compute pass. Here it is
 * one dispatch for a·Φ(a) and, when the backward needs it, one for Φ(a);
 * the constants are compiled into the shader.
 *
 * erf is tfjs's own (Abramowitz–Stegun 7.1.26, as its WebGPU Erf kernel and
 * backend_util's constants), so Φ(a) is what the ops computed, to rounding.
 */
const ERF = `
fn wildtta_erf(a : f32) -> f32 {
  let t = 1.0 / (1.0 + ${tf.backend_util.ERF_P} * abs(a));
  let poly = ((((${tf.backend_util.ERF_A5} * t + ${tf.backend_util.ERF_A4}) * t + ${tf.backend_util.ERF_A3}) * t + ${tf.backend_util.ERF_A2}) * t + ${tf.backend_util.ERF_A1}) * t;
  return sign(a) * (1.0 - poly * exp(-a * a));
}
fn wildtta_cdf(a : f32) -> f32 { return (wildtta_erf(a * ${Math.SQRT1_2}) + 1.0) * 0.5; }
`;

function gelu(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { save: boolean }): tf.TensorInfo[] {
  const { a } = inputs as Record<string, tf.TensorInfo>;
  const n = tf.util.sizeFromShape(a!.shape);
  const run = (key: string, body: string) => backend.runWebGPUProgram(program(`gelu_${key}_${n}`, ['A'], a!.shape, n, body, ERF), [a!], 'float32');
  const h = run('h', 'let v = A[index]; result[index] = v * wildtta_cdf(v);');
  return attrs.save ? [h, run('cdf', 'result[index] = wildtta_cdf(A[index]);')] : [h];
}

/**
 * x ≠ 0 as a bool tensor. tf.cast(x, 'bool') on tfjs's WebGPU backend is
 * notEqual(x, 0) with the 0 a scalar made from a JS array, so an upload each
 * call; here the comparison is in the shader (a bool tensor is i32 there).
 */
function truthy(inputs: tf.NamedTensorInfoMap, backend: GpuBackend): tf.TensorInfo[] {
  const { x } = inputs as Record<string, tf.TensorInfo>;
  const n = tf.util.sizeFromShape(x!.shape);
  return [backend.runWebGPUProgram(program(`truthy_${n}`, ['X'], x!.shape, n, 'result[index] = select(0, 1, f32(X[index]) != 0.0);'), [x!], 'bool')];
}

/**
 * Each row's softmax p [B, C] and entropy E [B] of logits [B, C], what every
 * step reads back: two dispatches, one thread per row, where tf.softmax and
 * the entropy in tfjs ops take eleven (logSoftmax alone is six).
 */
function probabilitiesAndEntropy(inputs: tf.NamedTensorInfoMap, backend: GpuBackend): tf.TensorInfo[] {
  const { logits } = inputs as Record<string, tf.TensorInfo>;
  const [B, C] = logits!.shape as [number, number];
  const run = (key: string, shape: number[], body: string) =>
    backend.runWebGPUProgram(
      program(`softmax_entropy_${key}_${B}_${C}`, ['Logits'], shape, B, `var logp : array<f32, ${C}>; ${body}`, rowEntropy(C)),
      [logits!],
      'float32',
    );
  return [
    run('p', [B, C], `_ = rowEntropy(index, &logp); for (var c = 0; c < ${C}; c++) { result[index * ${C} + c] = exp(logp[c]); }`),
    run('e', [B], 'result[index] = rowEntropy(index, &logp);'),
  ];
}

export function registerFused(): void {
  registerWebgpu([
    ['WildttaGelu', gelu],
    ['WildttaTruthy', truthy],
    ['WildttaProbabilitiesEntropy', probabilitiesAndEntropy],
  ]);
}

/** The webgpu table's entries for the kernels above (the MLP's products stay tfjs ops). */
export const fusedCalls: Pick<Kernels, 'mlp' | 'truthy' | 'softmaxAndEntropy'> = {
  truthy: (x) => runKernel('WildttaTruthy', { x })[0]!,

  softmaxAndEntropy(logits) {
    const [probabilities, entropies] = runKernel('WildttaProbabilitiesEntropy', { logits });
    return { probabilities: probabilities as tf.Tensor2D, entropies: entropies as tf.Tensor1D };
  },

  mlp(x, n, w, save) {
    const a = vitOps.linear(n, w.fc1);
    const [h, cdf] = runKernel('WildttaGelu', { a }, { save });
    const x2 = tf.add(x, vitOps.linear(h as tf.Tensor2D, w.fc2)) as tf.Tensor2D;
    return save ? { x2, a, cdf: cdf as tf.Tensor2D } : { x2 };
  },
};
