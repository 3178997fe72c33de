// A stand-in for the Hugging Face hub on 127.0.0.1, for the browser tests of
// hub ids and the download cache (no network here): it answers the hub's URL
// layout, /<org>/<name>/resolve/<revision>/<file>, from model folders on
// disk, cross-origin as huggingface.co is to a page (CORS, with ETag exposed
// and If-None-Match allowed), with strong ETags and 304s for a matching
// If-None-Match, and it logs every request so a test can count them.
import { readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

export interface HubRequest {
  method: string;
  /** The decoded path: /org/name/resolve/<revision>/<file>. */
  path: string;
  status: number;
  /** The If-None-Match the request carried, or null. */
  ifNoneMatch: string | null;
}

export interface HubServer {
  baseUrl: string;
  log: HubRequest[];
  /** The GETs of `file` answered with its body (status 200). */
  downloads(file: string): number;
  /** true: every request's connection is dropped, as with no network. */
  offline: boolean;
  close(): Promise<void>;
}

/** `repos`: "org/name" → a folder; `hide` lists "org/name/file" the hub must answer 404 for. */
export function startHubServer(repos: Record<string, string>, hide: string[] = []): Promise<HubServer> {
  const log: HubRequest[] = [];
  const state = { offline: false };
  const cors = {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Headers': 'If-None-Match, If-Modified-Since',
    'Access-Control-Expose-Headers': 'ETag, Content-Length',
  };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const ifNoneMatch = req.headers['if-none-match'] ?? null;
    const answer = (status: number, headers: Record<string, string | number> = {}, body?: Buffer | string) => {
      log.push({ method: req.method ?? '', path, status, ifNoneMatch: ifNoneMatch as string | null });
      res.writeHead(status, { ...cors, ...headers }).end(body);
    };
    if (state.offline) {
      log.push({ method: req.method ?? '', path, status: 0, ifNoneMatch: ifNoneMatch as string | null });
      req.socket.destroy();
      return;
    }
    if (req.method === 'OPTIONS') return answer(204, { 'Access-Control-Allow-Methods': 'GET, HEAD' });
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/([^/]+)$/.exec(path);
    const folder = m && repos[m[1]!];
    const file = m && folder ? join(folder, m[3]!) : undefined;
    if (file === undefined || !existsSync(file) || hide.includes(`${m![1]}/${m![3]}`)) return answer(404, { 'Content-Type': 'text/plain' }, 'Entry not found');
    const body = readFileSync(file);
    const etag = `"${body.byteLength}-${m![2]}"`;
    // no-store: each request reaches this server, so the counts are the page's, not Chromium's HTTP cache's.
    const headers = { ETag: etag, 'Cache-Control': 'no-store' };
    if (ifNoneMatch === etag) return answer(304, headers);
    return answer(200, { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': body.byteLength }, req.method === 'HEAD' ? undefined : body);
  });
  return new Promise((ok, fail) => {
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      ok({
        baseUrl: `http://127.0.0.1:${port}`,
        log,
        downloads: (f) => log.filter((r) => r.method === 'GET' && r.status === 200 && r.path.endsWith(`/${f}`)).length,
        get offline() {
          return state.offline;
        },
        set offline(v: boolean) {
          state.offline = v;
        },
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
