import * as tf from '@tensorflow/tfjs';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/**
 * Kernels of host-kernels.ts (same names, inputs, attributes and outputs) as
 * WebGPU compute shaders, registered for tfjs's webgpu backend: LayerNorm
 * and its backward, GELU's backward, the softmax backward and the merge of
 * per-head gradients. Written with tfjs ops they are 9, 13, 7, 4 and 2
 * dispatches; here each output is one dispatch, one thread per row (per
 * channel for the scale/shift gradients, per element for GELU and the
 * merge), which at ViT sizes (at most a few hundred rows of 768) costs far
 * less than a dispatch does.
 */

interface GpuBackend {
  runWebGPUProgram(program: WebGPUProgram, inputs: tf.TensorInfo[], outputDtype: 'float32'): tf.TensorInfo;
}

const WORKGROUP = 64;

/** A program over `threads` threads, one per row or column, with the sizes compiled in. */
function program(key: string, variableNames: string[], outputShape: number[], threads: number, body: string): WebGPUProgram {
  return {
    variableNames,
    outputShape,
    shaderKey: `wildtta_${key}`,
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(threads / WORKGROUP), 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    // The phony use of the uniforms keeps their binding, which tfjs always binds, in the pipeline's layout.
    getUserCode: () => `
      fn main(index : i32) {
        _ = uniforms.NAN;
        if (index >= ${threads}) { return; }
        ${body}
      }`,
  };
}

const f = (x: number) => (Number.isInteger(x) ? `${x}.0` : `${x}`);

/** WGSL statements leaving the mean and the sum of squared deviations of row `index` of X [R, D] in mean and v. */
const rowMoments = (D: number) => `
        let o = index * ${D};
        var mean = 0.0;
        for (var d = 0; d < ${D}; d++) { mean += X[o + d]; }
        mean = mean / ${f(D)};
        var v = 0.0;
        for (var d = 0; d < ${D}; d++) { let c = X[o + d] - mean; v += c * c; }`;

function layerNorm(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { eps: number; save?: boolean }): tf.TensorInfo[] {
  const { x, gamma, beta } = inputs as Record<string, tf.TensorInfo>;
  const [R, D] = x!.shape as [number, number];
  const eps = f(attrs.eps);
  const moments = `${rowMoments(D)}
        let rs = inverseSqrt(v / ${f(D)} + ${eps});`;
  const y = backend.runWebGPUProgram(
    program(`ln_y_${R}_${D}_${eps}`, ['X', 'Gamma', 'Beta'], [R, D], R, `${moments}
        for (var d = 0; d < ${D}; d++) { result[o + d] = (X[o + d] - mean) * rs * Gamma[d] + Beta[d]; }`),
    [x!, gamma!, beta!],
    'float32',
  );
  if (attrs.save === false) return [y];
  const stats = backend.runWebGPUProgram(
    program(`ln_stats_${R}_${D}_${eps}`, ['X'], [R, 2], R, `${moments}
        result[2 * index] = mean;
        result[2 * index + 1] = rs;`),
    [x!],
    'float32',
  );
  return [y, stats];
}

function layerNormGrad(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { needInput: boolean }): tf.TensorInfo[] {
  const { dy, x, stats, gamma, residual } = inputs as Record<string, tf.TensorInfo | undefined>;
  const [R, D] = dy!.shape as [number, number];
  // dγ = Σ_rows dy·x̂, dβ = Σ_rows dy: one thread per channel.
  const column = (key: string, names: string[], ins: tf.TensorInfo[], term: string) =>
    backend.runWebGPUProgram(
      program(`lng_${key}_${R}_${D}`, names, [D], D, `
        var acc = 0.0;
        for (var r = 0; r < ${R}; r++) { let i = r * ${D} + index; acc += ${term}; }
        result[index] = acc;`),
      ins,
      'float32',
    );
  const out = [
    column('gamma', ['Dy', 'X', 'Stats'], [dy!, x!, stats!], 'Dy[i] * (X[i] - Stats[2 * r]) * Stats[2 * r + 1]'),
    column('beta', ['Dy'], [dy!], 'Dy[i]'),
  ];
  if (!attrs.needInput) return out;
  const names = ['Dy', 'X', 'Stats', 'Gamma', ...(residual ? ['Residual'] : [])];
  out.push(
    backend.runWebGPUProgram(
      program(`lng_dx_${R}_${D}_${residual ? 'res' : 'nores'}`, names, [R, D], R, `
        let o = index * ${D};
        let mean = Stats[2 * index];
        let rs = Stats[2 * index + 1];
        var sum = 0.0;
        var dot = 0.0;
        for (var d = 0; d < ${D}; d++) { let dh = Dy[o + d] * Gamma[d]; sum += dh; dot += dh * (X[o + d] - mean) * rs; }
        sum = sum / ${f(D)};
        dot = dot / ${f(D)};
        for (var d = 0; d < ${D}; d++) {
          result[o + d] = rs * (Dy[o + d] * Gamma[d] - sum - (X[o + d] - mean) * rs * dot)${residual ? ' + Residual[o + d]' : ''};
        }`),
      [dy!, x!, stats!, gamma!, ...(residual ? [residual] : [])],
      'float32',
    ),
  );
  return out;
}

