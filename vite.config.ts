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

export default defineConfig({
  // The demo page is the app; e2e harness pages are served from the same root in tests.
  root: '.',
  plugins: [rootToDemo],
  publicDir: 'public',
  server: { host: '127.0.0.1', port: 5173, strictPort: false },
  build: {
    outDir: 'dist/app',
    // tfjs with its backends is ~1.3 MB minified by itself; splitting it would not make the page load faster.
    chunkSizeWarningLimit: 2000,
    rollupOptions: { input: { demo: 'demo/index.html' } },
  },
});
