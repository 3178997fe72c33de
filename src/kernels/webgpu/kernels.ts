import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/**
 * Kernels of the host's (src/kernels/host/: same names, inputs, attributes
 * and outputs) as WebGPU compute shaders, registered for tfjs's webgpu backend: LayerNorm
 * and its backward, GELU's backward, the softmax backward and the merge of
 * per-head gradients. Written with tfjs ops they are 9, 13, 7, 4 and 2
 * dispatches; here each output is one dispatch, one thread per row (per
 * channel for the scale/shift gradients, per element for GELU and the
 * merge), which at ViT sizes (at most a few hundred rows of 768) costs far
 * less than a dispatch does. Then attention's backward with heads batched
 * (three dispatches for tfjs's six) and, below it, the update arithmetic of
 * methods/ (SAM's ascent, gated SGD-momentum, the entropy loss, the moving
 * average, gates, the finiteness of scalars and the stats vector),
 * GroupNorm both ways (its sums one thread per image and channel) and the
 * weaving of a strided conv's input gradient.
 */

/** Values a shader reads from its uniforms rather than having them compiled in (tfjs's ProgramUniform). */
export type Uniforms = Array<{ type: 'float32'; data: number[] }>;

export interface GpuBackend {
  runWebGPUProgram(program: WebGPUProgram, inputs: tf.TensorInfo[], outputDtype: 'float32' | 'bool', uniforms?: Uniforms): tf.TensorInfo;
  disposeData(dataId: object): void;
}

const WORKGROUP = 64;

/** A program over `threads` threads, one per row or column, with the sizes compiled in. */
export function program(key: string, variableNames: string[], outputShape: number[], threads: number, body: string, prelude = ''): WebGPUProgram {
  return {
    variableNames,
    outputShape,
    shaderKey: `wildtta_${key}`,
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(threads / WORKGROUP), 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    // The phony uses keep every binding, which tfjs always binds, in the pipeline's layout, also where a
    // variant of the program does not read an input.
    getUserCode: () => `${prelude}
      fn main(index : i32) {
        _ = uniforms.NAN;
        ${variableNames.map((n) => `_ = ${n}[0];`).join(' ')}
        if (index >= ${threads}) { return; }
        ${body}
      }`,
  };
}

export const f = (x: number) => (Number.isInteger(x) ? `${x}.0` : `${x}`);

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
    program(
      `ln_y_${R}_${D}_${eps}`,
      ['X', 'Gamma', 'Beta'],
      [R, D],
      R,
      `${moments}
        for (var d = 0; d < ${D}; d++) { result[o + d] = (X[o + d] - mean) * rs * Gamma[d] + Beta[d]; }`,
    ),
    [x!, gamma!, beta!],
    'float32',
  );
  if (attrs.save === false) return [y];
  const stats = backend.runWebGPUProgram(
    program(
      `ln_stats_${R}_${D}_${eps}`,
      ['X'],
      [R, 2],
      R,
      `${moments}
        result[2 * index] = mean;
        result[2 * index + 1] = rs;`,
    ),
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
      program(
        `lng_${key}_${R}_${D}`,
        names,
        [D],
        D,
        `
        var acc = 0.0;
        for (var r = 0; r < ${R}; r++) { let i = r * ${D} + index; acc += ${term}; }
        result[index] = acc;`,
      ),
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
      program(
        `lng_dx_${R}_${D}_${residual ? 'res' : 'nores'}`,
        names,
        [R, D],
        R,
        `
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
        }`,
      ),
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
      program(
        `gelu_grad_${n}`,
        ['Dy', 'A', 'Cdf'],
        a!.shape,
        n,
        `
        let v = A[index];
        result[index] = Dy[index] * (Cdf[index] + v * exp(-0.5 * v * v) * ${1 / Math.sqrt(2 * Math.PI)});`,
      ),
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
      program(
        `softmax_back_${rows}_${M}`,
        ['DP', 'P'],
        p!.shape,
        rows,
        `
        let o = index * ${M};
        var dot = 0.0;
        for (var m = 0; m < ${M}; m++) { dot += DP[o + m] * P[o + m]; }
        for (var m = 0; m < ${M}; m++) { result[o + m] = P[o + m] * (DP[o + m] - dot); }`,
      ),
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
      program(
        `heads_merge_${B}_${H}_${N}_${d}`,
        ['Dq', 'Dk', 'Dv'],
        [B * N, C],
        n,
        `
        let row = index / ${C};
        let c = index - row * ${C};
        let b = row / ${N};
        let i = row - b * ${N};
        let t = c / ${H * d};
        let h = (c - t * ${H * d}) / ${d};
        let j = c - t * ${H * d} - h * ${d};
        let at = ((b * ${H} + h) * ${N} + i) * ${d} + j;
        if (t == 0) { result[index] = Dq[at]; } else if (t == 1) { result[index] = Dk[at]; } else { result[index] = Dv[at]; }`,
      ),
      [dq!, dk!, dv!],
      'float32',
    ),
  ];
}

