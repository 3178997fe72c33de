// The host kernels (vit-kernels.ts, update-kernels.ts, composites.ts) on
// both backends they serve, wasm and cpu, against the same arithmetic written
// with tfjs ops or taken by autodiff.
//
//   node --import tsx --test src/kernels/host/kernels.test.ts
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { headsGrad, softmaxEntropy } from '..';
import { runKernel } from '../calls';
import { useSimdKernels } from './glue';
import { packedBackward, packedForward } from './packed';
import { normOps } from '../ops/norm';
import { groupNorm, groupNormGrad, maxPoolGrad } from '..';

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}
function close(a: tf.Tensor, b: tf.Tensor, label: string, tol = 1e-5): void {
  const scale = tf.tidy(() => Math.max(1, tf.max(tf.abs(b)).dataSync()[0]!));
  const err = maxAbsDiff(a, b);
  assert.ok(err <= tol * scale, `${label}: off by ${err.toExponential(2)}`);
}

const R = 7;
const D = 12;
const H = 3;
const N = 5;
const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** Multi-head attention with tfjs ops from qkv [n, 3d] (h heads): per head softmax(q·kᵀ)·v, heads side by side. */
function attentionOps(qkv: tf.Tensor, n = N, d = D, h = H): tf.Tensor2D {
  const heads = tf.transpose(tf.reshape(qkv, [n, 3, h, d / h]), [1, 2, 0, 3]); // [3, h, n, hd]
  const [q, k, v] = tf.unstack(heads) as tf.Tensor3D[];
  const o = tf.matMul(tf.softmax(tf.matMul(q!, k!, false, true)), v!);
  return tf.reshape(tf.transpose(o, [1, 0, 2]), [n, d]);
}

/** Each head's softmax(q·kᵀ) [n, n] from qkv [n, 3d] (h heads), as the forward keeps them. */
function softmaxesOps(qkv: tf.Tensor, n: number, d: number, h: number): tf.Tensor2D[] {
  const heads = tf.transpose(tf.reshape(qkv, [n, 3, h, d / h]), [1, 2, 0, 3]);
  const [q, k] = tf.unstack(heads) as tf.Tensor3D[];
  return tf.unstack(tf.softmax(tf.matMul(q!, k!, false, true))) as tf.Tensor2D[];
}

const geluOps = (t: tf.Tensor) => tf.mul(t, tf.mul(tf.add(tf.erf(tf.mul(t, Math.SQRT1_2)), 1), 0.5));

after(async () => {
  useSimdKernels(true);
  await tf.setBackend('cpu');
});

