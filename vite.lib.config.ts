// The library build (npm run build:lib), separate from the demo's vite.config.ts:
//   default mode  → dist/wildtta.js (ES module) and dist/wildtta.iife.js (global WildTTA)
//   --mode worker → dist/wildtta.worker.js (the engine for `worker: true`, a classic worker script)
// tfjs and its four backends are bundled in; the tfjs WASM binaries are copied
// beside the bundles, where the library looks for them (src/api/assets.ts).
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const root = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(root, process.env.WILDTTA_LIB_OUT ?? 'dist');
const WASM = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

const copyWasm: Plugin = {
  name: 'wildtta-copy-wasm',
  apply: 'build',
  closeBundle() {
    mkdirSync(outDir, { recursive: true });
    for (const f of WASM) copyFileSync(join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist', f), join(outDir, f));
  },
};

export default defineConfig(({ mode }) => {
  const worker = mode === 'worker';
  return {
    root,
    // The library ships no public folder: models are the page's own.
    publicDir: false,
    plugins: worker ? [] : [copyWasm],
    define: { 'process.env.NODE_ENV': JSON.stringify('production') },
    build: {
      outDir,
      // dist/app (the demo) and the other build's files live there too.
      emptyOutDir: false,
      target: 'es2022',
      chunkSizeWarningLimit: 4000,
      sourcemap: false,
      rollupOptions: {
        // src/api/assets.ts reads import.meta.url only where document.currentScript is unset, which the IIFE never is.
        onwarn(warning, warn) {
          if (warning.code !== 'EMPTY_IMPORT_META') warn(warning);
        },
      },
      lib: worker
        ? { entry: resolve(root, 'src/api/worker.ts'), name: 'WildTTAWorker', formats: ['iife'], fileName: () => 'wildtta.worker.js' }
        : { entry: resolve(root, 'src/index.ts'), name: 'WildTTA', formats: ['es', 'iife'], fileName: (format) => (format === 'es' ? 'wildtta.js' : 'wildtta.iife.js') },
    },
  };
});
