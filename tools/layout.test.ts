// The house's shape, checked from the imports themselves: src/ has no import
// circle, and the folders outside it only import downward (tools → bench →
// e2e; nothing in src/ or demo/ reaches into them). ESLint checks the layers
// inside src/ file by file; a circle needs the whole graph, so it lives here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const SKIP = new Set(['node_modules', 'dist', 'results', 'fixtures', 'test-results']);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP.has(entry.name)) out.push(...sources(p));
    } else if (/\.(ts|mts|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

// Static imports, re-exports and dynamic imports with a literal path; type-only
// imports count too, since a circle through types still ties two files together.
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

/** Relative imports of `file`, resolved to repository paths (extension filled in). */
export function localImports(file: string, text = readFileSync(join(ROOT, file), 'utf8')): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (!spec.startsWith('.')) continue;
    const base = join(dirname(file), spec.replace(/\?.*$/, ''));
    const hit = [base, `${base}.ts`, `${base}/index.ts`, base.replace(/\.js$/, '.ts')].find(
      (p) => existsSync(join(ROOT, p)) && statSync(join(ROOT, p)).isFile(),
    );
    out.push(hit ?? base);
  }
  return out;
}

/** Every elementary circle's first sighting, as the list of files around it. */
function circles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    path.push(n);
    for (const m of graph.get(n) ?? []) {
      if (!graph.has(m)) continue;
      if (state.get(m) === 'open') found.push([...path.slice(path.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    path.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

test('the import scanner sees static, type, re-export and dynamic imports (and finds a planted circle)', () => {
  const text = "import { a } from './a';\nimport type { B } from '../b';\nexport * from './c';\nconst d = await import('./d');\nimport './e';\n";
  assert.deepEqual(
    localImports('src/x/f.ts', text).map((p) => p.replace(/\.ts$/, '')),
    ['src/x/a', 'src/b', 'src/x/c', 'src/x/d', 'src/x/e'],
  );
  const planted = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ]);
  assert.deepEqual(circles(planted), [['a', 'b', 'c', 'a']]);
});

test('src/ has no import circle', () => {
  const graph = new Map(sources('src').map((f) => [f, localImports(f)]));
  assert.ok(graph.size > 50, `only ${graph.size} files found under src/`);
  const found = circles(graph).map((c) => c.map((f) => relative('src', f)).join(' → '));
  assert.deepEqual(found, [], `import circles in src/:\n${found.join('\n')}`);
});

test('tools/, bench/ and e2e/ import only downward, and src/ and demo/ import none of them', () => {
  // A folder may import from its own rank or below: shared helpers live in tools/lib.
  // A unit test beside its source belongs to the test layer, like e2e/.
  const rank: Record<string, number> = { src: 0, demo: 0, tools: 1, bench: 2, e2e: 3 };
  const bad: string[] = [];
  for (const top of Object.keys(rank)) {
    for (const file of sources(top)) {
      const from = file.endsWith('.test.ts') ? 'e2e' : top;
      for (const target of localImports(file)) {
        const to = target.split('/')[0]!;
        if (!(to in rank) || to === top) continue;
        const upward = rank[to]! > rank[from]! || (rank[from] === 0 && to !== 'src');
        if (upward) bad.push(`${file} → ${target}`);
      }
    }
  }
  assert.deepEqual(bad, [], `upward imports:\n${bad.join('\n')}`);
});
