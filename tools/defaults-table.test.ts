// The one table of method defaults (src/methods/defaults.ts) is what
// docs/methods.md prints, what the tuning record chose, and what the adapters apply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { DOC, defaultsTable, docBlock } from './defaults-table';
import { METHOD_DEFAULTS } from '../src/methods/defaults';
import { createAdapter } from '../src/methods';
import { ViT } from '../src/model/vit';
import { randomViTTensors, tinyConfig } from '../src/model/random-vit';

test(`${DOC} prints the defaults table as defaults.ts has it (npm run defaults:table)`, () => {
  assert.equal(docBlock(readFileSync(DOC, 'utf8')), defaultsTable(), `${DOC}: rerun npm run defaults:table`);
});

test('the tuned defaults are what bench/results/tuning.json chose', () => {
  const tuning = JSON.parse(readFileSync('bench/results/tuning.json', 'utf8')) as { chosen: Record<string, Record<string, unknown>>; regime: string };
  assert.equal(tuning.regime, 'imagenet64');
  const c = tuning.chosen;
  for (const m of ['sar', 'sar-align', 'tent', 'eata', 'deyo'] as const) assert.equal(c[m]!.lr, METHOD_DEFAULTS[m].lr.value, `${m} lr`);
  assert.equal(c.eata!.dMargin, METHOD_DEFAULTS.eata.dMargin.value);
  assert.equal(c['sar-align']!.alignWeight, METHOD_DEFAULTS['sar-align'].alignWeight.value);
  assert.equal((c['sar-align']!.inputAlign as { quantile: number }).quantile, METHOD_DEFAULTS['sar-align'].inputQuantile.value);
  // SAR's threshold is a function of C; for the shipped model's 10 classes it is the tuning's 0.067.
  const scaled = (METHOD_DEFAULTS.sar.resetThresholdAt1000.value * Math.log(10)) / Math.log(1000);
  assert.ok(Math.abs((c.sar!.resetThreshold as number) - scaled) < 1e-3, `sar resetThreshold ${c.sar!.resetThreshold} vs ${scaled}`);
});

test('an adapter created without options runs the table', async () => {
  await tf.setBackend('cpu');
  const cfg = tinyConfig();
  const model = new ViT(cfg, randomViTTensors(cfg, 1));
  for (const m of ['sar', 'tent', 'eata', 'deyo'] as const) {
    const a = await createAdapter(model, { method: m });
    assert.equal(a.lr, METHOD_DEFAULTS[m].lr.value, `${m} lr`);
    a.dispose();
  }
  const sar = (await createAdapter(model, { method: 'sar' })) as unknown as {
    rho: number;
    margin: number;
    lnC: number;
    resetThreshold: number;
    dispose(): void;
  };
  assert.equal(sar.rho, METHOD_DEFAULTS.sar.rho.value);
  assert.ok(Math.abs(sar.margin - METHOD_DEFAULTS.sar.marginFraction.value * sar.lnC) < 1e-12);
  assert.ok(Math.abs(sar.resetThreshold - (0.2 * Math.log(10)) / Math.log(1000)) < 1e-12);
  sar.dispose();
  model.dispose();
});
