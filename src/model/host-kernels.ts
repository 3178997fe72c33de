import * as tf from '@tensorflow/tfjs';

/**
 * Fused kernels for the CPU-side backends (wasm and cpu), written as plain
 * loops over the tensors' memory and registered with tfjs like its own.
 *
 * Why: at this model's size (50 tokens × 64 channels) a tfjs-wasm kernel
 * costs a few microseconds of bookkeeping whatever it computes, and a
 * LayerNorm backward written with tfjs ops is a dozen of them. One pass in
 * JavaScript over 3,200 values takes about as long as one of those calls, so
 * each kernel here replaces five to twelve tfjs kernels. They also move data
 * between the layouts that the matrix products want (the block-diagonal
 * attention of fast-vit.ts) for free, inside the same pass.
 *
 * Arithmetic runs in float64 and is stored as float32. None of these kernels
 * has a gradient: FastViT's backward calls them directly.
 */

type Shape = number[];
type Attrs = Record<string, number | boolean>;

interface HostKernel {
  /** Input names, in the order `compute` receives them; a name ending in '?' may be absent. */
  inputs: string[];
  /** Output shapes from the input shapes (absent inputs have shape []). */
  outputs(shapes: Shape[], attrs: Attrs): Shape[];
  compute(ins: Float32Array[], outs: Float32Array[], shapes: Shape[], attrs: Attrs): void;
}