/** WGSL reads of head bh's row m, column j of q, k and v inside qkv [B·N, 3D] (each image's rows, then q | k | v, each head's d columns). */
function heads3(H: number, N: number, D: number, d: number) {
  const at = (t: number) => (bh: string, m: string, j: string) => `QKV[((${bh} / ${H}) * ${N} + ${m}) * ${3 * D} + ${t * D} + (${bh} % ${H}) * ${d} + ${j}]`;
  return { q: at(0), k: at(1), v: at(2) };
}

/**
 * Every head's scores q·kᵀ [B·H, N, N] straight from qkv [B·N, 3D] (the
 * attention scale is in q's weights), one thread per score: what the tfjs
 * ops do with a transpose, three slices and a batched product.
 */
function headsScores(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { heads: number; tokens: number }): tf.TensorInfo[] {
  const { qkv } = inputs as Record<string, tf.TensorInfo>;
  const [R, C] = qkv!.shape as [number, number];
  const { heads: H, tokens: N } = attrs;
  const D = C / 3;
  const d = D / H;
  const BH = (R / N) * H;
  const at = heads3(H, N, D, d);
  return [
    backend.runWebGPUProgram(
      program(
        `heads_scores_${R}_${C}_${H}_${N}`,
        ['QKV'],
        [BH, N, N],
        BH * N * N,
        `
        let bh = index / ${N * N};
        let i = (index / ${N}) % ${N};
        let m = index % ${N};
        var s = 0.0;
        for (var j = 0; j < ${d}; j++) { s += ${at.q('bh', 'i', 'j')} * ${at.k('bh', 'm', 'j')}; }
        result[index] = s;`,
      ),
      [qkv!],
      'float32',
    ),
  ];
}

/** Attention's output o = P·v [B·N, D] with the heads side by side, v read from qkv [B·N, 3D]: a product and a transpose in tfjs ops. */
function headsMix(inputs: tf.NamedTensorInfoMap, backend: GpuBackend): tf.TensorInfo[] {
  const { p, qkv } = inputs as Record<string, tf.TensorInfo>;
  const [R, C] = qkv!.shape as [number, number];
  const [BH, N] = p!.shape as [number, number, number];
  const H = BH / (R / N);
  const D = C / 3;
  const d = D / H;
  const at = heads3(H, N, D, d);
  return [
    backend.runWebGPUProgram(
      program(
        `heads_mix_${R}_${C}_${H}_${N}`,
        ['P', 'QKV'],
        [R, D],
        R * D,
        `
        let row = index / ${D};
        let b = row / ${N};
        let i = row % ${N};
        let h = (index % ${D}) / ${d};
        let j = index % ${d};
        let bh = b * ${H} + h;
        var o = 0.0;
        for (var m = 0; m < ${N}; m++) { o += P[(bh * ${N} + i) * ${N} + m] * ${at.v('bh', 'm', 'j')}; }
        result[index] = o;`,
      ),
      [p!, qkv!],
      'float32',
    ),
  ];
}

/**
 * Attention's backward through the softmax products, heads batched (as
 * ops/vit.ts's headsGrad in one kernel), one thread per value in three
 * dispatches: dP = dO_h·vᵀ, the softmax backward dS = P ⊙ (dP − Σ dP ⊙ P),
 * then dL/dqkv [B·N, 3D] with dq = dS·k, dk = dSᵀ·q, dv = Pᵀ·dO_h. tfjs's
 * path takes six (three of them products, each a dispatch that costs far more
 * than its arithmetic at these sizes) plus the heads' transposes.
 */
