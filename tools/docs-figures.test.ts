// The docs' figures that the build or the code determines (the package's
// size and file count, the bundles' sizes, the make-model table) are what
// the build gives now; npm run docs:figures rewrites them. Builds the
// library first when a source is newer than dist/ (about a minute).
//
//   npm test -- docs-figures
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentFigure, FIGURES, withFigure, type Figure } from './docs-figures';
import { ensureLibBuilt } from './lib/lib-build';
import { REPO_ROOT } from './lib/session';

before(() => ensureLibBuilt());

for (const f of FIGURES)
  test(`${f.doc}: the ${f.name} figures are the build's (npm run docs:figures)`, () => {
    const text = readFileSync(join(REPO_ROOT, f.doc), 'utf8');
    assert.equal(currentFigure(text, f), f.make(), `${f.doc}: stale figures in <!-- figures:${f.name} -->; run npm run docs:figures`);
  });

test('a block is read and rewritten in place, the text around it untouched', () => {
  const inline: Figure = { doc: 'x.md', name: 'n', inline: true, needsBuild: false, make: () => '' };
  const block: Figure = { ...inline, name: 't', inline: false };
  const text = 'It is <!-- figures:n -->1 MB<!-- /figures -->.\n\n<!-- figures:t -->\n| a |\n|---|\n<!-- /figures -->\nafter\n';
  assert.equal(currentFigure(text, inline), '1 MB');
  assert.equal(currentFigure(text, block), '| a |\n|---|');
  const rewritten = withFigure(withFigure(text, inline, '2 MB'), block, '| b |\n|---|\n| 1 |');
  assert.equal(rewritten, 'It is <!-- figures:n -->2 MB<!-- /figures -->.\n\n<!-- figures:t -->\n| b |\n|---|\n| 1 |\n<!-- /figures -->\nafter\n');
  assert.throws(() => currentFigure('no markers', inline), /x\.md has no <!-- figures:n -->/);
  assert.throws(() => currentFigure('<!-- figures:n --> open', inline), /has no <!-- \/figures --> after it/);
});
