import { defineConfig } from 'vite';

export default defineConfig({
  optimizeDeps: {
    // `vite` (dev) pre-bundles dependencies into node_modules/.vite, away from
    // the worker and .wasm files that wildtta names beside its module: leave
    // it out so they are found. `vite build` needs none of this.
    exclude: ['wildtta'],
    // What wildtta imports, bundled up front (found later, they would make
    // Vite re-bundle and reload the page once).
    include: [
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-core/dist/register_all_gradients',
      '@tensorflow/tfjs-backend-cpu',
      '@tensorflow/tfjs-backend-webgl',
      '@tensorflow/tfjs-backend-webgpu',
      '@tensorflow/tfjs-backend-wasm',
    ],
  },
});