function headsGrad(inputs: tf.NamedTensorInfoMap, backend: GpuBackend): tf.TensorInfo[] {
  const { dO, q, k, v, qkv, p } = inputs as Record<string, tf.TensorInfo | undefined>;
  const [R, D] = dO!.shape as [number, number];
  const [BH, N] = p!.shape as [number, number, number];
  const H = BH / (R / N);
  const d = D / H;
  const C = 3 * D;
  // q, k and v as their own [B·H, N, d] tensors, or read from qkv [B·N, 3D] where the forward's product left them.
  const own = (name: string) => (bh: string, m: string, j: string) => `${name}[(${bh} * ${N} + ${m}) * ${d} + ${j}]`;
  const at = qkv ? heads3(H, N, D, d) : { q: own('Q'), k: own('K'), v: own('V') };
  const key = `${R}_${D}_${BH}_${N}_${d}${qkv ? '_qkv' : ''}`;
  // Row i of head bh: its dO row starts at ((bh / H)·N + i)·D + (bh % H)·d.
  const dORow = (bh: string, i: string) => `((${bh} / ${H}) * ${N} + ${i}) * ${D} + (${bh} % ${H}) * ${d}`;
  const dP = backend.runWebGPUProgram(
    program(
      `heads_grad_dp_${key}`,
      qkv ? ['DO', 'QKV'] : ['DO', 'V'],
      [BH, N, N],
      BH * N * N,
      `
        let bh = index / ${N * N};
        let i = (index / ${N}) % ${N};
        let m = index % ${N};
        let g = ${dORow('bh', 'i')};
        var dp = 0.0;
        for (var c = 0; c < ${d}; c++) { dp += DO[g + c] * ${at.v('bh', 'm', 'c')}; }
        result[index] = dp;`,
    ),
    [dO!, qkv ?? v!],
    'float32',
  );
  const [dS] = softmaxBackward({ dP, p: p! }, backend);
  backend.disposeData(dP.dataId);
  const dqkv = backend.runWebGPUProgram(
    program(
      `heads_grad_dqkv_${key}`,
      qkv ? ['DS', 'P', 'QKV', 'DO'] : ['DS', 'P', 'Q', 'K', 'DO'],
      [R, C],
      R * C,
      `
        let row = index / ${C};
        let col = index % ${C};
        let b = row / ${N};
        let n = row % ${N};
        let t = col / ${D};
        let h = (col % ${D}) / ${d};
        let j = col % ${d};
        let bh = b * ${H} + h;
        let base = bh * ${N};
        var acc = 0.0;
        if (t == 0) {
          for (var m = 0; m < ${N}; m++) { acc += DS[(base + n) * ${N} + m] * ${at.k('bh', 'm', 'j')}; }
        } else if (t == 1) {
          for (var m = 0; m < ${N}; m++) { acc += DS[(base + m) * ${N} + n] * ${at.q('bh', 'm', 'j')}; }
        } else {
          for (var m = 0; m < ${N}; m++) { acc += P[(base + m) * ${N} + n] * DO[${dORow('bh', 'm')} + j]; }
        }
        result[index] = acc;`,
    ),
    qkv ? [dS!, p!, qkv, dO!] : [dS!, p!, q!, k!, dO!],
    'float32',
  );
  backend.disposeData(dS!.dataId);
  return [dqkv];
}

// The update arithmetic of methods/ (the host has the same kernels):
// each replaces three to fifteen dispatches, most of them on a handful of
// values, with one or two. Sums over the flat vector of adapted values run on
// one thread: it holds at most a few tens of thousands of values (ViT-B/16
// adapts 27,648), and a scalar's worth of work is what a dispatch costs anyway.

/** A WGSL boolean: the first value of a gate input (bool, int or float) is non-zero. */
const holds = (name: string) => `(f32(${name}[0]) != 0.0)`;
/** A WGSL boolean: v is finite, from its bits (a shader compiler may assume floats are never NaN). */
const finite = (v: string) => `((bitcast<u32>(${v}) & 0x7fffffffu) < 0x7f800000u)`;

function samAscent(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { rho: number }): tf.TensorInfo[] {
  const { theta, grad } = inputs as Record<string, tf.TensorInfo>;
  const P = tf.util.sizeFromShape(grad!.shape);
  const norm = backend.runWebGPUProgram(
    program(
      `sam_norm_${P}`,
      ['G'],
      [1],
      1,
      `
        var s = 0.0;
        for (var i = 0; i < ${P}; i++) { s += G[i] * G[i]; }
        result[0] = sqrt(s);`,
    ),
    [grad!],
    'float32',
  );
  const ascended = backend.runWebGPUProgram(
    program(
      `sam_ascent_${P}_${attrs.rho}`,
      ['Theta', 'G', 'Norm'],
      [P],
      P,
      `
        result[index] = Theta[index] + G[index] * (${f(attrs.rho)} / (Norm[0] + 1e-12));`,
    ),
    [theta!, grad!, norm],
    'float32',
  );
  return [ascended, norm];
}

