// The adapters in the page: SAR on WebGPU follows the CPU backend step for
// step, long runs keep tensor count and GPU memory flat, and every method runs
// on WebGPU without error. A small random ViT keeps SwiftShader's software
// WebGPU fast enough for a test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoPageErrors, withPage } from './support/browser';

test('50 SAR steps on webgpu match the cpu backend to 1e-3', () =>
  withPage(async (h) => {
    const run = { method: 'sar' as const, steps: 50, lr: 0.01 };
    const cpu = await h.call('adaptRun', 'cpu', run);
    const gpu = await h.call('adaptRun', 'webgpu', run);
    assert.equal(gpu.backend, 'webgpu');
    const updates = cpu.steps.filter((s) => s.updated).length;
    assert.ok(updates >= 10 && updates < 50, `the run should mix reliable and unreliable samples (${updates} updates)`);
    cpu.steps.forEach((c, i) => {
      const g = gpu.steps[i]!;
      assert.equal(g.reliable, c.reliable, `step ${i}: reliable`);
      assert.equal(g.updated, c.updated, `step ${i}: updated`);
      assert.equal(g.reset, c.reset, `step ${i}: reset`);
      assert.equal(g.cls, c.cls, `step ${i}: class`);
      assert.ok(Math.abs(g.entropy - c.entropy) <= 1e-3, `step ${i}: entropy ${g.entropy} vs ${c.entropy}`);
    });
    let worst = 0;
    for (const [name, want] of Object.entries(cpu.params)) {
      const got = gpu.params[name]!;
      want.forEach((w, k) => (worst = Math.max(worst, Math.abs(w - got[k]!))));
    }
    assert.ok(worst <= 1e-3, `adapted tensors differ by ${worst}`);
  }));

test('300 SAR steps on webgpu: tensor count and GPU bytes identical after warm-up', () =>
  withPage(async (h) => {
    const r = await h.call('adaptRun', 'webgpu', { method: 'sar', steps: 300, lr: 0.001, warmup: 10 });
    assert.ok(r.steps.some((s) => s.updated), 'no update happened');
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
