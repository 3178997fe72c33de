// 'auto' in headless Chromium, whose WebGPU and WebGL are SwiftShader (a
// software renderer, as on many VMs and GPU-less laptops): the engine names
// them as software and runs on wasm, saying why. The measurement that decides
// among several fast backends runs here on candidates the test names: it
// times each, keeps the fastest, remembers it per origin, and measures again
// once forgotten.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { assertNoPageErrors, withPage } from './support/browser';
import type { AutoStart, MeasureRun } from './auto-backend-page';

const MODEL = '/models/fmnist-vit/';

async function onHarness<T>(fn: (page: Page) => Promise<T>): Promise<T> {
  return withPage(
    async (h) => {
      await h.page.waitForFunction('window.wildttaHarness !== undefined', undefined, { timeout: 60_000 });
      return fn(h.page);
    },
    { path: 'e2e/harness.html' },
  );
}

test('auto on a machine whose GPUs are software renderers runs wasm and says why', () =>
  onHarness(async (page) => {
    const r = (await page.evaluate(`import('/e2e/auto-backend-page.ts').then((m) => m.autoStart('${MODEL}'))`)) as AutoStart;
    for (const gpu of ['webgpu', 'webgl'] as const) {
      const a = r.atInit.attempts.find((x) => x.backend === gpu);
      assert.ok(a, `${gpu} was not tried: ${JSON.stringify(r.atInit.attempts)}`);
      assert.equal(a.ok, true, `${gpu} does not start here: ${a.reason}`);
      assert.equal(a.software, true, `${gpu}'s adapter "${a.adapter}" was not recognised as software`);
      assert.match(a.adapter ?? '', /swiftshader/i);
      assert.match(a.reason, /software renderer/);
    }
    assert.equal(r.atInit.backend, 'wasm');
    assert.match(r.atInit.why, /only fast backend/);
    assert.equal(r.afterLoad.backend, 'wasm');
    assert.equal(r.afterLoad.probes, undefined, 'nothing to measure, yet it measured');
    assert.equal(r.active, 'wasm');
    assert.ok(r.confidence > 0 && r.confidence <= 1, `step confidence ${r.confidence}`);
  }));

test('auto with two fast candidates times both, keeps the faster, remembers it, and measures again once forgotten', () =>
  onHarness(async (page) => {
    const r = (await page.evaluate(`import('/e2e/auto-backend-page.ts').then((m) => m.measureRun('${MODEL}', ['cpu', 'wasm']))`)) as MeasureRun;
    const { first, second, third } = r;
    assert.deepEqual(
      first.report.probes?.map((p) => p.backend),
      ['cpu', 'wasm'],
    );
    for (const p of first.report.probes!) assert.ok(p.ms > 0 && p.firstMs > 0, JSON.stringify(p));
    const fastest = [...first.report.probes!].sort((a, b) => a.ms - b.ms)[0]!.backend;
    assert.equal(first.report.backend, fastest);
    assert.equal(first.active, fastest);
    assert.match(first.report.why, /measured now \(cpu [\d.]+ ms, wasm [\d.]+ ms\)/);
    // Remembered: the same backend and the same figures, not new ones.
    assert.equal(second.report.backend, first.report.backend);
    assert.match(second.report.why, /remembered on this origin/);
    assert.deepEqual(second.report.probes, first.report.probes);
    assert.match(third.report.why, /measured now/);
    assert.notDeepEqual(third.report.probes, first.report.probes, 'forgotten, yet the old figures came back');
    // Where it was measured changes nothing in what it computes; the losers' copies are gone.
    for (const m of [second, third]) for (let i = 0; i < first.logits.length; i++) assert.ok(Math.abs(m.logits[i]! - first.logits[i]!) < 1e-3, `logit ${i}`);
    assert.equal(r.numTensorsAfter, r.numTensorsBefore, 'the measured models left tensors behind');
  }));

test('no console errors or uncaught exceptions in any page', () => assertNoPageErrors());
