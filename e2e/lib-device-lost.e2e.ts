// A WebGPU device destroyed under a running engine (the test hook calls
// device.destroy(), as a driver reset or an unplugged GPU would): the engine
// notices, rebuilds the backend, reloads the model, imports the adapted state
// it had, says so through the 'deviceLost' and 'recovered' events, and results
// keep coming. WebGPU on SwiftShader takes ~0.3 s a step, so the streams are short.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensors } from '../src/model/safetensors';
import { configureLibSession, LOAD_WILDTTA, withLibPage } from './support/lib';

configureLibSession({ args: [] });

const params = (b: number[]) => {
  const t = readSafetensors(new Uint8Array(b)).tensors;
  return new Map(
    [...t].filter(([k]) => k.startsWith('param.')).map(([k, v]) => [k, Buffer.from(v.values.buffer, v.values.byteOffset, v.values.byteLength).toString('hex')]),
  );
};

// The page: the script-tag build loaded into a bare page (examples/index.html has no script of its own), under the strict CSP.
const setup = `(async () => {
  const WildTTA = await ${LOAD_WILDTTA};
  window.events = [];
  window.results = [];
  const tta = await WildTTA.create({ model: '/public/models/fmnist-vit/', backend: 'webgpu', snapshotEvery: 5 });
  for (const type of ['deviceLost', 'recovered', 'error', 'reset']) tta.on(type, (e) => window.events.push({ type, ...e, error: e.error ? String(e.error) : undefined }));
  const c = document.createElement('canvas'); c.width = c.height = 56;
  const g = c.getContext('2d');
  window.frame = (i) => { g.fillStyle = '#000'; g.fillRect(0, 0, 56, 56); g.fillStyle = '#ddd'; g.fillRect(12 + (i % 7), 6, 28, 44); return c; };
  window.tta = tta;
  window.canvas = c;
  return tta.backend; })()`;

