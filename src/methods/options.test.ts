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