function sgdMomentum(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { lr: number; momentum: number }): tf.TensorInfo[] {
  const { theta, grad, buffer, gate } = inputs as Record<string, tf.TensorInfo>;
  const P = tf.util.sizeFromShape(grad!.shape);
  // lr and momentum are uniforms: a page that changes the learning rate (the demo's field, setLr) reuses the pipeline.
  const next = `let b = uniforms.momentum * Buffer[index] + G[index];`;
  const run = (key: string, names: string[], ins: tf.TensorInfo[], value: string, held: string) =>
    backend.runWebGPUProgram(
      {
        ...program(
          `sgd_${key}_${P}`,
          names,
          [P],
          P,
          `
        ${next}
        result[index] = select(${held}, ${value}, ${holds('Gate')});`,
        ),
        uniforms: 'lr : f32, momentum : f32,',
      },
      ins,
      'float32',
      [
        { type: 'float32', data: [attrs.lr] },
        { type: 'float32', data: [attrs.momentum] },
      ],
    );
  return [
    run('theta', ['Theta', 'G', 'Buffer', 'Gate'], [theta!, grad!, buffer!, gate!], `Theta[index] - uniforms.lr * b`, 'Theta[index]'),
    run('buffer', ['G', 'Buffer', 'Gate'], [grad!, buffer!, gate!], 'b', 'Buffer[index]'),
  ];
}

function pick(inputs: tf.NamedTensorInfoMap, backend: GpuBackend): tf.TensorInfo[] {
  const { when, a, b } = inputs as Record<string, tf.TensorInfo>;
  const n = tf.util.sizeFromShape(a!.shape);
  return [
    backend.runWebGPUProgram(
      program(`pick_${n}`, ['When', 'A', 'B'], a!.shape, n, `result[index] = select(f32(B[index]), f32(A[index]), ${holds('When')});`),
      [when!, a!, b!],
      'float32',
    ),
  ];
}

function movingAverage(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { decay: number }): tf.TensorInfo[] {
  const { value, has, x, gate } = inputs as Record<string, tf.TensorInfo>;
  const n = tf.util.sizeFromShape(value!.shape);
  const d = attrs.decay;
  return [
    backend.runWebGPUProgram(
      program(
        `moving_average_${n}_${d}`,
        ['M', 'Has', 'X', 'Gate'],
        value!.shape,
        n,
        `
        let next = select(X[index], ${f(d)} * M[index] + ${f(1 - d)} * X[index], ${holds('Has')});
        result[index] = select(M[index], next, ${holds('Gate')});`,
      ),
      [value!, has!, x!, gate!],
      'float32',
    ),
    backend.runWebGPUProgram(
      program(`moving_average_has`, ['Has', 'Gate'], [], 1, `result[0] = select(f32(Has[0]), 1.0, ${holds('Gate')});`),
      [has!, gate!],
      'float32',
    ),
  ];
}

/** The inputs given, in the kernel's order, with the WGSL names X, X1… (or S0, S1…). */
function present(inputs: tf.NamedTensorInfoMap, names: string[]): Array<[string, tf.TensorInfo]> {
  return names.flatMap((n) => (inputs[n] ? [[n.toUpperCase(), inputs[n] as tf.TensorInfo] as [string, tf.TensorInfo]] : []));
}

/**
 * A program over many small inputs in passes of at most six, each also
 * reading the previous pass's output as Prev: a shader may bind only eight
 * storage buffers (WebGPU's default limit, which tfjs keeps), its output
 * included. `body` gets the pass's inputs and whether there is a Prev.
 */
function inPasses(
  backend: GpuBackend,
  key: string,
  given: Array<[string, tf.TensorInfo]>,
  outputShape: number[],
  body: (pass: Array<[string, tf.TensorInfo]>, hasPrev: boolean) => string,
): tf.TensorInfo {
  let prev: tf.TensorInfo | undefined;
  for (let start = 0; start === 0 || start < given.length; start += 6) {
    const pass = given.slice(start, start + 6);
    const names = [...(prev ? ['Prev'] : []), ...pass.map(([n]) => n)];
    const passKey = `${key}_${pass.map(([n, t]) => `${n}${tf.util.sizeFromShape(t.shape)}`).join('_')}_${prev ? 'p' : ''}`;
    const out = backend.runWebGPUProgram(
      program(passKey, names, outputShape, 1, body(pass, prev !== undefined)),
      [...(prev ? [prev] : []), ...pass.map(([, t]) => t)],
      'float32',
    );
    if (prev) backend.disposeData(prev.dataId);
    prev = out;
  }
  return prev!;
}