function geluGrad(inputs: tf.NamedTensorInfoMap, backend: GpuBackend): tf.TensorInfo[] {
  const { dy, a, cdf } = inputs as Record<string, tf.TensorInfo>;
  const n = tf.util.sizeFromShape(a!.shape);
  return [
    backend.runWebGPUProgram(
      program(`gelu_grad_${n}`, ['Dy', 'A', 'Cdf'], a!.shape, n, `
        let v = A[index];
        result[index] = Dy[index] * (Cdf[index] + v * exp(-0.5 * v * v) * ${1 / Math.sqrt(2 * Math.PI)});`),
      [dy!, a!, cdf!],
      'float32',
    ),
  ];
}

function softmaxBackward(inputs: tf.NamedTensorInfoMap, backend: GpuBackend): tf.TensorInfo[] {
  const { dP, p } = inputs as Record<string, tf.TensorInfo>;
  const M = p!.shape[p!.shape.length - 1]!;
  const rows = tf.util.sizeFromShape(p!.shape) / M;
  return [
    backend.runWebGPUProgram(
      program(`softmax_back_${rows}_${M}`, ['DP', 'P'], p!.shape, rows, `
        let o = index * ${M};
        var dot = 0.0;
        for (var m = 0; m < ${M}; m++) { dot += DP[o + m] * P[o + m]; }
        for (var m = 0; m < ${M}; m++) { result[o + m] = P[o + m] * (DP[o + m] - dot); }`),
      [dP!, p!],
      'float32',
    ),
  ];
}

function headsMerge(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { batch: number }): tf.TensorInfo[] {
  const { dq, dk, dv } = inputs as Record<string, tf.TensorInfo>;
  const [BH, N, d] = dq!.shape as [number, number, number];
  const B = attrs.batch;
  const H = BH / B;
  const C = 3 * H * d;
  const n = B * N * C;
  // One thread per output element: column c = t·H·d + h·d + j of row b·N + i reads head b·H + h of input t.
  return [
    backend.runWebGPUProgram(
      program(`heads_merge_${B}_${H}_${N}_${d}`, ['Dq', 'Dk', 'Dv'], [B * N, C], n, `
        let row = index / ${C};
        let c = index - row * ${C};
        let b = row / ${N};
        let i = row - b * ${N};
        let t = c / ${H * d};
        let h = (c - t * ${H * d}) / ${d};
        let j = c - t * ${H * d} - h * ${d};
        let at = ((b * ${H} + h) * ${N} + i) * ${d} + j;
        if (t == 0) { result[index] = Dq[at]; } else if (t == 1) { result[index] = Dk[at]; } else { result[index] = Dv[at]; }`),
      [dq!, dk!, dv!],
      'float32',
    ),
  ];
}

/** Registers the kernels for the webgpu backend (once). */
export function registerGpuKernels(): void {
  const kernels: Array<[string, (i: tf.NamedTensorInfoMap, b: GpuBackend, a: never) => tf.TensorInfo[]]> = [
    ['WildttaLayerNorm', layerNorm],
    ['WildttaLayerNormGrad', layerNormGrad],
    ['WildttaGeluGrad', geluGrad],
    ['WildttaSoftmaxBackward', softmaxBackward],
    ['WildttaHeadsMerge', headsMerge],
  ];
  for (const [kernelName, fn] of kernels) {
    if (tf.getKernel(kernelName, 'webgpu')) continue;
    tf.registerKernel({
      kernelName,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => fn(inputs, backend as unknown as GpuBackend, attrs as never),
    });
  }
}
