// For tests that run every method on a model family (convnext.test.ts,
// resnet-gn.test.ts): options under which each method adapts on random
// frames, and six frames through an adapter with the checks every family
// shares. Here rather than beside the model tests' kit (src/model/testing.ts)
// because src/model may not import src/methods. Nothing in the library
// imports this file.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { SourceStats } from '../model/source-stats';
import { maxDiff } from '../model/testing';
import type { Adapter } from './adapter';
import { optionSchema } from './method';
import { methodSpec, type MethodName } from './registry';

/**
 * Options under which every sample counts as reliable (EATA's weights
 * exp(e_margin − E) need a margin near ln C, not far above it), each method
 * given only the options it takes.
 */
export function everySampleOptions(method: MethodName, sourceStats?: SourceStats): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries({ lr: 1e-2, marginFraction: method === 'eata' ? 1 : 100, resetThreshold: 0, plpdThreshold: -1, dMargin: 1, sourceStats }).filter(
      ([k]) => k in optionSchema(methodSpec(method)),
    ),
  );
}

/**
 * Steps six random 28×28 gray frames through `adapter`: a finite first
 * prediction, no tensor left behind after the first step, and, when it
 * `adapts`, an update with a finite loss that moves the parameters (`what`
 * names them in the message).
 */
export async function assertAdaptsOnSixFrames(adapter: Adapter, method: string, adapts: boolean, what: string): Promise<void> {
  const before = await Promise.all([...adapter.params.values()].map((p) => p.data()));
  const frames = [0, 1, 2, 3, 4, 5].map((i) => tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 30 + i) as tf.Tensor4D);
  try {
    const reports: Array<{ updated: boolean; loss: number }> = [];
    adapter.onUpdate = (u) => reports.push(u);
    const first = await adapter.step(frames[0]!);
    assert.ok(first.probabilities.every(Number.isFinite), 'prediction not finite');
    await adapter.flush();
    const tensors = tf.memory().numTensors;
    for (const x of frames.slice(1)) await adapter.step(x);
    await adapter.flush();
    assert.equal(tf.memory().numTensors, tensors, 'tensor count after 5 steps');
    if (!adapts) return;
    assert.ok(
      reports.some((u) => u.updated),
      `${method}: no update in 6 steps`,
    );
    assert.ok(
      reports.filter((u) => u.updated).every((u) => Number.isFinite(u.loss)),
      'loss not finite',
    );
    const after = await Promise.all([...adapter.params.values()].map((p) => p.data()));
    assert.ok(
      after.some((a, i) => maxDiff(a, before[i]!) > 0),
      `the ${what} did not move`,
    );
  } finally {
    frames.forEach((x) => x.dispose());
  }
}
