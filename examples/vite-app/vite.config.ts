import { defineConfig } from 'vite';

export default defineConfig({
  // `vite` (dev) pre-bundles dependencies into node_modules/.vite, away from
  // the worker and .wasm files that wildtta names beside its module; leave it
  // out so they are found. `vite build` needs nothing.
  optimizeDeps: { exclude: ['wildtta'] },
});
