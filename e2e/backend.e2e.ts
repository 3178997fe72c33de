// Backends in headless Chromium (WebGPU and WebGL on SwiftShader here):
// 'auto' selection, explicit choice of each backend, and forward/backward
// parity of the ViT on every PyTorch fixture in e2e/fixtures/ against the CPU
// backend of the same page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensorsHeader, readSafetensors } from '../src/model/safetensors';
import type { BackendName } from '../src/runtime/backend';
import type { PlainTensor } from './harness';
import { REPO_ROOT, assertNoPageErrors, withPage } from './support/browser';

const FIXTURES_DIR = join(REPO_ROOT, 'e2e', 'fixtures');
/** Backend results must match the CPU backend to this (logits absolute, gradients relative to the largest). */
const TOL = 1e-3;
/** The page's CPU backend against PyTorch (float64): same arithmetic as the Node parity test. */
const TORCH_TOL = 1e-4;
const COMPARED: BackendName[] = ['webgpu', 'webgl', 'wasm'];

/**
 * Forward-parity fixtures (tools/make_fixtures.py): folders with model.safetensors,
 * config.json and an expected.safetensors holding `inputs` [B, H, W, C] and
 * `logits`. Other folders (e.g. the method-run fixtures) are not of this kind.
 */
function isForwardFixture(dir: string): boolean {
  const expected = join(dir, 'expected.safetensors');
  if (!['model.safetensors', 'config.json'].every((f) => existsSync(join(dir, f))) || !existsSync(expected)) return false;
  const bytes = new Uint8Array(readFileSync(expected));
  const { tensors } = parseSafetensorsHeader(bytes, bytes.byteLength);
  return tensors.get('inputs')?.shape.length === 4 && tensors.has('logits');
}

const fixtures = existsSync(FIXTURES_DIR)
  ? readdirSync(FIXTURES_DIR, { withFileTypes: true })
      .filter((d) => d.isDirectory() && isForwardFixture(join(FIXTURES_DIR, d.name)))
      .map((d) => d.name)
      .sort()
  : [];

function maxAbsDiff(a: PlainTensor, b: { shape: number[]; values: ArrayLike<number> }): number {
  assert.deepEqual(a.shape, b.shape, 'shapes differ');
  let worst = 0;
  for (let i = 0; i < a.values.length; i++) {
    const d = Math.abs(a.values[i]! - b.values[i]!);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d; // NaN fails
  }
  return worst;
}

const maxAbs = (v: ArrayLike<number>) => Array.from(v).reduce((m, x) => Math.max(m, Math.abs(x)), 0);

test('auto picks webgpu in headless Chromium and reports its attempts', () =>
  withPage(async (h) => {
    const r = await h.call('initBackend', 'auto');
    assert.equal(r.backend, 'webgpu', `auto chose ${r.backend}: ${JSON.stringify(r.attempts)}`);
    assert.equal(r.active, 'webgpu');
    assert.ok(r.attempts.length >= 1, 'the report lists no attempts');
    const { adapter, software, ...rest } = r.attempts[0]!;
    assert.deepEqual(rest, { backend: 'webgpu', ok: true, reason: 'ok' });
    assert.match(adapter ?? '', /swiftshader/i, 'the adapter is not named');
    assert.equal(software, true, 'SwiftShader not recognised as a software renderer');
    assert.ok(r.adapter !== null, 'navigator.gpu gave no adapter');
  }));

for (const backend of ['webgpu', 'webgl', 'wasm', 'cpu'] as const) {
  test(`${backend} can be chosen explicitly and computes`, () =>
    withPage(async (h) => {
      const r = await h.call('initBackend', backend);
      assert.equal(r.backend, backend);
      assert.equal(r.active, backend);
      assert.deepEqual(
        r.attempts.map(({ adapter: _, software: __, ...a }) => a),
        [{ backend, ok: true, reason: 'ok' }],
      );
      assert.equal(r.attempts[0]!.software, backend === 'webgpu' || backend === 'webgl' ? true : undefined);
      const s = await h.call('smoke', backend);
      assert.equal(s.backend, backend);
      assert.deepEqual(s.matMul, [19, 22, 43, 50]);
      assert.deepEqual(s.grad, [2, -4, 6]);
      assert.equal(s.numTensorsAfter, s.numTensorsBefore, 'smoke test leaked tensors');
    }));
}