// On wasm, with the SIMD kernels (simd-kernels.wat) where they exist and without (the JavaScript ones).
for (const [backend, simd] of [
  ['wasm', true],
  ['wasm', false],
  ['cpu', false],
] as const) {
  const label = backend === 'wasm' ? `wasm (${simd ? 'SIMD' : 'JavaScript'})` : backend;
  const setBackend = async (name: string) => {
    await tf.setBackend(name);
    useSimdKernels(simd);
  };
  test(`${label}: LayerNorm forward and backward (with and without the residual) match tfjs ops`, async () => {
    await setBackend(backend);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = tf.add(tf.mul(rnd([R, D], 1), 3), 2) as tf.Tensor2D;
      const gamma = rnd([D], 2);
      const beta = rnd([D], 3);
      const eps = 1e-6;
      const [y, stats] = runKernel('WildttaLayerNorm', { x, gamma, beta }, { eps });
      const mean = tf.mean(x, -1, true);
      const refRstd = tf.rsqrt(tf.add(tf.mean(tf.squaredDifference(x, mean), -1, true), eps));
      const refXhat = tf.mul(tf.sub(x, mean), refRstd);
      close(stats!, tf.concat([mean, refRstd], 1), 'stats (mean, rstd)');
      close(y!, tf.add(tf.mul(refXhat, gamma), beta), 'y');
      const yOnly = runKernel('WildttaLayerNorm', { x, gamma, beta }, { eps, save: false });
      assert.equal(yOnly.length, 1);
      close(yOnly[0]!, y!, 'y without the statistics');

      const dy = rnd([R, D], 4);
      const residual = rnd([R, D], 5);
      // Reference: autodiff through the same LayerNorm written with ops.
      const ln = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const m = tf.mean(xx, -1, true);
        return tf.add(tf.mul(tf.mul(tf.sub(xx, m), tf.rsqrt(tf.add(tf.mean(tf.square(tf.sub(xx, m)), -1, true), eps))), g), b);
      };
      const [rdx, rdg, rdb] = tf.grads((xx, g, b) => tf.sum(tf.mul(ln(xx, g, b), dy)))([x, gamma, beta]);
      const [dg, db, dx] = runKernel('WildttaLayerNormGrad', { dy, x, stats: stats!, gamma, residual }, { needInput: true });
      close(dg!, rdg!, 'dgamma');
      close(db!, rdb!, 'dbeta');
      close(dx!, tf.add(rdx!, residual), 'dx + residual');
      const plain = runKernel('WildttaLayerNormGrad', { dy, x, stats: stats!, gamma }, { needInput: true });
      close(plain[2]!, rdx!, 'dx');
      const noInput = runKernel('WildttaLayerNormGrad', { dy, x, stats: stats!, gamma }, { needInput: false });
      assert.equal(noInput.length, 2);
      close(noInput[0]!, rdg!, 'dgamma without dx');
    });
    assert.equal(tf.memory().numTensors, before);
  });

  test(`${label}: GELU's backward and the softmax backward match autodiff`, async () => {
    await setBackend(backend);
    tf.tidy(() => {
      const a = tf.mul(rnd([R, D], 6), 3) as tf.Tensor2D;
      const dy = rnd([R, D], 7) as tf.Tensor2D;
      const cdf = tf.mul(tf.add(tf.erf(tf.mul(a, Math.SQRT1_2)), 1), 0.5);
      const gelu = (t: tf.Tensor) => tf.mul(t, tf.mul(tf.add(tf.erf(tf.mul(t, Math.SQRT1_2)), 1), 0.5));
      const [refDa] = tf.grads((t) => tf.sum(tf.mul(gelu(t), dy)))([a]);
      close(runKernel('WildttaGeluGrad', { dy, a, cdf })[0]!, refDa!, 'GELU da', 1e-4);
      // The MLP's backward through fc2ᵀ, GELU and fc1ᵀ in one composite: dy·W₂ must be the dy above.
      const w2 = rnd([5, D], 14);
      const w1 = rnd([D, 6], 15);
      const up = rnd([R, 5], 16);
      const dataIds = tf.backend().numDataIds();
      const [mlp] = runKernel('WildttaMlpGrad', { dy: up, w2, a, cdf, w1 });
      assert.equal(tf.backend().numDataIds(), dataIds + 1, 'the composite leaves only its output');
      const [refUp] = tf.grads((t) => tf.sum(tf.mul(gelu(t), tf.matMul(up, w2))))([a]);
      close(mlp!, tf.matMul(refUp!, w1), 'MLP backward (composite)', 1e-4);
      const s = tf.reshape(a, [R, 3, D / 3]);
      const dP = tf.reshape(dy, [R, 3, D / 3]);
      const [refDs] = tf.grads((t) => tf.sum(tf.mul(tf.softmax(t), dP)))([s]);
      close(runKernel('WildttaSoftmaxBackward', { dP, p: tf.softmax(s) })[0]!, refDs!, 'softmax dS');
    });
  });

  test(`${label}: per-head attention kernels (column blocks, softmax backward) give attention and its gradient`, async () => {
    await setBackend(backend);
    tf.tidy(() => {
      const qkv = rnd([N, 3 * D], 8) as tf.Tensor2D;
      const dO = tf.matMul(rnd([N, D], 9), rnd([D, D], 12)) as tf.Tensor2D;
      // Reference per head with autodiff: o = softmax(q·kᵀ)·v, loss Σ o ⊙ dO.
      const perHead = attentionOps;
      const refO = perHead(qkv);
      const [refDqkv] = tf.grads((t) => tf.sum(tf.mul(perHead(t), dO)))([qkv]);

      const parts = runKernel('WildttaColumnBlocks', { x: qkv }, { blocks: 3 * H, transposeFrom: H }) as tf.Tensor2D[];
      assert.equal(parts.length, 5 * H);
      const refParts = tf.split(qkv, 3 * H, 1);
      parts.slice(0, 3 * H).forEach((t, i) => close(t, refParts[i]!, `block ${i}`));
      parts.slice(3 * H).forEach((t, i) => close(t, tf.transpose(refParts[H + i]!), `transposed block ${H + i}`));
      const kTOnly = runKernel('WildttaColumnBlocks', { x: qkv }, { blocks: 3 * H, transposeFrom: H, transposeTo: 2 * H });
      assert.equal(kTOnly.length, 4 * H);
      kTOnly.slice(3 * H).forEach((t, i) => close(t, tf.transpose(refParts[H + i]!), `transposed block ${H + i} (up to 2H)`));
      const [q, k, v, kT, vT] = [0, 1, 2, 3, 4].map((i) => parts.slice(i * H, (i + 1) * H));
      const p = q!.map((qh, h) => tf.softmax(tf.matMul(qh, kT![h]!)) as tf.Tensor2D);
      close(
        tf.concat(
          p.map((ph, h) => tf.matMul(ph, v![h]!)),
          1,
        ),
        refO,
        'o',
      );

      const dOh = runKernel('WildttaColumnBlocks', { x: dO }, { blocks: H, transposeFrom: H }) as tf.Tensor2D[];
      assert.equal(dOh.length, H);
      const grads: tf.Tensor[][] = [[], [], []];
      for (let h = 0; h < H; h++) {
        const dP = tf.matMul(dOh[h]!, vT![h]!);
        const [dS, dST, pT] = runKernel('WildttaSoftmaxGrad', { dP, p: p[h]! }) as tf.Tensor2D[];
        close(dS!, tf.mul(p[h]!, tf.sub(dP, tf.sum(tf.mul(dP, p[h]!), -1, true))), `dS head ${h}`);
        close(dST!, tf.transpose(dS!), `dSᵀ head ${h}`);
        close(pT!, tf.transpose(p[h]!), `Pᵀ head ${h}`);
        grads[0]!.push(tf.matMul(dS!, k![h]!));
        grads[1]!.push(tf.matMul(dST!, q![h]!));
        grads[2]!.push(tf.matMul(pT!, dOh[h]!));
      }
      close(tf.concat(grads.flat(), 1), refDqkv!, 'dqkv', 1e-4);

      // Only the class token's output (row 0) gets a gradient: one kernel, same dqkv as autodiff.
      const dO0 = tf.slice(dO, [0, 0], [1, D]) as tf.Tensor2D;
      const [refCls] = tf.grads((t) => tf.sum(tf.mul(tf.slice(perHead(t), [0, 0], [1, D]), dO0)))([qkv]);
      close(runKernel('WildttaClassAttentionGrad', { dO: dO0, qkv }, { heads: H })[0]!, refCls!, 'class-token dqkv', 1e-4);
    });
  });

  // (n, width, heads): head width 4 (below the SIMD kernel's 16 columns: JavaScript, and the composite's per-head
  // products) and 16, 20, 32 (SIMD on wasm: one group of 16 columns, a second moved back over the first, two), with
  // token counts not multiples of 4 (its last tile of keys moved back) and 4 itself.
  for (const [n, width, heads] of [
    [5, 12, 3],
    [5, 48, 3],
    [13, 60, 3],
    [4, 64, 2],
  ] as const) {
    test(`${label}: attention's backward of all heads at once (n ${n}, head width ${width / heads}), alone and through proj and qkv, matches autodiff`, async () => {
      await setBackend(backend);
      tf.tidy(() => {
        const qkv = rnd([n, 3 * width], 50) as tf.Tensor2D;
        const dO = rnd([n, width], 51) as tf.Tensor2D;
        const dy = rnd([n, width], 52) as tf.Tensor2D;
        const wo = rnd([width, width], 53) as tf.Tensor2D;
        const wqkv = rnd([3 * width, width], 54) as tf.Tensor2D;
        const p = softmaxesOps(qkv, n, width, heads);
        const softmaxes = Object.fromEntries(p.map((t, h) => [`p${h}`, t]));
        const grad = (dOut: tf.Tensor) => tf.grads((t) => tf.sum(tf.mul(attentionOps(t, n, width, heads), dOut)))([qkv])[0]!;

        const ids = tf.backend().numDataIds();
        const [dqkv] = runKernel('WildttaAttentionHeadsGrad', { dO, qkv, ...softmaxes }, { heads });
        assert.equal(tf.backend().numDataIds(), ids + 1, 'the kernel leaves only its output (its scratch freed)');
        close(dqkv!, grad(dO), 'dqkv', 1e-4);

        const before = tf.backend().numDataIds();
        const composite = runKernel('WildttaAttentionGrad', { dy, wo, wqkv, qkv, ...softmaxes }, { heads });
        assert.equal(tf.backend().numDataIds(), before + 1, 'the composite leaves only its output');
        close(composite[0]!, tf.matMul(grad(tf.matMul(dy, wo)), wqkv), 'through proj, attention and qkv (composite)', 1e-4);
      });
    });
  }

  test(`${label}: GELU and the forward composites (patch embedding, attention, MLP) match tfjs ops and leave only their outputs`, async () => {
    await setBackend(backend);
    tf.tidy(() => {
      const a = tf.mul(rnd([R, D], 40), 3);
      const [y, cdf] = runKernel('WildttaGelu', { a });
      close(y!, geluOps(a), 'GELU');
      close(cdf!, tf.mul(tf.add(tf.erf(tf.mul(a, Math.SQRT1_2)), 1), 0.5), 'Φ');

      // Patch embedding: 2 RGB images of 8×12, patches 4×4, against a transpose and a product.
      const images = tf.randomUniform([2, 8, 12, 3], 0, 1, 'float32', 41);
      const kernel = rnd([4 * 4 * 3, D], 42);
      const patchPos = rnd([6, D], 43);
      const clsPos = rnd([1, 1, D], 44);
      const patchRows = tf.reshape(tf.transpose(tf.reshape(images, [2 * 2, 4, 3, 4 * 3]), [0, 2, 1, 3]), [12, 48]);
      const emb = tf.add(tf.reshape(tf.matMul(patchRows, kernel), [2, 6, D]), patchPos);
      const refTokens = tf.reshape(tf.concat([tf.tile(clsPos, [2, 1, 1]), emb], 1), [14, D]);
      const embedIds = tf.backend().numDataIds();
      const [tokens] = runKernel('WildttaEmbed', { images, kernel, patchPos, clsPos }, { patch: 4 });
      assert.equal(tf.backend().numDataIds(), embedIds + 1, 'the embedding leaves only its output');
      close(tokens!, refTokens, 'patch embedding with class token and positions');

      const x = rnd([N, D], 30);
      const n = rnd([N, D], 31);
      const [wqkv, bqkv, wo, bo] = [rnd([1, D, 3 * D], 32), rnd([3 * D], 33), rnd([1, D, D], 34), rnd([D], 35)];
      const qkv = tf.add(tf.matMul(n, tf.reshape(wqkv, [D, 3 * D])), bqkv);
      const refX1 = tf.add(x, tf.add(tf.matMul(attentionOps(qkv), tf.reshape(wo, [D, D])), bo));
      const hidden = 8;
      const [w1, b1, w2, b2] = [rnd([1, D, hidden], 36), rnd([hidden], 37), rnd([1, hidden, D], 38), rnd([D], 39)];
      const pre = tf.add(tf.matMul(n, tf.reshape(w1, [D, hidden])), b1);
      const refX2 = tf.add(x, tf.add(tf.matMul(geluOps(pre), tf.reshape(w2, [hidden, D])), b2));
      for (const save of [false, true]) {
        const ids = tf.backend().numDataIds();
        const attn = runKernel('WildttaAttention', { x, n, wqkv, bqkv, wo, bo }, { heads: H, save });
        const mlp = runKernel('WildttaMlp', { x, n, w1, b1, w2, b2 }, { save });
        assert.equal(attn.length, save ? 2 + H : 1);
        assert.equal(mlp.length, save ? 3 : 1);
        assert.equal(tf.backend().numDataIds(), ids + attn.length + mlp.length, 'the composites leave only their outputs');
        close(attn[0]!, refX1, `attention block (save ${save})`, 1e-4);
        close(mlp[0]!, refX2, `MLP block (save ${save})`, 1e-4);
        if (!save) continue;
        close(attn[1]!, qkv, 'kept qkv');
        softmaxesOps(qkv, N, D, H).forEach((ph, h) => close(attn[2 + h]!, ph, `kept p${h}`));
        close(mlp[1]!, pre, 'kept a');
        // A composite that throws at its last step (the residual x missing) still frees all it made before.
        const before = tf.backend().numDataIds();
        assert.throws(() => runKernel('WildttaAttention', { n, wqkv, bqkv, wo, bo }, { heads: H, save }));
        assert.equal(tf.backend().numDataIds(), before, 'nothing left behind');
        close(mlp[2]!, tf.mul(tf.add(tf.erf(tf.mul(pre, Math.SQRT1_2)), 1), 0.5), 'kept Φ(a)');
      }
    });
  });

  test(`${label}: gemm.wat's products of packed weights match the backend's (6-row tiles and the rows past them, with and without a bias); weights are packed only where it runs`, async () => {
    await setBackend(backend);
    const runs = backend === 'wasm' && simd;
    // 13 rows: two tiles of 6 and one row past them; widths 16 and 24, two and three panels of 8.
    const [rows, width, hidden] = [13, 16, 24];
    const linear = (w: tf.Tensor2D, b: tf.Tensor1D) => ({ w, b, derived: new Map<string, tf.Tensor>() });
    const fc1 = linear(rnd([hidden, width], 50) as tf.Tensor2D, rnd([hidden], 51) as tf.Tensor1D);
    const fc2 = linear(rnd([width, hidden], 52) as tf.Tensor2D, rnd([width], 53) as tf.Tensor1D);
    const before = tf.memory().numTensors;
    const p1 = packedForward(fc1);
    const p2 = packedForward(fc2);
    const g1 = packedBackward(fc1);
    const g2 = packedBackward(fc2);
    assert.equal(p1 !== undefined && p2 !== undefined && g1 !== undefined && g2 !== undefined, runs, 'packed exactly where gemm.wat runs');
    assert.equal(tf.memory().numTensors, before + (runs ? 4 : 0), 'the packed weights and nothing else are kept');
    assert.equal(packedForward(fc1), p1, 'packed once per Linear');
    if (runs) assert.deepEqual(p1!.shape, [hidden / 8, width, 8]);
    tf.tidy(() => {
      const x = rnd([rows, width], 54);
      const n = rnd([rows, width], 55);
      const weights = { w1: tf.expandDims(tf.transpose(fc1.w), 0), b1: fc1.b, w2: tf.expandDims(tf.transpose(fc2.w), 0), b2: fc2.b };
      const packed: Record<string, tf.Tensor> = runs ? { p1: p1!, p2: p2! } : {};
      const [plain, a, cdf] = runKernel('WildttaMlp', { x, n, ...weights }, { save: true });
      const [viaGemm] = runKernel('WildttaMlp', { x, n, ...weights, ...packed }, { save: false });
      close(viaGemm!, plain!, 'MLP block through gemm.wat');
      // The backward's products: dy·W₂ and da·W₁ with PyTorch's [out, in] weights, packed.
      const dy = rnd([rows, width], 56);
      const ref = tf.matMul(
        tf.mul(tf.matMul(dy, fc2.w), tf.add(cdf!, tf.mul(tf.mul(a!, tf.exp(tf.mul(tf.square(a!), -0.5))), 1 / Math.sqrt(2 * Math.PI)))),
        fc1.w,
      );
      const [grad] = runKernel('WildttaMlpGrad', { dy, w2: fc2.w, a: a!, cdf: cdf!, w1: fc1.w, ...(runs ? { p2: g2!, p1: g1! } : {}) });
      close(grad!, ref, 'MLP backward through gemm.wat');
    });
    tf.dispose([fc1.w, fc1.b, fc2.w, fc2.b, ...fc1.derived.values(), ...fc2.derived.values()]);
  });

  test(`${label}: GroupNorm's kernels (forward, backward through the ReLU or not, with and without dx) match the tfjs ops and leave only their outputs`, async () => {
    await setBackend(backend);
    // 2 images, 3×5 positions, 12 channels in 4 groups; channels that norm.wat takes in fours but not in sixteens
    // (20), and 6 channels, which it cannot take (the JavaScript loops run).
    for (const [shape, groups] of [
      [[2, 3, 5, 12], 4],
      [[1, 4, 3, 20], 5],
      [[2, 3, 3, 6], 3],
    ] as Array<[number[], number]>)
      tf.tidy(() => {
        const C = shape[3]!;
        // scale and shift away from 1 and 0, so that the ReLU cuts.
        const x = tf.add(tf.mul(rnd(shape, 60), 2), 0.5) as tf.Tensor4D;
        const scale = tf.add(rnd([C], 61), 1);
        const shift = rnd([C], 62);
        const eps = 1e-5;
        const dy = rnd(shape, 63) as tf.Tensor4D;
        for (const relu of [false, true]) {
          const o = { groups, eps, epsTensor: tf.scalar(eps), relu };
          const ids = tf.backend().numDataIds();
          const got = groupNorm(x, scale, shift, o);
          assert.equal(tf.backend().numDataIds(), ids + 3, 'the forward leaves y, x̂ and σ⁻¹');
          const want = normOps.groupNorm(x, scale, shift, o);
          const what = `[${shape.join(', ')}], relu ${relu}`;
          close(got.y, want.y, `GroupNorm (${what})`);
          close(got.xhat, want.xhat, `x̂ (${what})`);
          close(got.inv, want.inv, `σ⁻¹ (${what})`);
          for (const inputGrad of [true, false]) {
            const before = tf.backend().numDataIds();
            const a = groupNormGrad(dy, got.xhat, got.inv, scale, relu ? got.y : undefined, { groups, inputGrad });
            assert.equal(tf.backend().numDataIds(), before + (inputGrad ? 3 : 2), 'the backward leaves only its outputs');
            const b = normOps.groupNormGrad(dy, want.xhat, want.inv, scale, relu ? want.y : undefined, { groups, inputGrad });
            close(a.dScale, b.dScale, `dscale (${what})`);
            close(a.dShift, b.dShift, `dshift (${what})`);
            assert.equal(a.dx === undefined, !inputGrad);
            if (inputGrad) close(a.dx!, b.dx!, `dx (${what})`);
          }
        }
      });
  });

  test(`${label}: the max pool's gradient matches tfjs-cpu's (batch 2, odd and non-square sizes, padding, windows that overlap or not; a ReLU's tied zeros masked)`, async () => {
    const cases = [
      [[2, 14, 14, 5], 3, 2, 1],
      [[1, 7, 8, 3], 3, 2, 1],
      [[1, 9, 6, 4], 2, 2, 0],
      [[2, 5, 5, 2], 3, 1, 1],
    ] as Array<[number[], number, number, number]>;
    // Each case's x, dy and dx from tfjs's own gradient, on cpu: tfjs-wasm's MaxPoolGrad is wrong for some shapes (the first three cases: a batch of 2, non-square inputs).
    const run = (relu: boolean, ours: boolean) =>
      cases.map(([shape, size, stride, pad]) =>
        tf.tidy(() => {
          const raw = rnd(shape, 70 + shape[1]!) as tf.Tensor4D;
          const x = relu ? (tf.relu(raw) as tf.Tensor4D) : raw;
          const y = tf.maxPool(x, size, stride, pad);
          const dy = rnd(y.shape, 71) as tf.Tensor4D;
          const dx = ours
            ? maxPoolGrad(dy, x, y, { size, stride, pad })
            : tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, size, stride, pad), dy)))(x);
          // Equal values in a window (a ReLU's zeros) may send dy to any of them; what a ReLU's backward then keeps is the same.
          return (relu ? tf.mul(dx, tf.step(x)) : dx).arraySync();
        }),
      );
    await tf.setBackend('cpu');
    const want = [false, true].map((relu) => run(relu, false));
    await setBackend(backend);
    [false, true].forEach((relu, r) =>
      run(relu, true).forEach((got, i) => {
        const [shape, size, stride, pad] = cases[i]!;
        close(tf.tensor(got), tf.tensor(want[r]![i]!), `${shape.join('×')}, size ${size}, stride ${stride}, pad ${pad}${relu ? ', ReLU' : ''}`, 1e-6);
      }),
    );
    const x = rnd([1, 6, 6, 2], 72) as tf.Tensor4D;
    const y = tf.maxPool(x, 3, 2, 1);
    const ids = tf.backend().numDataIds();
    const dx = maxPoolGrad(y, x, y, { size: 3, stride: 2, pad: 1 });
    assert.equal(tf.backend().numDataIds(), ids + 1, 'only dx is left');
    tf.dispose([x, y, dx]);
  });

  test(`${label}: every N-th row, matrices side by side, and the finiteness flag`, async () => {
    await setBackend(backend);
    tf.tidy(() => {
      const x = rnd([3 * N, D], 10) as tf.Tensor2D;
      const [rows] = runKernel('WildttaEveryNthRow', { x }, { every: N });
      close(rows!, tf.gather(x, [0, N, 2 * N]), 'rows 0, N, 2N');
      const pieces = [3, 1, 4, 1, 5].map((w, i) => rnd([R, w], 20 + i) as tf.Tensor2D);
      const sideBySide = (ts: tf.Tensor2D[]) => runKernel('WildttaConcatColumns', Object.fromEntries(ts.map((t, i) => [`x${i}`, t])))[0]!;
      close(sideBySide(pieces), tf.concat(pieces, 1), 'side by side');
      close(sideBySide([x]), x, 'one piece');
      for (const bad of [NaN, Infinity, -Infinity]) {
        const flagged = runKernel('WildttaAllFinite', { x: tf.concat([x, tf.fill([1, D], bad)]) })[0]!;
        assert.equal(flagged.dataSync()[0], 0, `${bad} is flagged`);
      }
      assert.equal(runKernel('WildttaAllFinite', { x })[0]!.dataSync()[0], 1, 'finite values pass');
      const several = (last: number) => runKernel('WildttaAllFinite', { x, x1: tf.scalar(2), x3: tf.scalar(last) })[0]!.dataSync()[0];
      assert.equal(several(3), 1, 'several finite inputs pass');
      assert.equal(several(NaN), 0, 'a NaN in a later input is flagged');
    });
  });

  test(`${label}: attention's batched backward (headsGrad: tfjs products with the host's softmax backward and merge) matches autodiff`, async () => {
    await setBackend(backend);
    tf.tidy(() => {
      const [B, heads, tokens, d] = [2, 3, 5, 4];
      const D = heads * d;
      const [q, k, v] = [40, 41, 42].map((seed) => rnd([B * heads, tokens, d], seed) as tf.Tensor3D);
      const dO = rnd([B * tokens, D], 43) as tf.Tensor2D;
      // Heads [B·H, N, d] side by side as [B·N, H·d], the layout of dO and of each third of dqkv.
      const sideBySide = (t: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(t, [B, heads, tokens, d]), [0, 2, 1, 3]), [B * tokens, D]);
      const loss = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
        tf.sum(tf.mul(sideBySide(tf.matMul(tf.softmax(tf.matMul(qq as tf.Tensor3D, kk as tf.Tensor3D, false, true)), vv as tf.Tensor3D)), dO));
      const [dq, dk, dv] = tf.grads(loss)([q!, k!, v!]);
      const p = tf.softmax(tf.matMul(q!, k!, false, true));
      const dqkv = headsGrad(dO, { kind: 'heads', q: q!, k: k!, v: v!, p: p as tf.Tensor3D }, B);
      close(dqkv, tf.concat([sideBySide(dq!), sideBySide(dk!), sideBySide(dv!)], 1), 'dL/dqkv');
    });
  });

  test(`${label}: the update kernels (SAM's ascent, gated SGD-momentum, the entropy loss, moving average, pick, scalars) match tfjs ops`, async () => {
    await setBackend(backend);
    tf.tidy(() => {
      const theta = rnd([37], 30) as tf.Tensor1D;
      const g = rnd([37], 31) as tf.Tensor1D;
      const buf = rnd([37], 32) as tf.Tensor1D;
      const [ascended, norm] = runKernel('WildttaSamAscent', { theta, grad: g }, { rho: 0.05 });
      const n = tf.sqrt(tf.sum(tf.square(g)));
      close(norm!, tf.reshape(n, [1]), '‖g‖');
      close(ascended!, tf.add(theta, tf.mul(g, tf.div(0.05, tf.add(n, 1e-12)))), 'θ + ε');
      const zero = runKernel('WildttaSamAscent', { theta, grad: tf.zerosLike(g) }, { rho: 0.05 });
      close(zero[0]!, theta, 'a zero gradient leaves θ');

      const sgd = (gate: boolean) =>
        runKernel('WildttaSgdMomentum', { theta, grad: g, buffer: buf, gate: tf.scalar(gate, 'bool') }, { lr: 0.01, momentum: 0.9 });
      const [stepped, nextBuf] = sgd(true);
      const expectedBuf = tf.add(tf.mul(buf, 0.9), g);
      close(nextBuf!, expectedBuf, 'momentum buffer');
      close(stepped!, tf.sub(theta, tf.mul(expectedBuf, 0.01)), 'stepped θ');
      const [held, heldBuf] = sgd(false);
      assert.deepEqual(held!.dataSync(), theta.dataSync(), 'a closed gate leaves θ exactly');
      assert.deepEqual(heldBuf!.dataSync(), buf.dataSync(), 'and the buffer');

      // The entropy loss against the same loss written with tfjs ops and its autodiff gradient.
      const logits = tf.mul(rnd([6, 5], 33), 2) as tf.Tensor2D;
      const entropies = softmaxEntropy(logits);
      const sorted = [...entropies.dataSync()].sort((a, b) => a - b);
      const margin = (sorted[2]! + sorted[3]!) / 2; // three rows below it
      const weights = tf.abs(rnd([6], 34)) as tf.Tensor1D;
      for (const [label, attrs, w] of [
        ['weighted', { mean: false }, weights],
        ['mean below a margin', { margin, mean: true }, undefined],
        ['weighted, below a margin', { margin, mean: false }, weights],
      ] as const) {
        // Which rows count is a constant of the logits (no gradient flows through it).
        const below = 'margin' in attrs ? tf.cast(tf.less(entropies, attrs.margin), 'float32') : tf.onesLike(entropies);
        const lossOf = (z: tf.Tensor) =>
          tf.div(tf.sum(tf.mul(softmaxEntropy(z as tf.Tensor2D), tf.mul(below, w ?? 1))), attrs.mean ? tf.maximum(tf.sum(below), 1) : 1) as tf.Scalar;
        const [e, loss, count, dLogits] = runKernel('WildttaEntropyLoss', w ? { logits, weights: w } : { logits }, attrs);
        close(e!, entropies, `${label}: entropies`);
        close(loss!, tf.reshape(lossOf(logits), [1]), `${label}: loss`);
        assert.equal(count!.dataSync()[0], 'margin' in attrs ? 3 : 6, `${label}: count`);
        close(dLogits!, tf.grad(lossOf)(logits), `${label}: gradient`);
      }
      const withNaN = tf.concat([logits, tf.fill([1, 5], NaN)]) as tf.Tensor2D;
      const [, nanLoss, , nanGrad] = runKernel('WildttaEntropyLoss', { logits: withNaN }, { margin, mean: true });
      assert.ok(Number.isNaN(nanLoss!.dataSync()[0]), 'a NaN row shows in the loss, as with tfjs ops');
      assert.ok(Number.isNaN(nanGrad!.dataSync()[6 * 5]), 'and in its gradient');

      // The gated moving average: unchanged behind a closed gate, x the first time, then the blend.
      const avg = (hasValue: number, open: boolean) =>
        runKernel('WildttaMovingAverage', { value: theta, has: tf.scalar(hasValue), x: g, gate: tf.scalar(open, 'bool') }, { decay: 0.9 });
      for (const hasValue of [0, 1]) {
        const [m, h] = avg(hasValue, false);
        assert.deepEqual(m!.dataSync(), theta.dataSync(), `closed gate (has ${hasValue}): the average stays`);
        assert.equal(h!.dataSync()[0], hasValue, `closed gate (has ${hasValue}): has stays`);
      }
      const [first, firstHas] = avg(0, true);
      assert.deepEqual(first!.dataSync(), g.dataSync(), 'the first value is x');
      assert.equal(firstHas!.dataSync()[0], 1);
      close(avg(1, true)[0]!, tf.add(tf.mul(theta, 0.9), tf.mul(g, 0.1)), 'then 0.9·m + 0.1·x');

      for (const when of [true, false]) {
        const picked = runKernel('WildttaPick', { when: tf.scalar(when, 'bool'), a: theta, b: g })[0]!;
        assert.deepEqual(picked.dataSync(), (when ? theta : g).dataSync(), `pick ${when}`);
      }
      const packed = runKernel(
        'WildttaScalars',
        { s0: tf.scalar(true, 'bool'), s1: tf.scalar(2.5), s3: tf.scalar(-1, 'int32') },
        { fallback: [9, 9, NaN, 9, 7] },
      )[0]!;
      assert.deepEqual([...packed.dataSync()], [1, 2.5, NaN, -1, 7]);
    });
  });
}
