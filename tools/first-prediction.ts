// `npm run demo:first`: what a newcomer waits for. Opens the demo (as
// `npm run demo` serves it) in headless Chromium once per backend, each in a
// fresh browser context (no HTTP cache), and prints the time from navigation
// to the first prediction on the page, then the steps per second over the
// next few seconds, with the machine and the browser. The first visit also
// warms the dev server, so it is printed on its own line and not counted.
//
//   npm run demo:first [-- --backends auto,wasm,webgl,webgpu] [--seconds 5]
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { chromiumExecutable, shutdown, withPage } from './lib/session';
import { demoState, waitForDemo } from './lib/demo';

const { values } = parseArgs({ options: { backends: { type: 'string', default: 'auto,wasm,webgl,webgpu' }, seconds: { type: 'string', default: '5' } } });
const backends = values.backends.split(',');
const seconds = Number(values.seconds);

interface Row {
  backend: string;
  ran: string;
  firstMs: number;
  stepsPerSecond: number;
}

async function visit(backend: string): Promise<Row> {
  return withPage(
    async ({ page }) => {
      const t0 = Date.now();
      await page.goto(page.url());
      const first = await waitForDemo(page, 'the first prediction', (s) => s.steps >= 1, 300_000);
      const firstMs = Date.now() - t0;
      const t1 = Date.now();
      await page.waitForTimeout(seconds * 1000);
      const later = await demoState(page);
      return { backend, ran: later.backend ?? first.backend ?? '?', firstMs, stepsPerSecond: ((later.steps - first.steps) * 1000) / (Date.now() - t1) };
    },
    // The labeled stream, so no camera is needed; the page is opened again inside to time from navigation.
    { path: `demo/?backend=${backend}&input=stream&fps=max`, context: { viewport: { width: 1280, height: 720 } } },
  );
}

try {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const browser = execFileSync(chromiumExecutable() ?? 'chromium', ['--version'], { encoding: 'utf8' }).trim();
  console.log(`machine: ${cpu}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; load ${loadavg()[0]!.toFixed(2)}; ${browser} headless`);
  const warm = await visit(backends[0]!);
  console.log(`first visit (starts the dev server's bundles; not counted): ${(warm.firstMs / 1000).toFixed(1)} s on ${warm.ran}`);
  console.log('| backend asked | ran on | first prediction | steps/s after it |');
  console.log('|---|---|---:|---:|');
  for (const b of backends) {
    const r = await visit(b);
    console.log(`| ${r.backend} | ${r.ran} | ${(r.firstMs / 1000).toFixed(1)} s | ${r.stepsPerSecond.toFixed(1)} |`);
  }
} finally {
  await shutdown();
}