for (const backend of ['webgpu', 'wasm', 'cpu'] as const) {
  test(`${backend}: the fused kernels (LayerNorm, its backward, GELU and softmax backward, heads merge, the update arithmetic, GroupNorm both ways, the phases' weaving; on webgpu attention from qkv and the read's softmax and entropy) match tfjs ops`, () =>
    withPage(async (h) => {
      // Odd sizes, then the shipped model's (50 tokens × 64) and more rows than one workgroup.
      for (const [rows, width] of [
        [7, 12],
        [50, 64],
        [197, 96],
        [1, 64],
      ] as const) {
        const r = await h.call('fusedKernelCheck', backend, rows, width);
        assert.equal(r.backend, backend);
        assert.equal(r.numTensorsAfter, r.numTensorsBefore, 'the check leaked tensors');
        for (const [name, err] of Object.entries(r.errors)) assert.ok(err <= 1e-4, `${rows}×${width}: ${name} off by ${err}`);
      }
    }));
}

test('webgpu: 100 learning rates (and two momenta) reuse one SGD pipeline, and each step is right', () =>
  withPage(async (h) => {
    const r = await h.call('sgdAcrossLearningRates', 100);
    assert.equal(r.backend, 'webgpu');
    assert.equal(r.pipelinesAfter, r.pipelinesBefore, `pipelines compiled for new learning rates: ${r.pipelinesBefore} → ${r.pipelinesAfter}`);
    assert.ok(r.maxError <= 1e-5, `SGD step off by ${r.maxError}`);
  }));

// The convolutional families (tools/make_resnet_fixtures.py, tools/make_convnext_fixtures.py).
const FAMILY_FIXTURES = [
  { folder: 'resnet-gn', family: 'resnet-gn', label: 'GroupNorm ResNet', norm: 'GroupNorm', names: ['basic-gray28', 'bottleneck-rgb32'] },
  { folder: 'convnext', family: 'convnext', label: 'ConvNeXt', norm: 'LayerNorm', names: ['gray28-patch2', 'rgb32-patch4'] },
] as const;

for (const f of FAMILY_FIXTURES) {
  for (const name of f.names) {
    test(`${f.label} ${name}: logits and ${f.norm}-affine gradients (written out, and by autodiff) match PyTorch on webgpu, webgl, wasm and cpu`, (t) =>
      withPage(async (h) => {
        for (const backend of ['webgpu', 'webgl', 'wasm', 'cpu'] as const) {
          const r = await h.call('familyFixture', f.folder, name, backend);
          assert.equal(r.backend, backend);
          assert.equal(r.family, f.family);
          t.diagnostic(
            `${backend}: max |Δ| logits ${r.logitError.toExponential(2)}, gradients ${r.gradError.toExponential(2)}; autodiff ${r.autodiffGradError.toExponential(2)}`,
          );
          assert.ok(r.norms > 0);
          assert.equal(r.numTensorsAfter, r.numTensorsBefore, `${backend}: tensors leaked`);
          assert.ok(r.logitError <= 1e-3 * Math.max(1, r.logitScale), `${backend}: logits off by ${r.logitError}`);
          assert.ok(r.gradError <= 1e-3 * r.gradScale + 1e-6, `${backend}: ${f.norm} gradients off by ${r.gradError} (largest ${r.gradScale})`);
          assert.ok(r.autodiffGradError <= 1e-3 * r.gradScale + 1e-6, `${backend}: autodiff's gradients off by ${r.autodiffGradError}`);
        }
      }));
  }
}

test('e2e/fixtures holds PyTorch forward fixtures to compare against', (t) => {
  assert.ok(
    fixtures.length > 0,
    `no forward fixtures (model.safetensors, config.json, expected.safetensors with inputs and logits) in ${FIXTURES_DIR}; run npm run fixtures`,
  );
  t.diagnostic(fixtures.join(', '));
});

