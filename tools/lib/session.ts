// One Vite dev server and one headless Chromium, started on first use; shared by
// the browser tests (e2e/support/browser.ts adds the test harness and shuts the
// session down after each test file), the benchmark runners and the tools that
// drive the demo (which call shutdown() themselves).
//
//   import { withPage, shutdown } from '../tools/lib/session';
//   await withPage(async ({ page }) => { ... }, { path: 'bench/wild.html' });
//   await shutdown();
//
// Chromium: $CHROMIUM_PATH, else /usr/bin/chromium, else Playwright's own build.
// Flags per /work/shared/BROWSER.md: WebGPU and WebGL2 on SwiftShader (software
// Vulkan), no sandbox, no network chatter. Pages are served from
// http://127.0.0.1 (a secure context, which WebGPU requires).
//
// Environment: WILDTTA_E2E_VERBOSE=1 echoes the page's console;
// WILDTTA_PUBLIC_DIR serves another folder as Vite's publicDir (to try the
// shipped-model test against a model that is not in public/ yet).
import { existsSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContextOptions, type ConsoleMessage, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Chromium switches verified on the GPU-less build machines (BROWSER.md). */
export const CHROMIUM_ARGS: readonly string[] = [
  // WebGPU through SwiftShader's Vulkan.
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  // WebGL2 (and WebGPU) on SwiftShader are refused without it.
  '--enable-unsafe-swiftshader',
  // tfjs's CI adds this after "device lost" errors on SwiftShader WebGPU.
  '--disable-vulkan-fallback-to-gl-for-testing',
  // Running as root.
  '--no-sandbox',
  // No network here: stop Chromium from retrying its background requests.
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The browser binary: $CHROMIUM_PATH, /usr/bin/chromium, or undefined (Playwright's own). */
export function chromiumExecutable(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROMIUM_PATH=${fromEnv} does not exist`);
    return fromEnv;
  }
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createNetServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

interface Session {
  server: ViteDevServer;
  cacheDir: string;
  browser: Browser;
  baseUrl: string;
  /** Console errors and uncaught page errors of every page opened so far. */
  errors: string[];
}

let session: Promise<Session> | undefined;
let closed = false;
let extraArgs: readonly string[] = [];

/**
 * Extra Chromium switches for this process's browser (e.g. a fake camera),
 * on top of CHROMIUM_ARGS. A browser's switches are fixed at launch, so call
 * this at the top of a test file, before any page opens.
 */
export function setExtraChromiumArgs(args: readonly string[]): void {
  if (session !== undefined && args.join('\n') !== extraArgs.join('\n')) {
    throw new Error('setExtraChromiumArgs: the browser is already running with other switches');
  }
  extraArgs = [...args];
}

async function startSession(): Promise<Session> {
  const port = await freePort();
  const publicDir = process.env.WILDTTA_PUBLIC_DIR ? resolve(process.env.WILDTTA_PUBLIC_DIR) : undefined;
  // Our own dependency cache: Vite processes sharing node_modules/.vite (the demo, another
  // test run) rewrite it under each other, and a rewrite reloads our page mid-test.
  const cacheDir = resolve(REPO_ROOT, 'node_modules', `.vite-e2e-${process.pid}`);
  const server = await createServer({
    configFile: resolve(REPO_ROOT, 'vite.config.ts'),
    root: REPO_ROOT,
    cacheDir,
    logLevel: process.env.WILDTTA_E2E_VERBOSE ? 'info' : 'warn',
    clearScreen: false,
    ...(publicDir === undefined ? {} : { publicDir }),
    server: {
      host: '127.0.0.1',
      port,
      strictPort: true,
      // Nothing changes under a test: no file watcher. (The HMR socket stays: Vite's client
      // logs console errors when it cannot connect.)
      watch: null,
    },
    // Scan every page tests may open up front, so a late dependency discovery cannot reload a page mid-test.
    optimizeDeps: { entries: ['e2e/**/*.html', 'demo/**/*.html', 'bench/**/*.html'] },
  });
  let browser: Browser | undefined;
  try {
    await server.listen();
    const executablePath = chromiumExecutable();
    browser = await chromium.launch({
      ...(executablePath === undefined ? {} : { executablePath }),
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
    });
  } catch (e) {
    await server.close();
    rmSync(cacheDir, { recursive: true, force: true });
    throw e;
  }
  return { server, cacheDir, browser, baseUrl: `http://127.0.0.1:${port}`, errors: [] };
}

function getSession(): Promise<Session> {
  if (closed) throw new Error('the browser session of this test file is already shut down');
  session ??= startSession();
  return session;
}

/** Closes the browser and the dev server (safe to call twice). */
export async function shutdown(): Promise<void> {
  closed = true;
  const s = session;
  session = undefined;
  if (s === undefined) return;
  let started: Session;
  try {
    started = await s;
  } catch {
    return; // it never started, nothing to close
  }
  await started.browser.close().catch(() => undefined);
  await started.server.close();
  rmSync(started.cacheDir, { recursive: true, force: true });
}

/** An open page, with what it logged. */
export interface SessionPage {
  page: Page;
  /** This page's console errors and uncaught exceptions, in order. */
  errors: string[];
  /** Every console message of this page, "type: text". */
  console: string[];
}

export interface WithPageOptions {
  /** Page to open, relative to the server root. */
  path: string;
  /** Options of the page's browser context (viewport, permissions...). */
  context?: BrowserContextOptions;
  /** A script (source text) run in the page before any of its own scripts. */
  initScript?: string;
  /** A JavaScript expression, as source text, that must turn true before `fn` runs (the page's hook is installed). */
  readyWhen?: string;
  /**
   * Count a second load of the page as a page error. For pages that never
   * navigate themselves: a reload there means Vite re-optimised a dependency
   * mid-run, and whatever the page held is gone.
   */
  singleLoad?: boolean;
}

function describeConsole(msg: ConsoleMessage): string {
  const loc = msg.location();
  const where = loc.url ? ` (${loc.url}${loc.lineNumber ? `:${loc.lineNumber}` : ''})` : '';
  return `${msg.text()}${where}`;
}

/**
 * Opens `opts.path` in a fresh page (own browser context), waits for
 * `opts.readyWhen` if given, runs `fn`, and closes the page. Console errors
 * and page errors are collected on the page and for the whole process (see
 * assertNoPageErrors).
 */
export async function withPage<T>(fn: (p: SessionPage) => Promise<T>, opts: WithPageOptions): Promise<T> {
  const s = await getSession();
  const context = await s.browser.newContext(opts.context ?? {});
  if (opts.initScript !== undefined) await context.addInitScript({ content: opts.initScript });
  const page = await context.newPage();
  const errors: string[] = [];
  const consoleLines: string[] = [];
  const verbose = Boolean(process.env.WILDTTA_E2E_VERBOSE);
  let loads = 0;
  page.on('console', (msg) => {
    const line = `${msg.type()}: ${describeConsole(msg)}`;
    consoleLines.push(line);
    if (verbose) console.log(`[page] ${line}`);
    // Chromium reports a WebGPU shader that does not compile, or a pipeline layout that does not fit its
    // bindings, only as a console warning, and every later result of that command buffer is silently wrong.
    if (msg.type() === 'error' || (msg.type() === 'warning' && WEBGPU_VALIDATION.test(msg.text()))) {
      errors.push(`console.${msg.type()}: ${describeConsole(msg)}`);
      s.errors.push(errors[errors.length - 1]!);
    }
  });
  page.on('pageerror', (err) => {
    const line = `uncaught: ${err.stack ?? err.message}`;
    if (verbose) console.log(`[page] ${line}`);
    errors.push(line);
    s.errors.push(line);
  });
  page.on('framenavigated', (frame) => {
    // Only the first load is expected; a reload (e.g. Vite re-optimizing dependencies) breaks a test.
    if (opts.singleLoad === true && frame === page.mainFrame() && loads++ > 0) {
      const line = `the page navigated again, to ${frame.url()}`;
      errors.push(line);
      s.errors.push(line);
    }
  });
  page.on('crash', () => {
    errors.push('the page crashed');
    s.errors.push('the page crashed');
  });
  try {
    await page.goto(`${s.baseUrl}/${opts.path.replace(/^\//, '')}`);
    if (opts.readyWhen !== undefined) {
      await page.waitForFunction(opts.readyWhen, undefined, { timeout: 60_000 }).catch((e: Error) => {
        throw new Error(`${opts.path} did not get ready (${opts.readyWhen}): ${e.message}${errors.length ? `\npage errors:\n${errors.join('\n')}` : ''}`);
      });
    }
    return await fn({ page, errors, console: consoleLines });
  } finally {
    await context.close().catch(() => undefined);
  }
}

/** Every console error and uncaught exception seen by any page of this process so far. */
export async function pageErrors(): Promise<string[]> {
  if (session === undefined) return [];
  return [...(await session).errors];
}

/** WebGPU validation failures that Chromium logs as warnings. */
const WEBGPU_VALIDATION = /Error while parsing WGSL|Invalid ShaderModule|not present in the bind group layout/;

/** Throws listing the page errors, if any page of this process logged one. */
export async function assertNoPageErrors(): Promise<void> {
  const errors = await pageErrors();
  if (errors.length > 0) throw new Error(`${errors.length} console/page error(s):\n${errors.join('\n')}`);
}

/** The dev server's base URL (starting the session if needed), e.g. for page.goto of other pages. */
export async function baseUrl(): Promise<string> {
  return (await getSession()).baseUrl;
}
