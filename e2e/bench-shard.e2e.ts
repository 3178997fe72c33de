// A sharded wild benchmark: two slices (`npm run bench -- --shard 1/2` and
// `2/2`) cover the grid once, and their records merged (bench:merge) give the
// same report as the unsliced run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { CORRUPTIONS } from '../src/data/corruptions';
import { loadMethodOptions, parseShard, runWildBench, wildTables, type WildBenchOptions } from '../bench/wild';
import { optionsOf, readRecords } from '../bench/merge';
import { assertNoPageErrors } from './support/browser';

const base: WildBenchOptions = {
  regime: 'imagenet64',
  backend: 'wasm',
  seeds: [1, 2],
  scenarios: ['mixed', 'label-shift'],
  methods: ['source', 'recenter', 'sar-align'],
  corruptions: [...CORRUPTIONS],
  perCorruption: 10,
  severity: 5,
  outDir: 'test-results/bench-shard/whole',
  methodOptions: loadMethodOptions(),
  plots: false,
  log: () => undefined,
};

test("two slices of the grid, merged, give the unsliced run's report", async () => {
  const sliced = 'test-results/bench-shard/sliced';
  rmSync(sliced, { recursive: true, force: true });
  const whole = await runWildBench(base);
  const one = await runWildBench({ ...base, outDir: sliced, shard: parseShard('1/2') });
  const two = await runWildBench({ ...base, outDir: sliced, shard: parseShard('2/2') });
  // 2 seeds × 2 scenarios × 3 methods = 12 jobs: 6 and 6, none in both.
  assert.equal(whole.records.length, 12);
  assert.deepEqual([one.records.length, two.records.length], [6, 6]);
  const key = (r: { scenario: string; method: string; seed: number }) => `${r.scenario}|${r.method}|${r.seed}`;
  assert.equal(new Set([...one.records, ...two.records].map(key)).size, 12);
  const merged = readRecords(sliced);
  const o = optionsOf(merged, sliced);
  assert.deepEqual([o.seeds, o.scenarios, o.methods, o.perCorruption, o.regime], [base.seeds, base.scenarios, base.methods, base.perCorruption, base.regime]);
  assert.equal(wildTables(merged, o), wildTables(whole.records, base));
  assert.throws(() => parseShard('3/2'), RangeError);
  assert.throws(() => parseShard('0/2'), RangeError);
});

test('no console errors or uncaught exceptions in the pages', () => assertNoPageErrors());
