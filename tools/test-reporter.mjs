// node:test reporter for `npm test` (tools/run-tests.mjs): streams one readable
// line per test as it finishes, grouped by file, prints failure details, and
// counts individual tests.
//
// "Individual tests" are the leaves: a test with subtests (t.test) is a group,
// and describe() suites are groups; neither is counted itself, their tests
// are. A failure that belongs to a whole file (it did not load, a hook threw,
// the process exited non-zero) counts as one failed test.
//
// The counts go to the JSON file named by WILDTTA_TEST_SUMMARY (when set),
// rewritten after every result, so the runner can print the final
// "N passed, N failed" line and pick its exit code.
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { inspect } from 'node:util';

const color = process.env.NO_COLOR === undefined && (process.env.FORCE_COLOR !== undefined || process.stdout.isTTY === true);
const paint = (code) => (s) => (color ? `\x1b[${code}m${s}\x1b[39m` : s);
const green = paint(32);
const red = paint(31);
const gray = paint(90);
const yellow = paint(33);

const rel = (file) => (file ? relative(process.cwd(), file) : '');
const ms = (d) => (d === undefined ? '' : gray(` (${d >= 1000 ? `${(d / 1000).toFixed(1)} s` : `${d.toFixed(1)} ms`})`));
const indent = (n) => '  '.repeat(n + 1);

function errorText(error) {
  if (error === undefined || error === null) return '';
  // Failures from a test file arrive wrapped (ERR_TEST_FAILURE) with the real error as cause.
  const inner = error.code === 'ERR_TEST_FAILURE' && error.cause !== undefined ? error.cause : error;
  const kind = error.failureType && error.failureType !== 'testCodeFailure' ? `[${error.failureType}] ` : '';
  const text = typeof inner === 'string' ? inner : inspect(inner, { depth: 6, colors: color });
  return kind + text;
}

function saveCounts(counts, done) {
  if (process.env.WILDTTA_TEST_SUMMARY) writeFileSync(process.env.WILDTTA_TEST_SUMMARY, JSON.stringify({ ...counts, done }));
}

export default async function* wildttaReporter(source) {
  const counts = { passed: 0, failed: 0, skipped: 0, todo: 0, files: 0 };
  const failures = [];
  let currentFile;
  // Per file: nesting level of the last finished test, to tell groups from leaves
  // (a test's subtests always finish right before it, one level deeper).
  let lastFinishedNesting = -1;
  // Started tests whose header line is not printed yet, by nesting level.
  const pendingHeaders = [];
  saveCounts(counts, false);

  function* enterFile(file) {
    if (file === undefined || file === currentFile) return;
    currentFile = file;
    lastFinishedNesting = -1;
    pendingHeaders.length = 0;
    counts.files++;
    yield `\n${rel(file)}\n`;
  }

  function fail(where, error) {
    counts.failed++;
    failures.push({ where, error });
  }

  function* result(type, data) {
    const failed = type === 'test:fail';
    const error = data.details?.error;
    const dur = ms(data.details?.duration_ms);
    yield* enterFile(data.file);
    if (data.file !== undefined && data.name === data.file) {
      // A file reports itself only when it had no tests of its own or something
      // outside its tests went wrong; a passing file-level result counts nothing.
      if (failed) {
        fail(rel(data.file), error);
        yield `${indent(0)}${red('✖')} ${red('file failed')}: ${rel(data.file)}${dur}\n`;
        yield `${errorText(error).replace(/^/gm, indent(2))}\n`;
      }
      lastFinishedNesting = -1;
      return;
    }
    const isGroup = data.details?.type === 'suite' || lastFinishedNesting === data.nesting + 1;
    lastFinishedNesting = data.nesting;
    if (pendingHeaders[data.nesting] === data.name) pendingHeaders[data.nesting] = undefined;
    const pad = indent(data.nesting);
    const where = `${rel(data.file)} › ${data.name}`;
    if (data.skip !== undefined && data.skip !== false) {
      if (!isGroup) counts.skipped++;
      yield `${pad}${yellow('﹣')} ${data.name} ${yellow(`# SKIP${typeof data.skip === 'string' ? ` ${data.skip}` : ''}`)}\n`;
    } else if (data.todo !== undefined && data.todo !== false) {
      if (!isGroup) counts.todo++;
      yield `${pad}${yellow('﹣')} ${data.name} ${yellow(`# TODO${typeof data.todo === 'string' ? ` ${data.todo}` : ''}`)}${dur}\n`;
    } else if (isGroup) {
      // A group's own line; failing subtests were already counted and shown. It
      // counts only when it failed by itself (its body or a hook threw).
      const own = failed && error?.failureType !== 'subtestsFailed';
      if (own) fail(where, error);
      yield `${pad}${failed ? red('✖') : green('✔')} ${data.name}${dur}\n`;
      if (own) yield `${errorText(error).replace(/^/gm, `${pad}    `)}\n`;
    } else if (failed) {
      fail(where, error);
      yield `${pad}${red('✖')} ${red(data.name)}${dur}\n`;
      yield `${errorText(error).replace(/^/gm, `${pad}    `)}\n`;
    } else {
      counts.passed++;
      yield `${pad}${green('✔')} ${data.name}${dur}\n`;
    }
  }

  for await (const { type, data } of source) {
    switch (type) {
      case 'test:start':
        if (data.file === undefined || data.name === data.file) break;
        yield* enterFile(data.file);
        // The enclosing groups have a subtest: print their headers now.
        for (let n = 0; n < data.nesting; n++) {
          if (pendingHeaders[n] !== undefined) {
            yield `${indent(n)}▶ ${pendingHeaders[n]}\n`;
            pendingHeaders[n] = undefined;
          }
        }
        pendingHeaders[data.nesting] = data.name;
        pendingHeaders.length = data.nesting + 1;
        break;
      case 'test:pass':
      case 'test:fail':
        yield* result(type, data);
        saveCounts(counts, false);
        break;
      case 'test:diagnostic':
        // Per-test diagnostics (t.diagnostic) carry a file; the runner's own totals do not.
        if (data.file !== undefined) yield `${indent(data.nesting + 1)}${gray(`ℹ ${data.message}`)}\n`;
        break;
      case 'test:stdout':
      case 'test:stderr':
        yield* enterFile(data.file);
        yield data.message;
        break;
      default:
        break;
    }
  }

  if (failures.length > 0) {
    yield `\n${red('Failures:')}\n`;
    for (const f of failures) {
      const first = errorText(f.error).split('\n')[0] ?? '';
      yield `  ${red('✖')} ${f.where}${first ? `: ${first}` : ''}\n`;
    }
  }
  if (counts.skipped + counts.todo > 0) yield `\n${yellow(`${counts.skipped} skipped, ${counts.todo} todo`)}\n`;
  saveCounts(counts, true);
}
