// The adapters in the page: SAR and sar-msam on WebGPU and WebGL, and Tent,
// EATA and DeYO on WebGL, follow the CPU backend step for step; long runs keep tensor count
// and GPU memory flat, and every method runs on WebGPU without error. A small
// random ViT keeps SwiftShader's software WebGPU fast enough for a test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoPageErrors, withPage } from './support/browser';
import type { AdaptRunResult } from './harness';

/** The same run on another backend: the same decisions step by step, entropies and adapted tensors within 1e-3. */
function assertSameRun(cpu: AdaptRunResult, other: AdaptRunResult, label: string): void {
  cpu.steps.forEach((c, i) => {
    const g = other.steps[i]!;
    assert.equal(g.reliable, c.reliable, `${label}, step ${i}: reliable`);
    assert.equal(g.updated, c.updated, `${label}, step ${i}: updated`);
    assert.equal(g.reset, c.reset, `${label}, step ${i}: reset`);
    assert.equal(g.cls, c.cls, `${label}, step ${i}: class`);
    assert.ok(Math.abs(g.entropy - c.entropy) <= 1e-3, `${label}, step ${i}: entropy ${g.entropy} vs ${c.entropy}`);
  });
  let worst = 0;
  for (const [name, want] of Object.entries(cpu.params)) {
    const got = other.params[name]!;
    want.forEach((w, k) => (worst = Math.max(worst, Math.abs(w - got[k]!))));
  }
  assert.ok(worst <= 1e-3, `${label}: adapted tensors differ by ${worst}`);
}

// WebGPU runs the update's WGSL kernels (src/kernels/webgpu), WebGL the tfjs ops they replace; cpu the JavaScript ones.
for (const backend of ['webgpu', 'webgl'] as const) {
  test(`50 SAR steps on ${backend} match the cpu backend to 1e-3`, () =>
    withPage(async (h) => {
      const run = { method: 'sar' as const, steps: 50, lr: 0.01 };
      const cpu = await h.call('adaptRun', 'cpu', run);
      const other = await h.call('adaptRun', backend, run);
      assert.equal(other.backend, backend);
      const updates = cpu.steps.filter((s) => s.updated).length;
      assert.ok(updates >= 10 && updates < 50, `the run should mix reliable and unreliable samples (${updates} updates)`);
      assertSameRun(cpu, other, `SAR on ${backend}`);
    }));
}

// sar-msam's perturbation runs SAM's ascent kernel with −ρ on the momentum buffer: its WGSL and the tfjs ops must agree with the cpu.
test('30 sar-msam steps on webgpu and on webgl match the cpu backend to 1e-3', () =>
  withPage(async (h) => {
    const run = { method: 'sar-msam' as const, steps: 30, lr: 0.01 };
    const cpu = await h.call('adaptRun', 'cpu', run);
    const updates = cpu.steps.filter((s) => s.updated).length;
    assert.ok(updates >= 3, `too few updates to move the momentum (${updates})`);
    for (const backend of ['webgpu', 'webgl'] as const) {
      const other = await h.call('adaptRun', backend, run);
      assert.equal(other.backend, backend);
      assertSameRun(cpu, other, `sar-msam on ${backend}`);
    }
  }));

test('Tent, EATA and DeYO on webgl match the cpu backend to 1e-3', () =>
  withPage(async (h) => {
    for (const method of ['tent', 'eata', 'deyo'] as const) {
      // A random model on noise rarely changes its prediction under a patch shuffle: DeYO's PLPD filter is lowered to let samples through.
      const run = { method, steps: 20, lr: 0.01, plpdThreshold: method === 'deyo' ? -1 : undefined };
      const cpu = await h.call('adaptRun', 'cpu', run);
      assert.ok(
        cpu.steps.some((s) => s.updated),
        `${method}: no update happened`,
      );
      assertSameRun(cpu, await h.call('adaptRun', 'webgl', run), `${method} on webgl`);
    }
  }));

test('300 SAR steps on webgpu: tensor count and GPU bytes identical after warm-up', () =>
  withPage(async (h) => {
    const r = await h.call('adaptRun', 'webgpu', { method: 'sar', steps: 300, lr: 0.001, warmup: 10 });
    assert.ok(
      r.steps.some((s) => s.updated),
      'no update happened',
    );
    assert.equal(r.atEnd.numTensors, r.afterWarmup.numTensors, 'tensor count drifted');
    assert.ok(r.afterWarmup.gpuBytes !== null, 'webgpu reports GPU bytes');
    assert.equal(r.atEnd.gpuBytes, r.afterWarmup.gpuBytes, 'GPU bytes drifted');
  }));

test('Tent, EATA and DeYO run on webgpu without error', () =>
  withPage(async (h) => {
    for (const method of ['tent', 'eata', 'deyo'] as const) {
      const r = await h.call('adaptRun', 'webgpu', { method, steps: 6, lr: 0.001, warmup: 3 });
      assert.equal(r.steps.length, 6, method);
      assert.equal(r.atEnd.numTensors, r.afterWarmup.numTensors, `${method}: tensor count drifted`);
    }
  }));

test('no console errors or uncaught exceptions in the page', () => assertNoPageErrors());