function allFinite(inputs: tf.NamedTensorInfoMap, backend: GpuBackend): tf.TensorInfo[] {
  const given = present(inputs, ['x', ...Array.from({ length: 7 }, (_, i) => `x${i + 1}`)]);
  return [
    inPasses(backend, 'all_finite', given, [1], (pass, hasPrev) => {
      const loops = pass.map(([name, t]) => `for (var i = 0; i < ${tf.util.sizeFromShape(t.shape)}; i++) { if (!${finite(`${name}[i]`)}) { ok = 0.0; } }`);
      return `
        var ok = ${hasPrev ? 'Prev[0]' : '1.0'};
        ${loops.join('\n        ')}
        result[0] = ok;`;
    }),
  ];
}

function scalars(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { fallback: number[] }): tf.TensorInfo[] {
  const given = present(
    inputs,
    attrs.fallback.map((_, i) => `s${i}`),
  );
  return [
    inPasses(backend, `scalars_${attrs.fallback.join('_')}`, given, [attrs.fallback.length], (pass, hasPrev) => {
      const names = new Set(pass.map(([n]) => n));
      const value = (v: number, i: number) => (names.has(`S${i}`) ? `f32(S${i}[0])` : hasPrev ? `Prev[${i}]` : Number.isNaN(v) ? 'uniforms.NAN' : f(v));
      return attrs.fallback.map((v, i) => `result[${i}] = ${value(v, i)};`).join('\n        ');
    }),
  ];
}

/** WGSL fn rowEntropy(r, &logp): row r of Logits [B, C]'s entropy, its log-softmax left in logp. */
export const rowEntropy = (C: number) => `
      fn rowEntropy(r : i32, logp : ptr<function, array<f32, ${C}>>) -> f32 {
        let o = r * ${C};
        var m = Logits[o];
        for (var c = 1; c < ${C}; c++) { m = max(m, Logits[o + c]); }
        var s = 0.0;
        for (var c = 0; c < ${C}; c++) { s += exp(Logits[o + c] - m); }
        let ls = log(s);
        var e = 0.0;
        for (var c = 0; c < ${C}; c++) { let lp = Logits[o + c] - m - ls; (*logp)[c] = lp; e -= exp(lp) * lp; }
        return e;
      }`;

function entropyLoss(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { margin?: number; mean: boolean }): tf.TensorInfo[] {
  const { logits, weights } = inputs as Record<string, tf.TensorInfo | undefined>;
  const [B, C] = logits!.shape as [number, number];
  const below = (e: string) => (attrs.margin === undefined ? 'true' : `${e} < ${f(attrs.margin)}`);
  const key = `${B}_${C}_${attrs.margin ?? 'all'}_${attrs.mean}_${weights ? 'w' : 'nw'}`;
  const run = (name: string, names: string[], ins: tf.TensorInfo[], shape: number[], threads: number, body: string, prelude = '') =>
    backend.runWebGPUProgram(program(`entropy_${name}_${key}`, names, shape, threads, body, prelude), ins, 'float32');
  const entropies = run('e', ['Logits'], [logits!], [B], B, `var logp : array<f32, ${C}>; result[index] = rowEntropy(index, &logp);`, rowEntropy(C));
  const count = run(
    'count',
    ['E'],
    [entropies],
    [1],
    1,
    `
        var n = 0.0;
        for (var b = 0; b < ${B}; b++) { if (${below('E[b]')}) { n += 1.0; } }
        result[0] = n;`,
  );
  // w_b: the row's weight when it is below the margin, over the count with `mean`.
  const weight = (b: string) => `select(0.0, ${weights ? `W[${b}]` : '1.0'}${attrs.mean ? ' / max(Count[0], 1.0)' : ''}, ${below(`E[${b}]`)})`;
  const wNames = weights ? ['W'] : [];
  const wIns = weights ? [weights] : [];
  const loss = run(
    'loss',
    ['E', 'Count', ...wNames],
    [entropies, count, ...wIns],
    [1],
    1,
    `
        var l = 0.0;
        for (var b = 0; b < ${B}; b++) { l += ${weight('b')} * E[b]; }
        result[0] = l;`,
  );
  const grad = run(
    'grad',
    ['Logits', 'E', 'Count', ...wNames],
    [logits!, entropies, count, ...wIns],
    [B, C],
    B,
    `
        var logp : array<f32, ${C}>;
        _ = rowEntropy(index, &logp);
        let w = ${weight('index')};
        for (var c = 0; c < ${C}; c++) { result[index * ${C} + c] = -w * exp(logp[c]) * (logp[c] + E[index]); }`,
    rowEntropy(C),
  );
  return [entropies, loss, count, grad];
}

