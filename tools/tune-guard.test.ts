// bench:tune never looks at the stress family (issue 25 item 7) nor at the 15
// test corruptions: the guard itself, and the command refusing before it loads anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CORRUPTIONS, EXTRA_CORRUPTIONS } from '../src/data/corruptions';
import { STRESS_STREAMS } from '../src/data/stress';
import { tuningCorruptions } from './lib/tune-corruptions';

test('tuningCorruptions: the 4 extra corruptions, or some of them; never a stress stream or a test corruption', () => {
  assert.deepEqual(tuningCorruptions(), [...EXTRA_CORRUPTIONS]);
  assert.deepEqual(tuningCorruptions('spatter,saturate'), ['spatter', 'saturate']);
  for (const s of [...STRESS_STREAMS, 'rot90+speckle_noise'])
    assert.throws(() => tuningCorruptions(`speckle_noise,${s}`), /never look at the stress family/, s);
  assert.throws(() => tuningCorruptions(undefined, true), /never runs the stress family/);
  for (const c of CORRUPTIONS) assert.throws(() => tuningCorruptions(c), /only at the 4 extra corruptions/, c);
});

test('npm run bench:tune -- --stress (or a stress stream in --corruptions) exits non-zero, saying why', () => {
  for (const flags of [['--stress'], ['--corruptions', 'rot90']]) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/tune.ts', ...flags, '--no-write', '--out', '/dev/null'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.notEqual(r.status, 0, flags.join(' '));
    assert.match(r.stderr, /stress family/, flags.join(' '));
  }
});
