// Prints the library build's file sizes as the Markdown table in README
// ("Use it in your page"): raw bytes and gzip -9, as a server would send them.
//
//   npm run build:lib && npm run lib:sizes
import { readFileSync, existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const dist = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'dist');
const FILES: Array<[string, string]> = [
  ['wildtta.iife.js', 'script-tag bundle (global `WildTTA`), tfjs-core + 4 backends inside'],
  ['wildtta.js', 'ES module; tfjs comes from your app (peer dependencies)'],
  ['wildtta.worker.js', 'engine for `worker: true`, loaded only then'],
  ['tfjs-backend-wasm-simd.wasm', 'WASM backend, fetched only when it runs'],
  ['tfjs-backend-wasm.wasm', 'WASM backend without SIMD (old browsers)'],
  ['tfjs-backend-wasm-threaded-simd.wasm', 'WASM with threads (cross-origin-isolated pages)'],
];

const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
console.log('| file | size | gzip -9 | what |\n|---|---:|---:|---|');
for (const [f, what] of FILES) {
  const p = join(dist, f);
  if (!existsSync(p)) {
    console.error(`${p} is missing: run npm run build:lib`);
    process.exit(1);
  }
  const bytes = readFileSync(p);
  console.log(`| \`${f}\` | ${kb(bytes.byteLength)} | ${kb(gzipSync(bytes, { level: 9 }).byteLength)} | ${what} |`);
}
