// The library build's file sizes as a Markdown table: raw bytes and gzip -9,
// as a server would send them. docs/guide.md prints it ("What the package
// holds"), kept current by npm run docs:figures (tools/docs-figures.ts).
//
//   npm run build:lib && npm run lib:sizes
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const DIST = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'dist');

const FILES: Array<[string, string]> = [
  ['wildtta.iife.js', 'script-tag bundle (global `WildTTA`), tfjs-core + 4 backends inside'],
  ['wildtta.js', 'ES module; tfjs comes from your app (peer dependencies)'],
  ['wildtta.worker.js', 'engine for `worker: true`, loaded only then'],
  ['tfjs-backend-wasm-simd.wasm', 'WASM backend, fetched only when it runs'],
  ['tfjs-backend-wasm.wasm', 'WASM backend without SIMD (old browsers)'],
  ['tfjs-backend-wasm-threaded-simd.wasm', 'WASM with threads (cross-origin-isolated pages)'],
];

const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

/** The table for the files in `dist` (throws naming a missing one). */
export function libSizesTable(dist = DIST): string {
  const rows = ['| file | size | gzip -9 | what |', '|---|---:|---:|---|'];
  for (const [f, what] of FILES) {
    const p = join(dist, f);
    if (!existsSync(p)) throw new Error(`${p} is missing: run npm run build:lib`);
    const bytes = readFileSync(p);
    rows.push(`| \`${f}\` | ${kb(bytes.byteLength)} | ${kb(gzipSync(bytes, { level: 9 }).byteLength)} | ${what} |`);
  }
  return rows.join('\n');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  try {
    console.log(libSizesTable());
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
}