/** Registers the kernels for the webgpu backend (a name already registered is left alone). */
export function registerGpuKernels(): void {
  const kernels: Array<[string, GpuKernel]> = [
    ['WildttaLayerNorm', layerNorm],
    ['WildttaLayerNormGrad', layerNormGrad],
    ['WildttaGeluGrad', geluGrad],
    ['WildttaSoftmaxBackward', softmaxBackward],
    ['WildttaHeadsMerge', headsMerge],
    ['WildttaHeadsGrad', headsGrad],
    ['WildttaHeadsScores', headsScores],
    ['WildttaHeadsMix', headsMix],
    ['WildttaSamAscent', samAscent],
    ['WildttaSgdMomentum', sgdMomentum],
    ['WildttaPick', pick],
    ['WildttaMovingAverage', movingAverage],
    ['WildttaAllFinite', allFinite],
    ['WildttaScalars', scalars],
    ['WildttaEntropyLoss', entropyLoss],
    ['WildttaGroupNorm', groupNorm],
    ['WildttaGroupNormGrad', groupNormGrad],
    ['WildttaInterleave', interleave],
  ];
  registerWebgpu(kernels);
}

/**
 * GroupNorm over x [B, H, W, C] (channel fastest) in G groups, as the host's
 * WildttaGroupNorm: y (then ReLU), x̂ and σ⁻¹ [B, G]. Six dispatches (eight
 * past POSITIONS_PER_THREAD positions) where the tfjs ops take about ten: per image and channel Σ_p x, the groups' means,
 * Σ_p (x − mean)², σ⁻¹, then x̂ and y one thread per value.
 */
function groupNorm(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { groups: number; eps: number; relu: boolean }): tf.TensorInfo[] {
  const { x, scale, shift } = inputs as Record<string, tf.TensorInfo>;
  const [B, H, W, C] = x!.shape as [number, number, number, number];
  const { G, per, P, count, run, sums, perGroup, perValue } = groupGeometry(backend, 'gn', B, H * W, C, attrs.groups);
  // acc: the sum of S [B, C] over this thread's image and group.
  const groupSum = `${perGroup} var acc = 0.0; for (var j = 0; j < ${per}; j++) { acc += S[b * ${C} + g * ${per} + j]; }`;
  const s1 = sums('s1', ['X'], [x!], '', '', ['X[i]']);
  const mean = run('mean', ['S'], [s1], [B, G], B * G, `${groupSum} result[index] = acc / ${f(count)};`);
  const s2 = sums('s2', ['X', 'Mean'], [x!, mean], `let m = Mean[b * ${G} + c / ${per}];`, 'let d = X[i] - m;', ['d * d']);
  const inv = run(`inv_${f(attrs.eps)}`, ['S'], [s2], [B, G], B * G, `${groupSum} result[index] = 1.0 / sqrt(acc / ${f(count)} + ${f(attrs.eps)});`);
  const xhat = run('xhat', ['X', 'Mean', 'Inv'], [x!, mean, inv], x!.shape, B * P * C, `${perValue} result[index] = (X[index] - Mean[k]) * Inv[k];`);
  const y = run(
    `y_${attrs.relu ? 'relu' : 'plain'}`,
    ['X', 'Mean', 'Inv', 'Scale', 'Shift'],
    [x!, mean, inv, scale!, shift!],
    x!.shape,
    B * P * C,
    `${perValue} let v = (X[index] - Mean[k]) * Inv[k] * Scale[c] + Shift[c];
        result[index] = ${attrs.relu ? 'select(v, 0.0, v < 0.0)' : 'v'};`,
  );
  for (const t of [s1, mean, s2]) backend.disposeData(t.dataId);
  return [y, xhat, inv];
}

/**
 * GroupNorm's backward, as the host's WildttaGroupNormGrad: dy masked by
 * y > 0 where y is given (the ReLU after the norm), dscale = Σ dy·x̂, dshift
 * = Σ dy and, with inputGrad, dx = σ⁻¹ (dx̂ − mean_g(dx̂) − x̂·mean_g(dx̂·x̂)),
 * dx̂ = dy·scale. Five dispatches (six past POSITIONS_PER_THREAD positions)
 * where the tfjs ops take about fifteen.
 */
