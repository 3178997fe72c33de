// Which backends 'auto' measures, from what each one said when started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planAuto, shapeSignature, soleReason } from './auto-backend';
import type { BackendAttempt } from './backend';

const gpu = (backend: 'webgpu' | 'webgl', software: boolean): BackendAttempt => ({
  backend,
  ok: true,
  reason: 'ok',
  adapter: software ? 'SwiftShader Device' : 'NVIDIA H100',
  software,
});
const wasm: BackendAttempt = { backend: 'wasm', ok: true, reason: 'ok' };
const cpu: BackendAttempt = { backend: 'cpu', ok: true, reason: 'ok' };

test('software renderers are set aside while wasm works, with the reason on their attempt', () => {
  const plan = planAuto([gpu('webgpu', true), gpu('webgl', true), wasm]);
  assert.deepEqual(plan.candidates, ['wasm']);
  for (const a of plan.attempts.slice(0, 2)) assert.match(a.reason, /software renderer \(SwiftShader Device\)/);
  assert.match(soleReason(plan), /^the only fast backend here \(webgpu: works, but on a software renderer/);
});

test('hardware GPUs and wasm are all measured; a failed backend is not', () => {
  const failed: BackendAttempt = { backend: 'webgl', ok: false, reason: 'failed to initialize' };
  assert.deepEqual(planAuto([gpu('webgpu', false), failed, wasm]).candidates, ['webgpu', 'wasm']);
  assert.deepEqual(planAuto([gpu('webgpu', false), gpu('webgl', false), wasm]).candidates, ['webgpu', 'webgl', 'wasm']);
});

test('without wasm a software GPU is still better than nothing; cpu only when nothing else works', () => {
  assert.deepEqual(planAuto([gpu('webgpu', true), { backend: 'wasm', ok: false, reason: 'no binary' }, cpu]).candidates, ['webgpu']);
  assert.deepEqual(planAuto([{ backend: 'webgpu', ok: false, reason: 'x' }, cpu]).candidates, ['cpu']);
});

test('the shape signature changes with any name or shape, and only then', () => {
  const a = shapeSignature([
    ['x', { shape: [2, 3] }],
    ['y', { shape: [4] }],
  ]);
  assert.equal(
    a,
    shapeSignature([
      ['x', { shape: [2, 3] }],
      ['y', { shape: [4] }],
    ]),
  );
  assert.notEqual(
    a,
    shapeSignature([
      ['x', { shape: [3, 2] }],
      ['y', { shape: [4] }],
    ]),
  );
  assert.notEqual(
    a,
    shapeSignature([
      ['x', { shape: [2, 3] }],
      ['z', { shape: [4] }],
    ]),
  );
});
