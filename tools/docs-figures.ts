// The figures in the docs that the build or the code determines, kept
// between marker comments in the page and rewritten in place:
//
//   <!-- figures:NAME -->…<!-- /figures -->
//
//   npm run docs:figures      builds the library if a source is newer than dist/, then rewrites every block
//
// tools/docs-figures.test.ts fails when a page's block is not what this
// computes. Measured figures (benchmarks, timings) are not here: they come
// from their own commands and say which run they are from.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureLibBuilt } from './lib/lib-build';
import { REPO_ROOT } from './lib/session';
import { libSizesTable } from './lib-sizes';
import { testModelSpec, TEST_MODEL_SIZES } from '../src/model/make-model';

export interface Figure {
  /** The page, relative to the repository root. */
  doc: string;
  name: string;
  /** A phrase inside a sentence (markers on the same line), or lines of their own (a table). */
  inline: boolean;
  /** Whether it reads dist/ (the library build). */
  needsBuild: boolean;
  make(): string;
}

/** What `npm pack` would publish: the tarball's size and its file count. */
function packageFigure(): string {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm pack --dry-run failed:\n${r.stderr}`);
  const [entry] = JSON.parse(r.stdout) as Array<{ size: number; entryCount: number }>;
  return `about ${(entry!.size / 1e6).toFixed(1)} MB, ${entry!.entryCount} files`;
}

/** The sizes npm run make-model knows, with their parameter counts and weights file (float32). */
function makeModelTable(): string {
  const rows = ['| `--family` | `--size` | what | parameters | `model.safetensors` |', '|---|---|---|---:|---:|'];
  for (const [family, sizes] of Object.entries(TEST_MODEL_SIZES))
    for (const size of sizes) {
      const s = testModelSpec(family, size);
      const mb = (4 * s.parameters) / 1e6;
      rows.push(
        `| ${family} | ${size} | \`${s.architecture}\`: ${s.description} | ${s.parameters.toLocaleString('en-US')} | ${mb < 10 ? mb.toFixed(1) : mb.toFixed(0)} MB |`,
      );
    }
  return rows.join('\n');
}

export const FIGURES: Figure[] = [
  { doc: 'docs/guide.md', name: 'package', inline: true, needsBuild: true, make: packageFigure },
  { doc: 'docs/guide.md', name: 'bundles', inline: false, needsBuild: true, make: () => libSizesTable() },
  { doc: 'docs/models.md', name: 'make-model', inline: false, needsBuild: false, make: makeModelTable },
];

const END = '<!-- /figures -->';
const begin = (name: string) => `<!-- figures:${name} -->`;

/** Where a page holds a figure's block: the text between its markers. */
function locate(text: string, f: Figure): { from: number; to: number } {
  const start = text.indexOf(begin(f.name));
  if (start < 0) throw new Error(`${f.doc} has no ${begin(f.name)} … ${END} block`);
  const from = start + begin(f.name).length;
  const to = text.indexOf(END, from);
  if (to < 0) throw new Error(`${f.doc}: ${begin(f.name)} has no ${END} after it`);
  return { from, to };
}

/** The figure as the page holds it now. */
export function currentFigure(text: string, f: Figure): string {
  const { from, to } = locate(text, f);
  return f.inline ? text.slice(from, to) : text.slice(from, to).replace(/^\n/, '').replace(/\n$/, '');
}

/** The page's text with the figure's block holding `value`. */
export function withFigure(text: string, f: Figure, value: string): string {
  const { from, to } = locate(text, f);
  return text.slice(0, from) + (f.inline ? value : `\n${value}\n`) + text.slice(to);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  if (FIGURES.some((f) => f.needsBuild)) ensureLibBuilt();
  for (const f of FIGURES) {
    const path = join(REPO_ROOT, f.doc);
    const text = readFileSync(path, 'utf8');
    const value = f.make();
    const same = currentFigure(text, f) === value;
    if (!same) writeFileSync(path, withFigure(text, f, value));
    console.log(`${f.doc} ${begin(f.name)}: ${same ? 'unchanged' : 'rewritten'}`);
  }
}
