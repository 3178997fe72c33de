// The npm test reporter counts individual tests: leaves only, file-level failures as one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const reporter = resolve('tools/test-reporter.mjs');

function runReporter(files: Record<string, string>): { counts: Record<string, number>; stdout: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wildtta-reporter-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const summary = join(dir, 'summary.json');
    // Inside a test file NODE_TEST_CONTEXT is set; the inner runner must not think it is a child.
    const env: NodeJS.ProcessEnv = { ...process.env, WILDTTA_TEST_SUMMARY: summary, NO_COLOR: '1' };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(
      process.execPath,
      ['--test', '--test-concurrency=1', `--test-reporter=${reporter}`, '--test-reporter-destination=stdout', ...Object.keys(files)],
      { cwd: dir, encoding: 'utf8', env, timeout: 60_000 },
    );
    return { counts: JSON.parse(readFileSync(summary, 'utf8')), stdout: r.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('counts leaf tests, not groups or suites, and file-level failures once', () => {
  const { counts, stdout } = runReporter({
    'a.test.mjs': `
      import { test, describe, it } from 'node:test';
      test('top', () => {});
      test('parent', async (t) => { await t.test('c1', () => {}); await t.test('c2', () => {}); });
      describe('suite', () => { it('i1', () => {}); it('i2', () => { throw new Error('boom'); }); });
      test('skipped', { skip: 'later' }, () => {});
      console.log('printed by a test file');
    `,
    'b.test.mjs': `throw new Error('does not load');`,
    'c.test.mjs': `
      import { test, after } from 'node:test';
      test('fine', () => {});
      after(() => { throw new Error('hook failed'); });
    `,
  });
  assert.equal(counts.passed, 5, stdout); // top, c1, c2, i1, fine
  assert.equal(counts.failed, 3, stdout); // i2, b.test.mjs, c.test.mjs's hook
  assert.equal(counts.skipped, 1, stdout);
  assert.equal(counts.files, 3, stdout);
  assert.match(stdout, /✔ c1/);
  assert.match(stdout, /✖ i2/);
  assert.match(stdout, /boom/);
  assert.match(stdout, /printed by a test file/);
});

test('a file with no tests counts nothing', () => {
  const { counts } = runReporter({ 'empty.test.mjs': `export {};` });
  assert.deepEqual([counts.passed, counts.failed], [0, 0]);
});
