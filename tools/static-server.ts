// A small static file server for the library examples (npm run examples) and
// their browser tests: the repository root as it is, no bundler, no dev
// client injected, so a page gets exactly the files a user's server would
// send. Optionally sends a Content-Security-Policy with every HTML page; the
// page's inline scripts are allowed by their SHA-256 hashes (never
// 'unsafe-inline' or 'unsafe-eval').
//
//   npm run examples            → http://127.0.0.1:8080/examples/ (first lays out
//                                 the guide's script-tag page in examples/script-tag/)
//   npm run examples -- --csp   the same under a strict CSP
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { assembleScriptTagPage } from './lib/doc-blocks';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What a page of ours needs, and nothing looser: WebAssembly compiles under 'wasm-unsafe-eval', which is not 'unsafe-eval'. */
export const STRICT_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval' %HASHES%",
  "worker-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream:",
  "style-src 'self' 'unsafe-inline'",
  "object-src 'none'",
  "base-uri 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ts': 'text/plain; charset=utf-8',
};

export interface StaticServerOptions {
  root?: string;
  port?: number;
  /** A CSP for HTML pages; %HASHES% becomes the hashes of the page's inline scripts. */
  csp?: string;
}

export interface StaticServer {
  server: Server;
  baseUrl: string;
  /** Requests served, by path, for tests that check what a page loaded. */
  requests: string[];
  close(): Promise<void>;
}

function inlineScriptHashes(html: string): string {
  const hashes: string[] = [];
  for (const m of html.matchAll(/<script(?![^>]*\ssrc=)[^>]*>([\s\S]*?)<\/script>/gi)) {
    hashes.push(`'sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}'`);
  }
  return hashes.join(' ');
}

export function startStaticServer(options: StaticServerOptions = {}): Promise<StaticServer> {
  const root = resolve(options.root ?? REPO_ROOT);
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    requests.push(path);
    // Browsers ask for it on every page; a 404 would be a console error in every test.
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (path === '/') {
      res.writeHead(302, { Location: '/examples/' }).end();
      return;
    }
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end('outside the served folder');
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${path}`);
      return;
    }
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    const headers: Record<string, string | number> = { 'Content-Type': type, 'Cache-Control': 'no-cache' };
    if (type.startsWith('text/html')) {
      const html = readFileSync(file, 'utf8');
      if (options.csp !== undefined) headers['Content-Security-Policy'] = options.csp.replace('%HASHES%', inlineScriptHashes(html));
      res.writeHead(200, headers).end(html);
      return;
    }
    headers['Content-Length'] = statSync(file).size;
    res.writeHead(200, headers);
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.on('error', fail);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      ok({
        server,
        baseUrl: `http://127.0.0.1:${port}`,
        requests,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, csp: { type: 'boolean', default: false } } });
  if (!existsSync(join(REPO_ROOT, 'dist', 'wildtta.iife.js'))) console.warn('dist/wildtta.iife.js is missing: run npm run build:lib first');
  assembleScriptTagPage();
  const s = await startStaticServer({ port: Number(values.port), ...(values.csp ? { csp: STRICT_CSP } : {}) });
  console.log(`serving ${REPO_ROOT} at ${s.baseUrl}/examples/${values.csp ? ' (strict CSP)' : ''}`);
}
