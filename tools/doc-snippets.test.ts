// The code blocks of README.md and docs/*.md, held to what tools/lib/doc-blocks.ts
// says: each one either runs in a test (run=…) or says why not (norun="…"); the
// app's install line names the package's peers; and every js, ts and html block type-checks
// against the package's own declarations. Planted bad blocks show each check
// failing, in the same runs.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { docBlocks, markingProblem, npmInstallPackages, parseBlocks, where, type DocBlock } from './lib/doc-blocks';
import { emitPackageTypes, typecheckBlocks } from './lib/doc-typecheck';
import { REPO_ROOT } from './lib/session';

const blocks = docBlocks();

test('every code block of README.md and docs/*.md says how the tests run it, or why they do not', () => {
  const problems = blocks.map((b) => [b, markingProblem(b)] as const).filter(([, p]) => p !== null);
  assert.deepEqual(
    problems.map(([b, p]) => `${where(b)}: ${p}`),
    [],
  );
  // Each way of running has blocks, so no runner passes on an empty list.
  for (const run of ['page', 'app', 'script-tag'])
    assert.ok(
      blocks.some((b) => b.attrs.run === run),
      `no block has run=${run}`,
    );
});

test('the marking check refuses a block that escapes it', () => {
  const planted = parseBlocks(
    [
      '```js',
      'WildTTA.create({ model: "/m/" });',
      '```',
      '```',
      'const tta = 1;',
      '```',
      '```sh norun="no"',
      'npm run x',
      '```',
      '```js run=somewhere id=x',
      '1;',
      '```',
      '```js run=page',
      '1;',
      '```',
      '```html run=script-tag',
      '<p></p>',
      '```',
      '```text',
      'a diagram',
      '```',
      '- in a list item:',
      '',
      '  ```ts',
      '  const tta = 1;',
      '  ```',
    ].join('\n'),
    'planted.md',
  );
  assert.deepEqual(
    planted.map((b) => markingProblem(b)?.replace(/:.*$/, '') ?? null),
    [
      'a ```js block with neither run=… (how the tests run it) nor norun="…" (why they do not)',
      'a code block with no language',
      'norun="no" does not say why the block is not run',
      'run=somewhere',
      'a run=page block needs an id= (e2e/doc-snippets.e2e.ts checks each by its id)',
      null,
      null,
      'a ```ts block with neither run=… (how the tests run it) nor norun="…" (why they do not)',
    ],
  );
  assert.equal(planted.at(-1)!.code, 'const tta = 1;\n', "an indented block's code without its indent");
  assert.throws(() => parseBlocks('```js run=page\nnever closed\n', 'planted.md'), /planted\.md:1: a code block that is never closed/);
  assert.throws(() => parseBlocks('```js run=page oops\n```\n', 'planted.md'), /cannot read "oops"/);
});

test("the guide's install line names the package and every peer dependency, as the example app's package.json does", () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; peerDependencies: Record<string, string> };
  const want = [pkg.name, ...Object.keys(pkg.peerDependencies)].sort();
  const installs = blocks.filter((b) => b.attrs.run === 'app' && b.lang === 'sh' && /\bnpm install\b/.test(b.code));
  assert.equal(installs.length, 1, 'one run=app block installs the package');
  assert.deepEqual(npmInstallPackages(installs[0]!.code).sort(), want, `${where(installs[0]!)}: the packages installed`);
  const app = JSON.parse(readFileSync(join(REPO_ROOT, 'examples', 'vite-app', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  assert.deepEqual(Object.keys(app.dependencies).sort(), want, "examples/vite-app/package.json's dependencies");
  assert.throws(() => npmInstallPackages('npm install wildtta \\\n  @tensorflow/tfjs-core; rm -rf x\n'), /a line the consumer test cannot run/);
});

let work: string;
let types: string;
before(() => {
  mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
  work = mkdtempSync(join(REPO_ROOT, 'test-results', 'doc-types-'));
  types = emitPackageTypes(work);
});
after(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

// Checked together with the docs' blocks, in one tsc run per kind: each must fail, at its own line.
const PLANTED = `
\`\`\`js run=page id=channels
const tta = await WildTTA.create({ model: '/models/my-vit/' });
const { imageSize: S, channels: C } = tta.model;
\`\`\`

\`\`\`html run=script-tag
<p id="status">Loading…</p>
<script>
  WildTTA.create({ model: 'm/' }).then(() => (status.textContent = 'ready'));
</script>
\`\`\`

\`\`\`ts run=app id=strict
import { WildTTA } from 'wildtta';
const tta = await WildTTA.create({ model: '/m/' });
await tta.classify(document.querySelector('img'));
const n: number = tta.memory().numTensors;
\`\`\`
`;

test('the js, ts and html blocks type-check against the package types; a wrong name in a block does not', () => {
  const checked = blocks.filter((b) => ['js', 'ts', 'html'].includes(b.lang));
  assert.ok(checked.length >= 5, `only ${checked.length} blocks to type-check`);
  const planted: DocBlock[] = parseBlocks(PLANTED, 'planted.md');
  const output = typecheckBlocks([...checked, ...planted], types);
  // One entry per error: its line and the indented lines that explain it.
  const errors = output.split(/\n(?=\S)/).filter((e) => /error TS\d+/.test(e));
  const inDocs = errors.filter((e) => !e.startsWith('planted.md:'));
  assert.equal(inDocs.length, 0, `the docs' blocks do not type-check:\n${inDocs.join('\n')}`);
  const lines = errors.filter((e) => e.startsWith('planted.md:'));
  const at = (line: number, code: string, text: RegExp) =>
    assert.ok(
      lines.some((l) => l.startsWith(`planted.md:${line}:`) && l.includes(code) && text.test(l)),
      `expected ${code} at planted.md:${line}:\n${output}`,
    );
  at(4, 'TS2339', /'channels' does not exist on type 'ModelInfo'/);
  // The script-tag page that forgot to define `status`: window.status is a string.
  at(10, 'TS2339', /'textContent' does not exist on type 'string'/);
  // Strict TypeScript: querySelector may give null; memory() is a Promise.
  at(17, 'TS2345', /null/);
  at(18, 'TS2339', /'numTensors' does not exist on type 'Promise/);
});