for (const name of fixtures) {
  test(`${name}: logits and LayerNorm gradients agree across backends`, (t) =>
    withPage(async (h) => {
      const expected = readSafetensors(new Uint8Array(readFileSync(join(FIXTURES_DIR, name, 'expected.safetensors')))).tensors;
      const t0 = Date.now();
      const cpu = await h.call('fixtureLogits', name, 'cpu');
      t.diagnostic(`cpu: batch ${cpu.batch}, ${Date.now() - t0} ms`);
      assert.equal(cpu.backend, 'cpu');
      assert.equal(cpu.numTensorsAfter, cpu.numTensorsBefore, 'cpu run leaked tensors');
      const gradNames = Object.keys(cpu.grads).sort();
      assert.ok(gradNames.length > 0, 'the model has no LayerNorm variables');
      const gradScale = Math.max(...gradNames.map((n) => maxAbs(cpu.grads[n]!.values)));
      assert.ok(gradScale > 0, 'cpu gradients are all zero');

      // The page computed what PyTorch computed: the fixture was loaded and run as intended.
      const torchLogits = expected.get('logits');
      if (torchLogits !== undefined) {
        const rows = cpu.batch * torchLogits.shape[1]!;
        const err = maxAbsDiff(cpu.logits, { shape: [cpu.batch, torchLogits.shape[1]!], values: torchLogits.values.subarray(0, rows) });
        assert.ok(err <= TORCH_TOL, `cpu logits differ from PyTorch by ${err.toExponential(2)}`);
      }

      // The adaptation path (the ViT's forward and backward on the kernels: host, WGSL, tfjs ops) at batch 1 and at the fixture's batch.
      for (const batch of [1, cpu.batch]) {
        const ref = batch === cpu.batch ? cpu : await h.call('fixtureLogits', name, 'cpu', batch);
        const refScale = Math.max(...gradNames.map((n) => maxAbs(ref.grads[n]!.values)));
        for (const backend of COMPARED) {
          await t.test(`${backend}: the adaptation forward and backward at batch ${batch} match cpu autodiff`, async () => {
            const r = await h.call('fastFixture', name, backend, batch);
            assert.equal(r.backend, backend);
            assert.equal(r.numTensorsAfter, r.numTensorsBefore, `${backend} fast path leaked tensors`);
            const logitErr = maxAbsDiff(r.logits, ref.logits);
            assert.ok(logitErr <= TOL, `${backend} fast-path logits differ from cpu by ${logitErr.toExponential(2)}`);
            for (const n of gradNames) {
              const e = maxAbsDiff(r.grads[n]!, ref.grads[n]!);
              assert.ok(e <= TOL * refScale, `${backend} fast-path gradient of ${n} differs from cpu by ${e.toExponential(2)}`);
            }
          });
        }
      }

      for (const backend of COMPARED) {
        await t.test(`${backend} matches cpu`, async (st) => {
          const t1 = Date.now();
          const r = await h.call('fixtureLogits', name, backend);
          st.diagnostic(`${backend}: ${Date.now() - t1} ms`);
          assert.equal(r.backend, backend);
          assert.equal(r.numTensorsAfter, r.numTensorsBefore, `${backend} run leaked tensors`);
          const logitErr = maxAbsDiff(r.logits, cpu.logits);
          assert.ok(logitErr <= TOL, `${backend} logits differ from cpu by ${logitErr.toExponential(2)} > ${TOL}`);
          assert.deepEqual(Object.keys(r.grads).sort(), gradNames);
          let worst = 0;
          let worstName = '';
          for (const n of gradNames) {
            const e = maxAbsDiff(r.grads[n]!, cpu.grads[n]!);
            if (!(e <= worst)) [worst, worstName] = [Number.isNaN(e) ? Infinity : e, n];
          }
          assert.ok(
            worst <= TOL * gradScale,
            `${backend} gradient of ${worstName} differs from cpu by ${worst.toExponential(2)} > ${TOL} × ${gradScale.toExponential(2)}`,
          );
        });
      }
    }));
}

test('no console errors or uncaught exceptions in any page', () => assertNoPageErrors());
