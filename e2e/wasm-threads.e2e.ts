// tfjs-wasm threads in headless Chromium:
//  - in a cross-origin isolated page (the harness page asked for with
//    `?isolate`, which the dev server answers with COOP/COEP),
//    initBackend('wasm', { wasmThreads: 2 }) runs the threaded binary with 2
//    threads even where navigator.hardwareConcurrency is 2 (tfjs alone caps
//    its pool at hardwareConcurrency / 2), computes a matMul correctly, loads
//    the SIMD host kernels on its shared memory (agreeing with their
//    JavaScript loops), and leaves navigator.hardwareConcurrency as it found it;
//  - in a page that is not isolated, the same call runs the SIMD binary on one
//    thread, without an error;
//  - the dev server isolates the demo page and its engine worker, and not
//    the harness page asked for without `?isolate`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { assertNoPageErrors, withPage } from './support/browser';
import type { ThreadedGemmProbe, ThreadsProbe } from './wasm-threads-page';

/** The harness page, cross-origin isolated (`?isolate`: the dev server adds COOP/COEP) or not. */
async function harness<T>(isolated: boolean, fn: (page: Page) => Promise<T>): Promise<T> {
  return withPage(
    async (h) => {
      await h.page.waitForFunction('window.wildttaHarness !== undefined', undefined, { timeout: 60_000 });
      return fn(h.page);
    },
    { path: `e2e/harness.html${isolated ? '?isolate' : ''}` },
  );
}

/** Runs e2e/wasm-threads-page.ts's probe in the page (a string, not a function: tsx's helpers do not exist there). */
const probe = (page: Page, threads = 2) =>
  page.evaluate(`import('/e2e/wasm-threads-page.ts').then((m) => m.probeWasmThreads(${threads}))`) as Promise<ThreadsProbe>;

test('isolated page: wasmThreads 2 runs the threaded binary on 2 threads and computes', () =>
  harness(true, async (page) => {
    const r = await probe(page);
    assert.equal(r.isolated, true, 'the page is not cross-origin isolated');
    assert.deepEqual(r.report.attempts, [{ backend: 'wasm', ok: true, reason: 'ok' }]);
    assert.deepEqual(r.binaries, ['tfjs-backend-wasm-threaded-simd.wasm']);
    assert.equal(r.report.wasmThreads, 2, `tfjs-wasm runs ${r.report.wasmThreads} thread(s) (navigator.hardwareConcurrency ${r.hardwareConcurrencyBefore})`);
    assert.ok(r.matMulError < 1e-3, `matMul off by ${r.matMulError}`);
    assert.equal(r.simdKernels, true, 'the SIMD host kernels did not load on the shared memory');
    assert.ok(r.simdError < 1e-5, `SIMD kernels off their JavaScript loops by ${r.simdError}`);
    assert.equal(r.hardwareConcurrencyAfter, r.hardwareConcurrencyBefore, 'navigator.hardwareConcurrency was not restored');
    assert.equal(r.ownHardwareConcurrency, false, 'navigator keeps an own hardwareConcurrency property');
  }));

test("isolated page, 2 threads: gemm.wat's products and GroupNorm's loops run on the caller's thread and one worker of ours, each on its own columns or channels, equal to XNNPACK's and to the JavaScript loops", () =>
  harness(true, async (page) => {
    await probe(page);
    const r = (await page.evaluate(`import('/e2e/wasm-threads-page.ts').then((m) => m.probeThreadedGemm())`)) as ThreadedGemmProbe;
    assert.equal(r.threadsLater, 2, `gemm.wat runs on ${r.threadsLater} thread(s) ${Math.round(r.msToStart)} ms after the backend started`);
    const [even, odd, small] = r.cases;
    // The threads claim chunks of columns as they come: the worker computed some of them, not all (in one of up to 5 tries).
    for (const [c, N] of [
      [even!, 1152],
      [odd!, 1160],
    ] as const)
      assert.ok(c.workerColumns > 0 && c.workerColumns < N && c.workerColumns % 8 === 0, `${c.name}: the worker computed ${c.workerColumns} columns`);
    assert.equal(small!.workerColumns, 0, small!.name);
    for (const c of r.cases) assert.ok(c.error < 1e-3, `${c.name}: off XNNPACK's product by ${c.error}`);
    assert.equal(r.trapped.length, 2, `products with pointers outside the memory threw ${r.trapped.length} time(s) of 2`);
    assert.match(r.trapped[0]!, /out of bounds/i, "the caller's own trap");
    // Which thread meets the chunks past the memory's end depends on who claims them; either error names it.
    assert.match(r.trapped[1]!, /out of bounds|gemm worker trapped on a \[1, 1024\]·\[1024, 1152\] product/, 'the second trap');
    assert.ok(r.errorAfterTraps < 1e-3, `the product after the traps off XNNPACK's by ${r.errorAfterTraps}`);
    assert.ok(r.mlpError < 1e-5, `MLP block through the threaded gemm.wat off the unpacked path by ${r.mlpError} (relative)`);
    // GroupNorm's loops (norm.wat) share the same workers, each thread on its own channels (64 in chunks of 16).
    assert.ok(r.groupNormWorkerChannels > 0 && r.groupNormWorkerChannels % 16 === 0, `the worker did ${r.groupNormWorkerChannels} of GroupNorm's channels`);
    assert.ok(r.groupNormError < 1e-5, `GroupNorm on two threads off its JavaScript loops by ${r.groupNormError} (relative)`);
    assert.equal(r.tensorsAfter, r.tensorsBefore, 'tensors left behind');
  }));

test('page not isolated: wasmThreads 2 runs the SIMD binary on 1 thread', () =>
  harness(false, async (page) => {
    const r = await probe(page);
    assert.equal(r.isolated, false);
    assert.deepEqual(r.report.attempts, [{ backend: 'wasm', ok: true, reason: 'ok' }]);
    assert.deepEqual(r.binaries, ['tfjs-backend-wasm-simd.wasm']);
    assert.equal(r.report.wasmThreads, 1);
    assert.equal(r.gemmThreads, 1, "gemm.wat does not take the frozen weights' products on the single-threaded build");
    assert.ok(r.matMulError < 1e-3, `matMul off by ${r.matMulError}`);
    assert.equal(r.simdKernels, true, 'the SIMD host kernels did not load');
    assert.ok(r.simdError < 1e-5, `SIMD kernels off their JavaScript loops by ${r.simdError}`);
    assert.equal(r.hardwareConcurrencyAfter, r.hardwareConcurrencyBefore);
  }));

test('dev server: the demo page and its engine worker are cross-origin isolated, the harness page is not', async () => {
  await withPage(async (h) => {
    assert.equal(await h.page.evaluate('crossOriginIsolated'), false, 'the harness page is isolated: the bench/e2e pages would change binary');
  });
  await withPage(
    async (h) => {
      const page = h.page;
      assert.equal(await page.evaluate('crossOriginIsolated'), true, 'the demo page is not cross-origin isolated');
      const deadline = Date.now() + 60_000;
      let engine = page.workers().find((w) => w.url().includes('engine-worker'));
      while (engine === undefined && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        engine = page.workers().find((w) => w.url().includes('engine-worker'));
      }
      assert.ok(
        engine !== undefined,
        `no engine worker started (workers: ${page
          .workers()
          .map((w) => w.url())
          .join(', ')})`,
      );
      assert.equal(await engine.evaluate('self.crossOriginIsolated'), true, 'the engine worker is not cross-origin isolated');
    },
    { path: 'demo/?input=stream&backend=wasm' },
  );
});

test('no console errors or uncaught exceptions in any page', () => assertNoPageErrors());
