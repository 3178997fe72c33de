// Browser-test support for the library build (dist/wildtta*.js) and its
// examples: builds the library when its sources are newer than the bundles
// (tools/lib/lib-build.ts), serves the repository with the plain static
// server of `npm run examples` (under a strict CSP unless told otherwise),
// and opens pages in headless Chromium with the shared flags. Every page records CSP violations in
// window.__cspViolations before any of its own scripts run.
import { after } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumExecutable } from '../../tools/lib/session';
import { ensureLibBuilt } from '../../tools/lib/lib-build';
import { startStaticServer, STRICT_CSP, type StaticServer } from '../../tools/static-server';

export interface LibPage {
  page: Page;
  context: BrowserContext;
  /** Console errors and uncaught exceptions. */
  errors: string[];
  console: string[];
  cspViolations(): Promise<string[]>;
}

interface LibSession {
  server: StaticServer;
  browser: Browser;
}

let session: Promise<LibSession> | undefined;
let settings: { csp: boolean; args: readonly string[]; root?: string } = { csp: true, args: [] };

/** Call before the first page: extra Chromium switches (a fake camera), whether pages get the strict CSP (default yes), the served folder (default the repository). */
export function configureLibSession(s: { csp?: boolean; args?: readonly string[]; root?: string }): void {
  if (session !== undefined) throw new Error('configureLibSession: the session is already running');
  settings = { csp: s.csp ?? true, args: s.args ?? [], root: s.root };
}

async function start(): Promise<LibSession> {
  ensureLibBuilt();
  const server = await startStaticServer({ csp: settings.csp ? STRICT_CSP : undefined, root: settings.root });
  try {
    const executablePath = chromiumExecutable();
    const browser = await chromium.launch({
      ...(executablePath === undefined ? {} : { executablePath }),
      headless: true,
      args: [...CHROMIUM_ARGS, ...settings.args],
    });
    return { server, browser };
  } catch (e) {
    await server.close();
    throw e;
  }
}

after(async () => {
  const s = session;
  session = undefined;
  if (s === undefined) return;
  const { server, browser } = await s;
  await browser.close().catch(() => undefined);
  await server.close();
});

export async function libServer(): Promise<StaticServer> {
  session ??= start();
  return (await session).server;
}

const RECORD_CSP = `window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber));`;

/** Opens `path` in a fresh context (its own IndexedDB unless `context` is passed back in) and runs fn. */
export async function withLibPage<T>(path: string, fn: (p: LibPage) => Promise<T>, opts: { context?: BrowserContext } = {}): Promise<T> {
  session ??= start();
  const { server, browser } = await session;
  const context = opts.context ?? (await browser.newContext());
  await context.addInitScript({ content: RECORD_CSP });
  const page = await context.newPage();
  const errors: string[] = [];
  const lines: string[] = [];
  page.on('console', (m) => {
    lines.push(`${m.type()}: ${m.text()}`);
    if (process.env.WILDTTA_E2E_VERBOSE) console.log(`[page] ${m.type()}: ${m.text()}`);
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.stack ?? e.message}`));
  // Workers' errors and CSP reports from workers do not reach the page's console by default.
  page.on('worker', (w) => w.on('console', (m) => m.type() === 'error' && errors.push(`worker console.error: ${m.text()}`)));
  try {
    await page.goto(`${server.baseUrl}/${path.replace(/^\//, '')}`);
    return await fn({ page, context, errors, console: lines, cspViolations: () => page.evaluate('window.__cspViolations') as Promise<string[]> });
  } finally {
    if (opts.context === undefined) await context.close().catch(() => undefined);
    else await page.close().catch(() => undefined);
  }
}

/**
 * Polls `expr` (a string, evaluated through the DevTools protocol) until it is
 * truthy. Playwright's waitForFunction compiles its predicate with eval in the
 * page, which the strict CSP under test refuses.
 */
export async function waitForTrue(page: Page, expr: string, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await page.evaluate(expr).catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * An expression for page.evaluate that loads dist/wildtta.iife.js into the page
 * (once) and gives its global. The ES module imports tfjs as a bare specifier,
 * which only a bundler resolves; e2e/consumer-app.e2e.ts tests it in a Vite app.
 */
export const LOAD_WILDTTA = `(window.WildTTA ? Promise.resolve(window.WildTTA) : new Promise((ok, fail) => {
  const s = document.createElement('script'); s.src = '/dist/wildtta.iife.js';
  s.onload = () => ok(window.WildTTA); s.onerror = () => fail(new Error('could not load /dist/wildtta.iife.js'));
  document.head.append(s);
}))`;

export async function newContext(): Promise<BrowserContext> {
  session ??= start();
  return (await session).browser.newContext();
}
