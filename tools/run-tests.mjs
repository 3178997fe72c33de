#!/usr/bin/env node
// `npm test`: every Node unit test (src/**/*.test.ts, tools/**/*.test.ts) and
// every browser test (e2e/**/*.e2e.ts), one file at a time, through Node's
// built-in test runner with tsx. Ends with the line "N passed, N failed"
// (individual tests, both kinds together) and exits non-zero when a test
// failed or when no test ran.
//
//   npm test                      everything
//   npm test -- node              Node unit tests only (alias: unit)
//   npm test -- e2e               browser tests only (alias: browser)
//   npm test -- src/model         test files under a folder, or given files
//   npm test -- safetensors       test files whose path contains the word (also for a folder
//                                 without tests, e.g. demo)
//   npm test -- e2e --test-name-pattern=webgl    extra flags go to node --test
//
// Environment: CHROMIUM_PATH (browser for e2e), WILDTTA_E2E_VERBOSE=1 (echo the
// page's console), WILDTTA_TEST_TIMEOUT_MS (per test file, default 900000; a
// test that needs a tighter limit of its own sets node:test's { timeout }).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
process.chdir(root);

const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.train', 'public', 'fixtures', 'test-results', 'artifacts']);

/** Files under `dir` (relative to the repo root) whose name ends with `suffix`, sorted. */
function findFiles(dir, suffix) {
  const out = [];
  const walk = (d) => {
    if (!existsSync(d)) return;
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name)) walk(p);
      } else if (entry.isFile() && entry.name.endsWith(suffix)) {
        out.push(p);
      }
    }
  };
  walk(dir);
  return out.sort();
}

const unitFiles = [...findFiles('src', '.test.ts'), ...findFiles('tools', '.test.ts')];
const e2eFiles = findFiles('e2e', '.e2e.ts');
const allFiles = [...unitFiles, ...e2eFiles];

const args = process.argv.slice(2);
const passThrough = args.filter((a) => a.startsWith('-'));
const filters = args.filter((a) => !a.startsWith('-'));

function select(filter) {
  if (filter === 'node' || filter === 'unit') return unitFiles;
  if (filter === 'e2e' || filter === 'browser') return e2eFiles;
  const asPath = relative(root, resolve(filter));
  if (existsSync(asPath)) {
    if (statSync(asPath).isDirectory()) {
      const under = allFiles.filter((f) => f === asPath || f.startsWith(asPath + sep) || asPath === '');
      // A folder with no tests of its own (demo/) still names the tests about it (e2e/demo-*.e2e.ts).
      if (under.length > 0) return under;
      return allFiles.filter((f) => f.includes(filter));
    }
    return [asPath];
  }
  return allFiles.filter((f) => f.includes(filter));
}

let files = allFiles;
if (filters.length > 0) {
  const chosen = new Set();
  for (const f of filters) {
    const hits = select(f);
    if (hits.length === 0) console.error(`no test files match "${f}"`);
    for (const h of hits) chosen.add(h);
  }
  files = allFiles.filter((f) => chosen.has(f)).concat([...chosen].filter((f) => !allFiles.includes(f)));
}

if (files.length === 0) {
  console.log('\nno test files found');
  console.log('0 passed, 0 failed');
  process.exit(1);
}

const nUnit = files.filter((f) => unitFiles.includes(f)).length;
console.log(`${files.length} test file(s): ${nUnit} Node, ${files.length - nUnit} browser`);

const work = mkdtempSync(join(tmpdir(), 'wildtta-test-'));
const summaryFile = join(work, 'summary.json');
// node --test applies --test-timeout to each file's process as a whole, not to each test in it (Node 20).
// 15 min: the longest file (e2e/demo-memory.e2e.ts, ~2 min idle) fits a loaded machine, and one file
// that hangs until it is stopped still leaves the suite (~10 min idle) under 25 min.
const timeoutMs = Number(process.env.WILDTTA_TEST_TIMEOUT_MS ?? 900_000);
// The whole run: a file that never exits (a handle left open) must not stall CI forever.
const totalTimeoutMs = Number(process.env.WILDTTA_TEST_TOTAL_TIMEOUT_MS ?? 3_600_000);

const nodeArgs = [
  '--import',
  'tsx',
  '--test',
  // One file at a time: the machine has two cores and the browser tests start Chromium.
  '--test-concurrency=1',
  `--test-timeout=${timeoutMs}`,
  '--test-reporter=./tools/test-reporter.mjs',
  '--test-reporter-destination=stdout',
  ...passThrough,
  ...files,
];

const started = Date.now();
const env = { ...process.env, WILDTTA_TEST_SUMMARY: summaryFile };
// Set when this runs inside another node:test file; the runner would then act as a child.
delete env.NODE_TEST_CONTEXT;
const child = spawn(process.execPath, nodeArgs, { stdio: 'inherit', env });

let timedOut = false;
const watchdog = setTimeout(() => {
  timedOut = true;
  console.log(`\nthe run exceeded ${totalTimeoutMs / 1000} s (WILDTTA_TEST_TOTAL_TIMEOUT_MS); stopping it`);
  child.kill('SIGTERM');
  setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
}, totalTimeoutMs);
watchdog.unref();

const forward = (signal) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);

child.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  let counts;
  try {
    counts = JSON.parse(readFileSync(summaryFile, 'utf8'));
  } catch {
    counts = undefined;
  }
  rmSync(work, { recursive: true, force: true });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (counts === undefined) {
    console.log(`\nthe test runner ended (${signal ?? `exit code ${code}`}) without reporting results, after ${secs} s`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  console.log(`\n${counts.files} file(s) in ${secs} s`);
  if (counts.passed + counts.failed === 0) console.log('no tests ran');
  // A run cut short, or a non-zero exit the reporter could not pin on a test, is one more failure.
  const incomplete = timedOut || !counts.done || (counts.failed === 0 && code !== 0);
  if (incomplete) console.log(`node --test ended early or with ${signal ?? `exit code ${code}`}`);
  const failed = counts.failed + (incomplete ? 1 : 0);
  console.log(`${counts.passed} passed, ${failed} failed`);
  process.exit(failed > 0 || counts.passed === 0 ? 1 : 0);
});
