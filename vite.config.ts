import { defineConfig, type Plugin } from 'vite';

/** `npm run demo` prints the server root; send visitors of / to the demo page. */
const rootToDemo: Plugin = {
  name: 'wildtta-root-to-demo',
  configureServer(server) {
    server.middlewares.use((req, res, next) => {
      if (req.url === '/' || req.url === '/index.html') {
        res.statusCode = 302;
        res.setHeader('Location', '/demo/');
        res.end();
        return;
      }
      next();
    });
  },
};

/**
 * Cross-origin isolation (COOP/COEP), so that SharedArrayBuffer exists and
 * tfjs-wasm can run its threaded binary: for the demo page, and for any other
 * page asked for with `?isolate` (the bench's 'wasm-threads' row, the wasm
 * threads test), plus the worker scripts such a page starts (a dedicated
 * worker of an isolated page needs the headers on its own script, or it is
 * blocked). The e2e harness and bench pages are otherwise served as before:
 * the bench's plain 'wasm' row is the non-isolated SIMD binary. Nothing the
 * demo loads is a cross-origin no-cors resource: a model URL on another origin
 * is fetched with CORS, which require-corp allows.
 */
const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

function isIsolatedPage(url: string): boolean {
  const u = new URL(url, 'http://localhost');
  return /^\/demo\/?(index\.html)?$/.test(u.pathname) || (u.pathname.endsWith('.html') && u.searchParams.has('isolate'));
}

const crossOriginIsolation: Plugin = {
  name: 'wildtta-cross-origin-isolation',
  configureServer(server) {
    server.middlewares.use((req, res, next) => {
      const referer = req.headers.referer;
      const isolate = isIsolatedPage(req.url ?? '/') || (req.headers['sec-fetch-dest'] === 'worker' && referer !== undefined && isIsolatedPage(referer));
      if (isolate) for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
      next();
    });
  },
};

export default defineConfig({
  // The demo page is the app; e2e harness pages are served from the same root in tests.
  root: '.',
  plugins: [rootToDemo, crossOriginIsolation],
  publicDir: 'public',
  optimizeDeps: {
    // The scan starts from these, not only from build's input (the demo page): the page's main thread never
    // loads tfjs, and the scan does not follow `new Worker(new URL(...))`, so the engine worker's
    // dependencies would be found once the page runs, re-bundled, and the page reloaded mid-load.
    entries: ['demo/index.html', 'src/runtime/engine-worker.ts'],
    // Imported only by the engine's workers (src/index.ts says why).
    include: ['@tensorflow/tfjs-core/dist/register_all_gradients'],
  },
  server: { host: '127.0.0.1', port: 5173, strictPort: false },
  build: {
    outDir: 'dist/app',
    // tfjs with its backends is ~1.3 MB minified by itself; splitting it would not make the page load faster.
    chunkSizeWarningLimit: 2000,
    rollupOptions: { input: { demo: 'demo/index.html' } },
  },
});
