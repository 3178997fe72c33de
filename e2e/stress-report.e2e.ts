// The stress family's report (issue 25 item 7): each stream's paired
// difference from no adaptation, the numbers its bar (sar-align ≥ no
// adaptation − 2 points on every stream) is read from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairedDeltas, streamDeltaTable, worstStreamTable, type WildRunRecord } from '../bench/wild';

/** A run record with the given accuracy (%) per stream, 100 frames each. */
function record(method: string, seed: number, acc: Record<string, number>): WildRunRecord {
  const byCorruption = Object.fromEntries(Object.entries(acc).map(([c, a]) => [c, { correct: a, total: 100 }]));
  return {
    scenario: 'label-shift',
    method,
    seed,
    backend: 'cpu',
    options: { method } as WildRunRecord['options'],
    score: { byCorruption, accuracy: 0 } as unknown as WildRunRecord['score'],
  };
}

const streams = ['rot90', 'hflip'];
const records = [
  record('source', 1, { rot90: 10, hflip: 80 }),
  record('source', 2, { rot90: 12, hflip: 90 }),
  record('sar-align', 1, { rot90: 13, hflip: 77 }),
  record('sar-align', 2, { rot90: 11, hflip: 91 }),
  // A seed with no no-adaptation run to pair with: left out.
  record('sar-align', 3, { rot90: 0, hflip: 0 }),
];

test('pairedDeltas: per stream, the method minus no adaptation on the same seed, unpaired seeds left out', () => {
  const d = pairedDeltas(records, 'label-shift', 'sar-align', streams);
  assert.deepEqual(
    d.get('rot90')!.map((x) => [x.seed, Math.round(x.d * 100)]),
    [
      [1, 3],
      [2, -1],
    ],
  );
  assert.deepEqual(
    d.get('hflip')!.map((x) => [x.seed, Math.round(x.d * 100)]),
    [
      [1, -3],
      [2, 1],
    ],
  );
});

test('streamDeltaTable: mean ± std over seeds with the lowest seed, and the lowest mean over streams', () => {
  const t = streamDeltaTable(records, ['label-shift'], ['source', 'sar-align'], streams);
  const row = t.split('\n').find((l) => l.includes('| sar-align |'))!;
  // rot90: +3 and −1 → +1.0 ± 2.8 (lowest −1.0); hflip: −3 and +1 → −1.0 ± 2.8 (lowest −3.0).
  assert.match(row, /\| \+1\.0 ± 2\.8 \(-1\.0\) \| -1\.0 ± 2\.8 \(-3\.0\) \| \*\*-1\.0\*\* \(hflip\) \|$/);
  assert.equal(t.split('\n').filter((l) => l.includes('| source |')).length, 0, 'no-adaptation is the baseline, not a row');
});

test('worstStreamTable: the lowest single seed over all streams, and where', () => {
  assert.match(worstStreamTable(records, ['label-shift'], ['source', 'sar-align'], streams), /\| sar-align \| -3\.0 \(hflip, seed 1\) \|/);
});
