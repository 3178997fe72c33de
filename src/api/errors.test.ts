// Issue 25, items 2 and 6: an engine error reaches the page as its own class
// with its fields (BackendError's attempts, NonFiniteOutputError's step and
// cause), with or without a worker: both go through serveEngine's replies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import '@tensorflow/tfjs';
import { serveEngine } from '../runtime/engine-serve';
import { EngineError } from '../runtime/engine-port';
import type { EngineResponse } from '../runtime/engine-types';
import { BackendError, NonFiniteOutputError, ModelFormatError, revive } from './errors';

function reply(req: { op: string; args: unknown }): Promise<EngineResponse> {
  return new Promise((resolve) => {
    const server = serveEngine((msg) => {
      if ('id' in msg) resolve(msg);
    });
    server.handle({ id: 1, ...req } as Parameters<typeof server.handle>[0]);
  });
}

test('a backend that cannot start: BackendError with every backend tried and why, after the trip to the page', async () => {
  const msg = await reply({ op: 'init', args: { backend: 'webgl' } });
  assert.ok('ok' in msg && !msg.ok);
  const e = revive(new EngineError(msg.error));
  assert.ok(e instanceof BackendError, String(e));
  assert.equal(e.attempts.length, 1);
  assert.equal(e.attempts[0]!.backend, 'webgl');
  assert.equal(e.attempts[0]!.ok, false);
  assert.ok(e.attempts[0]!.reason.length > 0);
});

test('NonFiniteOutputError keeps its step and cause; ModelFormatError its tensor, without naming it twice', async () => {
  const cases = [new NonFiniteOutputError('outputs not finite', 7, 'entropy of sample 0 is NaN'), new ModelFormatError('bad shape', 'head.weight')];
  await Promise.all(
    cases.map(async (err) => {
      const msg = await new Promise<EngineResponse>((resolve) => {
        const server = serveEngine((m) => resolve(m));
        // An operation that throws the error under test.
        (server.engine as unknown as { memory(): never }).memory = () => {
          throw err;
        };
        server.handle({ id: 1, op: 'memory', args: undefined });
      });
      assert.ok('ok' in msg && !msg.ok);
      const back = revive(new EngineError(msg.error)) as Error;
      assert.equal(back.constructor, err.constructor);
      assert.equal(back.message, err.message);
      if (back instanceof NonFiniteOutputError) assert.deepEqual([back.step, back.cause], [7, 'entropy of sample 0 is NaN']);
      if (back instanceof ModelFormatError) assert.equal(back.tensor, 'head.weight');
    }),
  );
});
