// `npm run demo` on a first visit: a dev server with vite.config.ts as it is
// (none of the shared session's overrides) and an empty dependency cache, as
// after `rm -rf node_modules/.vite`. The page must load once and run: a
// dependency Vite finds only after the page started (the engine worker's
// tfjs) makes it re-bundle and reload the page ("optimized dependencies
// changed"), which throws away the model it was loading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { createLogger, createServer } from 'vite';
import { CHROMIUM_ARGS, REPO_ROOT, chromiumExecutable } from '../tools/lib/session';
import { waitForDemo } from '../tools/lib/demo';

test('first visit with an empty dependency cache: the demo loads once (no "optimized dependencies changed" reload) and runs', async (t) => {
  const cacheDir = resolve(REPO_ROOT, 'node_modules', `.vite-cold-${process.pid}`);
  rmSync(cacheDir, { recursive: true, force: true });
  // Vite says what it re-bundled only in its log, at the info level.
  const logged: string[] = [];
  const logger = createLogger('info');
  for (const level of ['info', 'warn', 'error'] as const) logger[level] = (msg) => void logged.push(`${level}: ${msg}`);
  const server = await createServer({
    configFile: resolve(REPO_ROOT, 'vite.config.ts'),
    root: REPO_ROOT,
    cacheDir,
    customLogger: logger,
    clearScreen: false,
    server: { host: '127.0.0.1', port: 0, watch: null },
  });
  const executablePath = chromiumExecutable();
  const browser = await chromium.launch({ ...(executablePath === undefined ? {} : { executablePath }), headless: true, args: [...CHROMIUM_ARGS] });
  try {
    await server.listen();
    const url = server.resolvedUrls?.local[0];
    assert.ok(url, 'the dev server has no local URL');
    const page = await browser.newPage();
    const loads: string[] = [];
    page.on('load', () => loads.push(page.url()));
    const consoleLines: string[] = [];
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    const t0 = Date.now();
    await page.goto(`${url}demo/?input=stream&backend=wasm&fps=max`);
    await waitForDemo(page, 'the first 20 frames', (s) => s.frames >= 20, 180_000);
    // Vite re-bundles a late discovery after a quiet spell; give it time to show itself.
    await page.waitForTimeout(3000);
    t.diagnostic(`20 frames ${((Date.now() - t0) / 1000).toFixed(1)} s after the first request; page loads: ${loads.length}`);
    const reloads = logged.filter((l) => /optimized dependencies changed|new dependencies optimized/.test(l));
    assert.deepEqual(reloads, [], 'Vite re-bundled dependencies after the page had started');
    assert.equal(loads.length, 1, `the page loaded ${loads.length} times:\n${consoleLines.join('\n')}`);
  } finally {
    await browser.close();
    await server.close();
    rmSync(cacheDir, { recursive: true, force: true });
  }
});