/** The backend calls the glue needs; both are public methods of tfjs's wasm and cpu backends. */
interface WasmLike {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}
interface CpuLike {
  data: { get(id: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

export const HOST_BACKENDS: readonly string[] = ['wasm', 'cpu'];

const size = (s: Shape) => s.reduce((a, b) => a * b, 1);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

const kernels: Record<string, HostKernel> = {
  /** y = x̂·γ + β per row, with x̂ and rstd = 1/√(σ² + ε) kept for the backward. x [R, D] → y, x̂ [R, D], rstd [R, 1]. */
  WildttaLayerNorm: {
    inputs: ['x', 'gamma', 'beta'],
    outputs: ([x]) => [x!, x!, [x![0]!, 1]],
    compute([x, g, b], [y, xhat, rstd], [shape], { eps }) {
      const D = shape![1]!;
      const R = shape![0]!;
      for (let r = 0, o = 0; r < R; r++, o += D) {
        let mean = 0;
        for (let d = 0; d < D; d++) mean += x![o + d]!;
        mean /= D;
        let v = 0;
        for (let d = 0; d < D; d++) v += (x![o + d]! - mean) ** 2;
        const rs = 1 / Math.sqrt(v / D + (eps as number));
        rstd![r] = rs;
        for (let d = 0; d < D; d++) {
          const h = (x![o + d]! - mean) * rs;
          xhat![o + d] = h;
          y![o + d] = h * g![d]! + b![d]!;
        }
      }
    },
  },

  /**
   * Backward of y = x̂·γ + β: dγ = Σ_rows dy·x̂, dβ = Σ_rows dy, and
   * dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·γ, plus the
   * residual branch's gradient when given (the block's skip connection).
   */
  WildttaLayerNormGrad: {
    inputs: ['dy', 'xhat', 'rstd', 'gamma', 'residual?'],
    outputs: ([dy], { needInput }) => (needInput ? [[dy![1]!], [dy![1]!], dy!] : [[dy![1]!], [dy![1]!]]),
    compute([dy, xhat, rstd, g, res], [dg, db, dx], [shape], { needInput }) {
      const R = shape![0]!;
      const D = shape![1]!;
      const sums = new Float64Array(2 * D); // Σ dy·x̂, then Σ dy
      const withResidual = res!.length > 0;
      for (let r = 0, o = 0; r < R; r++, o += D) {
        let sum = 0;
        let dot = 0;
        for (let d = 0; d < D; d++) {
          const gy = dy![o + d]!;
          const h = xhat![o + d]!;
          sums[d] = sums[d]! + gy * h;
          sums[D + d] = sums[D + d]! + gy;
          const dh = gy * g![d]!;
          sum += dh;
          dot += dh * h;
        }
        if (!needInput) continue;
        const rs = rstd![r]!;
        sum /= D;
        dot /= D;
        for (let d = 0; d < D; d++) {
          const v = rs * (dy![o + d]! * g![d]! - sum - xhat![o + d]! * dot);
          dx![o + d] = withResidual ? v + res![o + d]! : v;
        }
      }
      dg!.set(sums.subarray(0, D));
      db!.set(sums.subarray(D));
    },
  },

  /** da = dy·(Φ(a) + a·φ(a)). */
  WildttaGeluGrad: {
    inputs: ['dy', 'a', 'cdf'],
    outputs: ([dy]) => [dy!],
    compute([dy, a, cdf], [da]) {
      for (let i = 0; i < a!.length; i++) {
        const v = a![i]!;
        da![i] = dy![i]! * (cdf![i]! + v * Math.exp(-0.5 * v * v) * INV_SQRT_2PI);
      }
    },
  },

  /**
   * Block-diagonal attention operands from qkv [N, 3D] (H heads of width
   * D/H): q [N, D], qᵀ [D, N], and k, v spread to [H·N, D] (row h·N + n holds
   * token n's head-h channels, zero elsewhere), so that every per-head product
   * of the attention is one plain 2-D product: Sᵀ = k_bd·qᵀ, o = P·v_bd.
   */
  WildttaAttnSpread: {
    inputs: ['qkv'],
    outputs: ([s], { heads }) => {
      const N = s![0]!;
      const D = s![1]! / 3;
      return [[N, D], [D, N], [(heads as number) * N, D], [(heads as number) * N, D]];
    },
    compute([qkv], [q, qT, kbd, vbd], [s], { heads }) {
      const N = s![0]!;
      const D = s![1]! / 3;
      const hd = D / (heads as number);
      kbd!.fill(0);
      vbd!.fill(0);
      for (let n = 0; n < N; n++) {
        const row = n * 3 * D;
        for (let d = 0; d < D; d++) {
          const qv = qkv![row + d]!;
          q![n * D + d] = qv;
          qT![d * N + n] = qv;
          const at = (Math.floor(d / hd) * N + n) * D + d;
          kbd![at] = qkv![row + D + d]!;
          vbd![at] = qkv![row + 2 * D + d]!;
        }
      }
    },
  },

  /**
   * Softmax backward per head for the block-diagonal attention: from
   * P [N, H·N] (query n, head h, key m) and dPᵀ [H·N, N], gives
   * dS = P ⊙ (dP − Σ_m dP ⊙ P) as [N, H·N] and as its transpose [H·N, N],
   * and Pᵀ [H·N, N], the layouts of the products that follow.
   */
  WildttaAttnSoftmaxGrad: {
    inputs: ['dPT', 'p'],
    outputs: ([dPT, p]) => [p!, dPT!, dPT!],
    compute([dPT, p], [dS, dST, pT], [, s], { heads }) {
      const N = s![0]!;
      const H = heads as number;
      const HN = H * N;
      for (let n = 0; n < N; n++) {
        for (let h = 0; h < H; h++) {
          const base = n * HN + h * N;
          let dot = 0;
          for (let m = 0; m < N; m++) dot += dPT![(h * N + m) * N + n]! * p![base + m]!;
          for (let m = 0; m < N; m++) {
            const t = (h * N + m) * N + n;
            const pv = p![base + m]!;
            const v = pv * (dPT![t]! - dot);
            dS![base + m] = v;
            dST![t] = v;
            pT![t] = pv;
          }
        }
      }
    },
  },

  /**
   * dqkv [N, 3D] from dq [N, D] and the full products dk_full, dv_full
   * [H·N, D], of which each channel d keeps only its own head's rows.
   */
  WildttaAttnGather: {
    inputs: ['dq', 'dkFull', 'dvFull'],
    outputs: ([dq]) => [[dq![0]!, 3 * dq![1]!]],
    compute([dq, dk, dv], [out], [s], { heads }) {
      const N = s![0]!;
      const D = s![1]!;
      const hd = D / (heads as number);
      for (let n = 0; n < N; n++) {
        const row = n * 3 * D;
        for (let d = 0; d < D; d++) {
          const at = (Math.floor(d / hd) * N + n) * D + d;
          out![row + d] = dq![n * D + d]!;
          out![row + D + d] = dk![at]!;
          out![row + 2 * D + d] = dv![at]!;
        }
      }
    },
  },
};

export type HostKernelName = keyof typeof kernels;

function wasmKernel(k: HostKernel): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const b = backend as unknown as WasmLike;
    const infos = k.inputs.map((n) => (inputs as Record<string, tf.TensorInfo | undefined>)[n.replace('?', '')]);
    const shapes = infos.map((i) => i?.shape ?? []);
    const outs = k.outputs(shapes, attrs as Attrs).map((s) => b.makeOutput(s, 'float32'));
    // Views only after every allocation: a malloc may grow the heap and detach older views.
    const ins = infos.map((i) => (i ? b.typedArrayFromHeap(i) : new Float32Array(0)));
    k.compute(ins, outs.map((o) => b.typedArrayFromHeap(o)), shapes, attrs as Attrs);
    return outs;
  };
}

function cpuKernel(k: HostKernel): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const b = backend as unknown as CpuLike;
    const infos = k.inputs.map((n) => (inputs as Record<string, tf.TensorInfo | undefined>)[n.replace('?', '')]);
    const shapes = infos.map((i) => i?.shape ?? []);
    const outShapes = k.outputs(shapes, attrs as Attrs);
    const outs = outShapes.map((s) => new Float32Array(size(s)));
    k.compute(
      infos.map((i) => (i ? (b.data.get(i.dataId).values as Float32Array) : new Float32Array(0))),
      outs,
      shapes,
      attrs as Attrs,
    );
    return outs.map((v, i) => b.makeTensorInfo(outShapes[i]!, 'float32', v));
  };
}

/** Registers the kernels for the wasm and cpu backends (once). */
export function registerHostKernels(): void {
  for (const [name, k] of Object.entries(kernels)) {
    for (const backendName of HOST_BACKENDS) {
      if (tf.getKernel(name, backendName)) continue;
      tf.registerKernel({ kernelName: name, backendName, kernelFunc: backendName === 'wasm' ? wasmKernel(k) : cpuKernel(k) });
    }
  }
}

/** Runs a host kernel on the current backend (which must be wasm or cpu); always returns the outputs as a list. */
export function runHostKernel(name: HostKernelName, inputs: Record<string, tf.Tensor>, attrs: Attrs = {}): tf.Tensor[] {
  registerHostKernels();
  const out = tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap);
  return Array.isArray(out) ? out : [out as tf.Tensor];
}
