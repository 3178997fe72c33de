// Type-checks the docs' js, ts and html blocks with tsc against the package's
// own declarations (tsconfig.lib.json's output, what dist/types ships), so a
// wrong member (`tta.model.channels`), a missing argument or an undefined name
// fails before any browser starts.
//
// - ts blocks: strict, as an app's tsconfig would be.
// - js blocks and the inline scripts of html blocks: checkJs without strict,
//   which is what an editor checks in a plain .js file. A JS user cannot write
//   `!` after getElementById, so null checks would only be noise; a member the
//   library does not have is still an error.
// Every block is its own module (moduleDetection: force), so two blocks may both
// declare `tta`, and a name a block forgets to declare falls through to the
// DOM's globals (`status` is window.status, a string), where tsc sees it.
// Names the docs call the page's own (saveButton, video, show, images…) and
// the script tag's global WildTTA are declared in PAGE_GLOBALS.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inlineScripts, type DocBlock } from './doc-blocks';
import { REPO_ROOT } from './session';

/** What a page that runs the docs' fragments provides (the docs say these are the page's own). */
export const PAGE_GLOBALS = `import type * as Wildtta from 'wildtta';
declare global {
  /** dist/wildtta.iife.js's global, and the name a fragment's page imported. */
  const WildTTA: typeof Wildtta;
  const saveButton: HTMLButtonElement;
  const restoreButton: HTMLButtonElement;
  const video: HTMLVideoElement;
  const show: (r: Wildtta.Classification) => void;
  /** docs/models.md's source statistics: the page's clean images and their labels. */
  const images: Array<HTMLImageElement | ImageBitmap>;
  const labels: number[] | undefined;
  /** The script-tag page keeps its instance here for the console: an expando, which plain JS may add and tsc cannot know. */
  interface Window {
    tta: Wildtta.WildTTA;
  }
}
export {};
`;

const TSC = join(REPO_ROOT, 'node_modules', '.bin', 'tsc');

function tsc(args: string[]): { ok: boolean; output: string } {
  try {
    execFileSync(TSC, args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: 'pipe' });
    return { ok: true, output: '' };
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${x.stdout ?? ''}${x.stderr ?? ''}` || x.message };
  }
}

/** Emits the package's declarations (tsconfig.lib.json) into `dir`; returns the entry's path. */
export function emitPackageTypes(dir: string): string {
  const r = tsc(['-p', join(REPO_ROOT, 'tsconfig.lib.json'), '--outDir', dir]);
  if (!r.ok) throw new Error(`tsc -p tsconfig.lib.json failed:\n${r.output}`);
  return join(dir, 'index.d.ts');
}

interface Unit {
  /** The file tsc sees, e.g. docs_models.md-224.js. */
  file: string;
  code: string;
  /** The page line of the unit's first line, to point errors at the docs. */
  page: string;
  firstLine: number;
}

function units(blocks: DocBlock[]): Unit[] {
  const out: Unit[] = [];
  for (const b of blocks) {
    const base = `${b.page.replace(/\//g, '_')}-${b.line}`;
    if (b.lang === 'js' || b.lang === 'ts') out.push({ file: `${base}.${b.lang}`, code: b.code, page: b.page, firstLine: b.line + 1 });
    else if (b.lang === 'html')
      inlineScripts(b.code).forEach((s, i) => out.push({ file: `${base}-script${i}.js`, code: s.code, page: b.page, firstLine: b.line + s.line }));
  }
  return out;
}

/** tsc's `file(line,col): error …` lines rewritten as `page:line:col error …`. */
function pointAtDocs(output: string, all: Unit[]): string {
  return output.replace(/^(\S+?)\((\d+),(\d+)\): /gm, (whole, file: string, line: string, col: string) => {
    const u = all.find((x) => file.endsWith(x.file));
    return u === undefined ? whole : `${u.page}:${u.firstLine + Number(line) - 1}:${col} `;
  });
}

/**
 * Type-checks the blocks; returns tsc's errors pointed at the docs' lines ('' when clean).
 * `types` is the package's index.d.ts (emitPackageTypes). The work folder sits under
 * the repository so that imports such as 'vite' resolve from its node_modules.
 */
export function typecheckBlocks(blocks: DocBlock[], types: string): string {
  const all = units(blocks);
  mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
  const dir = mkdtempSync(join(REPO_ROOT, 'test-results', 'doc-typecheck-'));
  try {
    for (const u of all) writeFileSync(join(dir, u.file), u.code);
    writeFileSync(join(dir, 'page-globals.d.ts'), PAGE_GLOBALS);
    const base = {
      target: 'ES2022',
      module: 'ESNext',
      moduleResolution: 'bundler',
      moduleDetection: 'force',
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      types: [],
      skipLibCheck: true,
      noEmit: true,
      paths: { wildtta: [types] },
    };
    const errors: string[] = [];
    for (const [kind, options] of [
      ['ts', { ...base, strict: true, noUncheckedIndexedAccess: true }],
      ['js', { ...base, allowJs: true, checkJs: true, strict: false }],
    ] as const) {
      const files = all.filter((u) => u.file.endsWith(`.${kind}`)).map((u) => u.file);
      if (files.length === 0) continue;
      writeFileSync(join(dir, `tsconfig.${kind}.json`), JSON.stringify({ compilerOptions: options, files: ['page-globals.d.ts', ...files] }, null, 2));
      const r = tsc(['-p', join(dir, `tsconfig.${kind}.json`)]);
      if (!r.ok) errors.push(pointAtDocs(r.output, all));
    }
    return errors.join('\n').trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