function groupNormGrad(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { groups: number; inputGrad: boolean }): tf.TensorInfo[] {
  const { dy, xhat, inv, scale, y } = inputs as Record<string, tf.TensorInfo | undefined>;
  const [B, H, W, C] = dy!.shape as [number, number, number, number];
  const masked = y !== undefined;
  const { G, per, P, count, run, sums, perGroup, perValue } = groupGeometry(backend, `gng_${masked ? 'm' : 'n'}`, B, H * W, C, attrs.groups);
  const d = (i: string) => (masked ? `select(0.0, Dy[${i}], Y[${i}] > 0.0)` : `Dy[${i}]`);
  const names = ['Dy', 'Xhat', ...(masked ? ['Y'] : [])];
  const ins = [dy!, xhat!, ...(masked ? [y!] : [])];
  // T [B, 2, C]: per image and channel Σ_p d·x̂, then Σ_p d.
  const t = sums('t', names, ins, '', `let v = ${d('i')};`, ['v * Xhat[i]', 'v']);
  const overImages = (row: number) => `var acc = 0.0; for (var b = 0; b < ${B}; b++) { acc += T[b * ${2 * C} + ${row * C} + index]; } result[index] = acc;`;
  const out = [run('dscale', ['T'], [t], [C], C, overImages(0)), run('dshift', ['T'], [t], [C], C, overImages(1))];
  if (attrs.inputGrad) {
    // M [B, G, 2]: the group means of dx̂ and of dx̂·x̂.
    const m = run(
      'm',
      ['T', 'Scale'],
      [t, scale!],
      [B, G, 2],
      B * G,
      `${perGroup} var m1 = 0.0; var m2 = 0.0;
        for (var j = 0; j < ${per}; j++) { let c = g * ${per} + j; m1 += T[b * ${2 * C} + ${C} + c] * Scale[c]; m2 += T[b * ${2 * C} + c] * Scale[c]; }
        result[2 * index] = m1 / ${f(count)};
        result[2 * index + 1] = m2 / ${f(count)};`,
    );
    out.push(
      run(
        'dx',
        [...names, 'Inv', 'Scale', 'M'],
        [...ins, inv!, scale!, m],
        dy!.shape,
        B * P * C,
        `${perValue} result[index] = Inv[k] * (${d('index')} * Scale[c] - M[2 * k] - Xhat[index] * M[2 * k + 1]);`,
      ),
    );
    backend.disposeData(m.dataId);
  }
  backend.disposeData(t.dataId);
  return out;
}

/**
 * A GroupNorm's sizes, its programs' runner (keyed by them), its per-channel
 * sums over positions (`sums`), and the WGSL that names a thread's image,
 * channel, group and (b, g) index.
 */
function groupGeometry(backend: GpuBackend, prefix: string, B: number, P: number, C: number, G: number) {
  const per = C / G;
  const key = `${prefix}_${B}_${P}_${C}_${G}`;
  const run = (name: string, names: string[], ins: tf.TensorInfo[], shape: number[], threads: number, body: string) =>
    backend.runWebGPUProgram(program(`${key}_${name}`, names, shape, threads, body), ins, 'float32');
  const perChannel = `let b = index / ${C}; let c = index % ${C};`;
  /**
   * [B, terms, C]: per image and channel, each term's sum over the
   * positions (`pre` once per thread, b and c known; `each` per position i,
   * the value's index). Up to POSITIONS_PER_THREAD positions one thread
   * sums a channel alone; past that, threads sum chunks of that many
   * positions into partial sums [B, terms, chunks, C], which a second
   * dispatch adds up.
   */
  const sums = (name: string, names: string[], ins: tf.TensorInfo[], pre: string, each: string, terms: string[]) => {
    const R = terms.length;
    const accumulate = (from: string, to: string) => `${terms.map((_, r) => `var a${r} = 0.0;`).join(' ')}
        for (var p = ${from}; p < ${to}; p++) { let i = (b * ${P} + p) * ${C} + c; ${each} ${terms.map((e, r) => `a${r} += ${e};`).join(' ')} }`;
    if (P <= POSITIONS_PER_THREAD) {
      const store = terms.map((_, r) => `result[(b * ${R} + ${r}) * ${C} + c] = a${r};`).join(' ');
      return run(name, names, ins, [B, R, C], B * C, `${perChannel} ${pre} ${accumulate('0', `${P}`)} ${store}`);
    }
    const K = Math.ceil(P / POSITIONS_PER_THREAD);
    const store = terms.map((_, r) => `result[((b * ${R} + ${r}) * ${K} + k) * ${C} + c] = a${r};`).join(' ');
    const partial = run(
      `${name}_part`,
      names,
      ins,
      [B, R, K, C],
      B * K * C,
      `let c = index % ${C}; let k = (index / ${C}) % ${K}; let b = index / ${C * K}; ${pre}
        ${accumulate(`k * ${POSITIONS_PER_THREAD}`, `min(${P}, (k + 1) * ${POSITIONS_PER_THREAD})`)} ${store}`,
    );
    const total = run(
      `${name}_sum`,
      ['Part'],
      [partial],
      [B, R, C],
      B * R * C,
      `let c = index % ${C}; let o = (index / ${C}) * ${K * C} + c;
        var acc = 0.0; for (var k = 0; k < ${K}; k++) { acc += Part[o + k * ${C}]; } result[index] = acc;`,
    );
    backend.disposeData(partial.dataId);
    return total;
  };
  return {
    G,
    per,
    P,
    count: P * per,
    run,
    sums,
    perGroup: `let b = index / ${G}; let g = index % ${G};`,
    perValue: `let c = index % ${C}; let k = (index / ${P * C}) * ${G} + c / ${per};`,
  };
}

