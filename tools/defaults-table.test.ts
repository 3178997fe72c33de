// Each method's defaults (its registry entry, src/methods/registry.ts) are what
// docs/methods.md prints, what the tuning record chose, and what the adapters apply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { DOC, defaultsTable, docBlock } from './defaults-table';
import { METHODS } from '../src/methods/registry';
import { createAdapter } from '../src/methods';
import { ViT } from '../src/model/vit';
import { randomViTTensors, tinyConfig } from '../src/model/random-vit';

test(`${DOC} prints the defaults table as the registry has it (npm run defaults:table)`, () => {
  assert.equal(docBlock(readFileSync(DOC, 'utf8')), defaultsTable(), `${DOC}: rerun npm run defaults:table`);
});

test('the tuned defaults are what bench/results/tuning.json chose', () => {
  const tuning = JSON.parse(readFileSync('bench/results/tuning.json', 'utf8')) as { chosen: Record<string, Record<string, unknown>>; regime: string };
  assert.equal(tuning.regime, 'imagenet64');
  const c = tuning.chosen;
  for (const m of ['sar', 'sar-align', 'sar-msam', 'tent', 'eata', 'deyo'] as const) assert.equal(c[m]!.lr, METHODS[m].defaults.lr.value, `${m} lr`);
  assert.equal(c.eata!.dMargin, METHODS.eata.defaults.dMargin.value);
  assert.equal(c['sar-msam']!.rho, METHODS['sar-msam'].defaults.rho.value);
  assert.equal(c['sar-align']!.alignWeight, METHODS['sar-align'].defaults.alignWeight.value);
  assert.equal((c['sar-align']!.inputAlign as { quantile: number }).quantile, METHODS['sar-align'].defaults.inputQuantile.value);
  // SAR's threshold is a function of C; for the shipped model's 10 classes it is the tuning's 0.067.
  const scaled = (METHODS.sar.defaults.resetThresholdAt1000.value * Math.log(10)) / Math.log(1000);
  assert.ok(Math.abs((c.sar!.resetThreshold as number) - scaled) < 1e-3, `sar resetThreshold ${c.sar!.resetThreshold} vs ${scaled}`);
});

test('an adapter created without options runs the table', async () => {
  await tf.setBackend('cpu');
  const cfg = tinyConfig();
  const model = new ViT(cfg, randomViTTensors(cfg, 1));
  for (const m of ['sar', 'sar-msam', 'tent', 'eata', 'deyo'] as const) {
    const a = await createAdapter(model, { method: m });
    assert.equal(a.lr, METHODS[m].defaults.lr.value, `${m} lr`);
    a.dispose();
  }
  const sar = (await createAdapter(model, { method: 'sar' })) as unknown as {
    rho: number;
    margin: number;
    lnC: number;
    resetThreshold: number;
    dispose(): void;
  };
  assert.equal(sar.rho, METHODS.sar.defaults.rho.value);
  assert.ok(Math.abs(sar.margin - METHODS.sar.defaults.marginFraction.value * sar.lnC) < 1e-12);
  assert.ok(Math.abs(sar.resetThreshold - (0.2 * Math.log(10)) / Math.log(1000)) < 1e-12);
  sar.dispose();
  const msam = (await createAdapter(model, { method: 'sar-msam' })) as unknown as { rho: number; dispose(): void };
  assert.equal(msam.rho, METHODS['sar-msam'].defaults.rho.value);
  msam.dispose();
  model.dispose();
});
