import { defineConfig } from 'vite';

export default defineConfig({
  // The demo page is the app; e2e harness pages are served from the same root in tests.
  root: '.',
  publicDir: 'public',
  server: { host: '127.0.0.1', port: 5173, strictPort: false },
  optimizeDeps: {
    // tfjs's wasm backend locates its .wasm files itself; pre-bundling would break the ?url imports.
    exclude: ['@tensorflow/tfjs-backend-wasm'],
  },
  build: {
    outDir: 'dist/app',
    rollupOptions: { input: { demo: 'demo/index.html' } },
  },
});