/**
 * A strided conv's input gradient woven from its phases, as the host's
 * WildttaInterleave: one thread per value of [B, H, W, C], reading its
 * phase (absent ones zeros). One dispatch where the tfjs ops take a pad per
 * short phase, three stacks and a slice. Up to stride 2: four phases and the
 * output are all a shader may bind here.
 */
function interleave(inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: { stride: number; height: number; width: number }): tf.TensorInfo[] {
  const s = attrs.stride;
  const phases = Array.from({ length: s * s }, (_, i) => inputs[`p${i}`] as tf.TensorInfo | undefined);
  const [B, , , C] = phases[0]!.shape as [number, number, number, number];
  const [H, W] = [attrs.height, attrs.width];
  const present = phases.flatMap((t, i) => (t ? [{ i, t, name: `P${i}` }] : []));
  const reads = present.map(({ i, t, name }) => {
    const [, R, Q] = t.shape;
    return `if (a == ${i}) { v = ${name}[((b * ${R} + h / ${s}) * ${Q} + w / ${s}) * ${C} + c]; }`;
  });
  return [
    backend.runWebGPUProgram(
      program(
        `interleave_${s}_${B}_${H}_${W}_${C}_${present.map(({ i, t }) => `${i}x${t.shape.join('x')}`).join('_')}`,
        present.map((p) => p.name),
        [B, H, W, C],
        B * H * W * C,
        `let c = index % ${C}; let w = (index / ${C}) % ${W}; let h = (index / ${C * W}) % ${H}; let b = index / ${C * W * H};
        let a = (h % ${s}) * ${s} + w % ${s};
        var v = 0.0;
        ${reads.join(' ')}
        result[index] = v;`,
      ),
      present.map((p) => p.t),
      'float32',
    ),
  ];
}

/**
 * The most values a one-dimensional dispatch of this file's programs covers
 * (WebGPU's 65,535 workgroups a dimension, of 64 threads).
 */
export const MAX_THREADS = 65_535 * WORKGROUP;

/**
 * The most positions one GroupNorm thread sums alone (its loop over an
 * image's positions for one channel), about the LayerNorm kernels' rows of
 * 768: a GPU thread's loads in such a loop wait one after another. A larger
 * image (a 224 px ResNet's first stages: 3,136 and 12,544 positions) is
 * summed in chunks of this many positions by threads of their own, then
 * the chunks' sums added up: one dispatch more per sum, where the tfjs ops
 * took some ten dispatches a GroupNorm. Not yet timed on a real GPU.
 */
export const POSITIONS_PER_THREAD = 1024;

/** Whether the GroupNorm kernels take x [B, H, W, C] (else the tfjs ops do): one dispatch's reach. */
export const groupNormFits = (shape: readonly number[]) => shape[0]! * shape[1]! * shape[2]! * shape[3]! <= MAX_THREADS;

/** A WebGPU kernel as written here: its inputs, the backend, its attributes. */
export type GpuKernel = (inputs: tf.NamedTensorInfoMap, backend: GpuBackend, attrs: never) => tf.TensorInfo[];

/** Registers each named kernel for the webgpu backend, leaving a name already registered alone. */
export function registerWebgpu(kernels: ReadonlyArray<readonly [string, GpuKernel]>): void {
  for (const [kernelName, fn] of kernels) {
    if (tf.getKernel(kernelName, 'webgpu')) continue;
    tf.registerKernel({
      kernelName,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => fn(inputs, backend as unknown as GpuBackend, attrs as never),
    });
  }
}