test('WebGPU device destroyed: the engine recovers on webgpu with its adapted state, bit for bit, and a running stream goes on', () =>
  withLibPage('examples/index.html', async (p) => {
    const backend = await p.page.evaluate(setup);
    assert.equal(backend, 'webgpu', 'this test needs WebGPU (SwiftShader flags in tools/lib/session.ts)');

    // 1. Between frames: lose the device, wait for the rebuild, compare the state.
    const one = (await p.page.evaluate(`(async () => {
      for (let i = 0; i < 8; i++) await window.tta.classify(window.frame(i));
      const before = Array.from(await window.tta.exportState());
      const tensors = (await window.tta.memory()).numTensors;
      await window.tta.simulateDeviceLoss();
      const r = await window.tta.classify(window.frame(8)); // waits for the rebuild, then runs
      return { before, tensors, first: { step: r.step, backend: r.backend } }; })()`)) as {
      before: number[];
      tensors: number;
      first: { step: number; backend: string };
    };
    const ev = (await p.page.evaluate('window.events')) as Array<Record<string, unknown>>;
    assert.deepEqual(
      ev.map((e) => e.type),
      ['deviceLost', 'recovered'],
      JSON.stringify(ev),
    );
    assert.equal(ev[0]!.reason, 'destroyed');
    assert.equal(ev[1]!.backend, 'webgpu', 'restarted on the same backend');
    assert.equal(ev[1]!.restoredStep, 7, 'the state exported at step 7 is the one restored');
    assert.equal(ev[1]!.lostSteps, 0);
    assert.equal(one.first.backend, 'webgpu');
    assert.equal(one.first.step, 8, 'the step counter goes on from the restored state');

    // The state right after the rebuild is the one before the loss: check it before any further step.
    const two = (await p.page.evaluate(`(async () => {
      window.events = [];
      const before = Array.from(await window.tta.exportState());
      await window.tta.simulateDeviceLoss();
      await new Promise((ok) => { const t = setInterval(() => { if (window.events.some((e) => e.type === 'recovered')) { clearInterval(t); ok(); } }, 50); });
      const after = Array.from(await window.tta.exportState());
      // Counted after a step, as the first count was: the model builds some tensors on its first forward.
      // (exportState also reads the update a step leaves queued, which holds a tensor of its own.)
      await window.tta.classify(window.frame(9));
      await window.tta.exportState();
      const tensors = (await window.tta.memory()).numTensors;
      return { before, after, tensors }; })()`)) as { before: number[]; after: number[]; tensors: number };
    const a = params(two.before);
    assert.ok(a.size >= 8);
    assert.deepEqual(params(two.after), a, 'adapted scale/shift after recovery differ from those before the loss');
    // The old model and adapter (~90 tensors here) must be gone. The rebuilt engine holds one tensor more than the
    // first did (128 against 129 here, with the code before the kernel rebuild too; its cause is not found yet), so
    // allow 1: far below what a leaked model or adapter would add.
    const TOLERANCE = 1;
    assert.ok(Math.abs(two.tensors - one.tensors) <= TOLERANCE, `tensors before the loss ${one.tensors}, after the rebuild ${two.tensors}`);

    // 2. During a stream: attach to the canvas, destroy the device mid-stream, results keep coming.
    const three = (await p.page.evaluate(`(async () => {
      window.events = [];
      let i = 0;
      const att = window.tta.attach(window.canvas, { onResult: (r) => { window.results.push({ step: r.step, backend: r.backend, t: performance.now() }); window.frame(++i); }, onError: (e) => window.events.push({ type: 'frameError', error: String(e) }) });
      const wait = (n) => new Promise((ok) => { const t = setInterval(() => { if (window.results.length >= n) { clearInterval(t); ok(); } }, 50); });
      await wait(6);
      const lostAt = window.results.length;
      await window.tta.simulateDeviceLoss();
      await wait(lostAt + 6);
      att.stop();
      await window.tta.exportState();
      return { lostAt, results: window.results, events: window.events, tensors: (await window.tta.memory()).numTensors }; })()`)) as {
      lostAt: number;
      results: Array<{ step: number; backend: string }>;
      events: Array<Record<string, unknown>>;
      tensors: number;
    };
    assert.deepEqual(
      three.events.map((e) => e.type),
      ['deviceLost', 'recovered'],
      `no frame errors, one recovery: ${JSON.stringify(three.events)}`,
    );
    const recovered = three.events[1]!;
    assert.notEqual(recovered.restoredStep, null, 'a snapshot was restored');
    const steps = three.results.map((r) => r.step);
    assert.ok(three.results.length >= three.lostAt + 6, 'results kept coming after the loss');
    assert.ok(three.results.every((r) => r.backend === 'webgpu'));
    // The step counter resumes from the snapshot: it may go back by at most snapshotEvery steps, never to 0.
    const afterLoss = steps.slice(three.lostAt);
    assert.ok(Math.min(...afterLoss) > 0 && Math.min(...afterLoss) >= (recovered.restoredStep as number), `steps after the loss: ${afterLoss.join(',')}`);
    assert.ok(Math.abs(three.tensors - two.tensors) <= TOLERANCE, `tensors after another recovery and a stream: ${three.tensors} (was ${two.tensors})`);

    await p.page.evaluate('window.tta.dispose()');
    assert.deepEqual(await p.cspViolations(), []);
    assert.deepEqual(p.errors, [], 'console errors');
  }));

test('simulateDeviceLoss on a backend without a device says so and changes nothing', () =>
  withLibPage('examples/index.html', async (p) => {
    const r = await p.page.evaluate(`(async () => {
      const WildTTA = await ${LOAD_WILDTTA};
      const tta = await WildTTA.create({ model: '/public/models/fmnist-vit/', backend: 'wasm' });
      let err = '';
      try { await tta.simulateDeviceLoss(); } catch (e) { err = e.name + ': ' + e.message; }
      const c = document.createElement('canvas'); c.width = c.height = 28;
      const ok = (await tta.classify(c)).backend;
      await tta.dispose();
      return { err, ok }; })()`);
    assert.deepEqual(r, { err: 'EngineStateError: simulateDeviceLoss needs the webgpu backend (running wasm)', ok: 'wasm' });
    assert.deepEqual(p.errors, []);
  }));
