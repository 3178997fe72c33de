// The options a method takes, checked at the door (issue 25, items 5 and 6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ViT } from '../model/vit';
import { randomViTTensors, tinyConfig } from '../model/random-vit';
import { createAdapter, type AdapterOptions } from './index';

await tf.setBackend('cpu');

const cfg = tinyConfig();
const model = new ViT(cfg, randomViTTensors(cfg, 7));
test.after(() => model.dispose());

async function refusal(options: Record<string, unknown>): Promise<string> {
  try {
    const a = await createAdapter(model, options as AdapterOptions);
    a.dispose();
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail(`${JSON.stringify(options)} was accepted`);
}

test('messages print NaN and Infinity as such, not as null', async () => {
  assert.match(await refusal({ method: 'sar', lr: NaN }), /got NaN/);
  assert.match(await refusal({ method: 'sar', rho: Infinity }), /got Infinity/);
  assert.match(await refusal({ method: 'tent', momentum: -Infinity }), /got -Infinity/);
});

test('an unknown option is refused with the nearest known name', async () => {
  assert.match(await refusal({ method: 'sar', margin: 0.4 }), /unknown option 'margin'; did you mean 'marginFraction'\?/);
  assert.match(await refusal({ method: 'sar', rh0: 0.05 }), /did you mean 'rho'\?/);
  assert.match(await refusal({ method: 'tent', rho: 0.05 }), /unknown option 'rho'/);
  assert.match(await refusal({ method: 'sar', recenter: { decy: 0.9 } }), /unknown option 'recenter.decy'; did you mean 'recenter.decay'\?/);
});

test('ranges and types: lr ≥ 0, 0 ≤ momentum < 1, rho ≥ 0, whole numbers, booleans', async () => {
  assert.match(await refusal({ method: 'sar', lr: -1 }), /lr must be a finite number ≥ 0, got -1/);
  assert.match(await refusal({ method: 'sar', momentum: 1 }), /momentum must be a finite number ≥ 0 and < 1, got 1/);
  assert.match(await refusal({ method: 'sar', rho: -0.1 }), /rho must be/);
  assert.match(await refusal({ method: 'sar', rho: 'far' }), /rho must be a finite number ≥ 0, got "far" \(string\)/);
  assert.match(await refusal({ method: 'sar', skipLastBlocks: 1.5 }), /skipLastBlocks must be a whole number ≥ 0, got 1.5/);
  assert.match(await refusal({ method: 'tent', includeFinalNorm: 'no' }), /includeFinalNorm must be true or false, got "no"/);
  assert.match(await refusal({ method: 'eata', fisherBatchSize: 0 }), /fisherBatchSize must be a whole number ≥ 1/);
  // What the ablations and the tuning pass stays valid.
  for (const ok of [
    { method: 'sar', lr: 0, rho: 0, resetThreshold: -1 },
    { method: 'tent', clipNorm: Infinity },
    { method: 'deyo', plpdThreshold: -1 },
  ]) {
    const a = await createAdapter(model, ok as AdapterOptions);
    a.dispose();
  }
});
