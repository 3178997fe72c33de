// The library build (npm run build:lib), separate from the demo's vite.config.ts:
//   default mode  → dist/wildtta.js, the ES module. @tensorflow/* stay imports
//                   (peer dependencies: the app's own tfjs is the one that runs),
//                   and the worker and WASM files are named as
//                   new URL('./file', import.meta.url) for the app's bundler.
//   --mode iife   → dist/wildtta.iife.js (global WildTTA), self-contained for a script tag.
//   --mode worker → dist/wildtta.worker.js (the engine for `worker: true`, a classic
//                   worker script), self-contained, used by both builds.
// The tfjs WASM binaries are copied beside the bundles.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const root = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(root, process.env.WILDTTA_LIB_OUT ?? 'dist');
const WORKER = 'wildtta.worker.js';
const WASM = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

/** src/api/assets.ts's __WILDTTA_ES_ASSETS__ in the ES build: a marker, replaced once the chunk is rendered. */
const ES_ASSETS_MARKER = '@@wildtta-es-assets@@';

/**
 * Writes the ES build's asset URLs as literal `new URL('./file', import.meta.url)`
 * expressions. Done on the rendered chunk, not in the sources, so that this
 * build's own asset handling (which would inline the files as data: URLs in
 * library mode) never sees them; the app's bundler does.
 */
const esAssetUrls: Plugin = {
  name: 'wildtta-es-asset-urls',
  apply: 'build',
  renderChunk(code) {
    const marker = new RegExp(`(["'])${ES_ASSETS_MARKER}\\1`, 'g');
    const hits = code.match(marker)?.length ?? 0;
    if (hits !== 1) throw new Error(`expected the asset marker once in the ES chunk, found it ${hits} times`);
    const entries = [WORKER, ...WASM].map((f) => `${JSON.stringify(f)}: new URL(${JSON.stringify(`./${f}`)}, import.meta.url).href`);
    return { code: code.replace(marker, `{ ${entries.join(', ')} }`), map: null };
  },
};

const copyWasm: Plugin = {
  name: 'wildtta-copy-wasm',
  apply: 'build',
  closeBundle() {
    mkdirSync(outDir, { recursive: true });
    for (const f of WASM) copyFileSync(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist', f), join(outDir, f));
  },
};

export default defineConfig(({ mode }) => {
  const kind = mode === 'worker' || mode === 'iife' ? mode : 'es';
  const lib =
    kind === 'worker'
      ? { entry: resolve(root, 'src/api/worker.ts'), name: 'WildTTAWorker', formats: ['iife' as const], fileName: () => WORKER }
      : kind === 'iife'
        ? { entry: resolve(root, 'src/index.ts'), name: 'WildTTA', formats: ['iife' as const], fileName: () => 'wildtta.iife.js' }
        : { entry: resolve(root, 'src/index.ts'), formats: ['es' as const], fileName: () => 'wildtta.js' };
  return {
    root,
    // The library ships no public folder: models are the page's own.
    publicDir: false,
    plugins: kind === 'es' ? [copyWasm, esAssetUrls] : [],
    define: {
      'process.env.NODE_ENV': JSON.stringify('production'),
      ...(kind === 'es' ? { __WILDTTA_ES_ASSETS__: JSON.stringify(ES_ASSETS_MARKER) } : {}),
    },
    build: {
      outDir,
      // dist/app (the demo) and the other builds' files live there too.
      emptyOutDir: false,
      target: 'es2022',
      chunkSizeWarningLimit: 4000,
      sourcemap: false,
      rollupOptions: kind === 'es' ? { external: (id: string) => /^@tensorflow\//.test(id) } : {},
      lib,
    },
  };
});
