// The library build (dist/wildtta*.js) on demand, for the browser tests of the
// bundles and for bench:step's rows that time them: rebuilt only when a source
// is newer than a bundle, since the build takes a minute on this machine.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './session';

export const LIB_FILES = ['wildtta.js', 'wildtta.iife.js', 'wildtta.worker.js', 'tfjs-backend-wasm-simd.wasm', 'types/index.d.ts'];

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (/\.ts$/.test(e.name) && !/\.test\.ts$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Runs the library build unless every bundle is newer than every source (WILDTTA_LIB_PREBUILT=1 skips the check). */
export function ensureLibBuilt(): void {
  if (process.env.WILDTTA_LIB_PREBUILT) return;
  const dist = join(REPO_ROOT, 'dist');
  const sources = Math.max(newestSource(join(REPO_ROOT, 'src')), statSync(join(REPO_ROOT, 'vite.lib.config.ts')).mtimeMs);
  const fresh = LIB_FILES.every((f) => existsSync(join(dist, f)) && statSync(join(dist, f)).mtimeMs > sources);
  if (fresh) return;
  const r = spawnSync('npm', ['run', 'build:lib'], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  if (r.status !== 0) throw new Error(`npm run build:lib failed:\n${r.stdout}\n${r.stderr}`);
}
