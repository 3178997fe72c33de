// What the demo page shows must be true (issue 23): legends named after their
// series, one row per run when both runs are the same method, the fallback
// banner and method following the loaded model, the E0 line visible over the
// entropy dots, and load progress until the first prediction. Labeled stream,
// wasm backend. (Segments: demo-segments.e2e.ts; the camera: demo-camera.e2e.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT, assertNoPageErrors, withPage } from './support/browser';
import { demoState, waitForDemo } from '../tools/lib/demo';

const STREAM = 'demo/?backend=wasm&input=stream&fps=max';
const VIEWPORT = { viewport: { width: 1280, height: 800 } };

/** A chart's visible legend entries, in order: label and swatch colour. */
const legend = (page: Page, chart: string) =>
  page.evaluate(`[...document.querySelectorAll('#chart-${chart} .u-legend .u-series')]
    .filter((tr) => getComputedStyle(tr).display !== 'none')
    .map((tr) => tr.querySelector('.u-label').textContent + ' ' + getComputedStyle(tr.querySelector('.u-marker')).borderColor)`) as Promise<string[]>;

const BLUE = 'rgb(37, 99, 235)';
const GRAY = 'rgb(138, 148, 166)';
const LIGHT_GRAY = 'rgb(195, 202, 214)';
const ORANGE = 'rgb(217, 119, 6)';

/** Does `action` (a change that restarts the engine's session), then waits for `n` steps of the new one. */
async function restarted(page: Page, action: () => Promise<void>, n = 10): Promise<void> {
  const before = await demoState(page);
  await action();
  await waitForDemo(page, `${n} steps after the change`, (st) => st.session > before.session && st.state === 'running' && st.steps >= n, 60_000);
  await page.waitForTimeout(300);
}

test('demo legends: after "no adaptation" then SAR, each legend entry still names its own series', () =>
  withPage(
    async ({ page }) => {
      await waitForDemo(page, '10 frames', (s) => s.frames >= 10);
      await restarted(page, () => page.selectOption('#method', 'source').then(() => undefined));
      await restarted(page, () => page.selectOption('#method', 'sar').then(() => undefined));
      assert.deepEqual(await legend(page, 'entropy'), [`no adaptation ${LIGHT_GRAY}`, `SAR ${BLUE}`, `E0 margin ${ORANGE}`]);
      assert.deepEqual(await legend(page, 'acc'), [`SAR ${BLUE}`, `no adaptation ${GRAY}`]);
      await assertNoPageErrors();
    },
    { path: `${STREAM}&compare=1`, context: VIEWPORT },
  ));

test('demo with "no adaptation" side by side with no adaptation: every header, score and legend entry once', () =>
  withPage(
    async ({ page }) => {
      await waitForDemo(page, '20 frames', (s) => s.frames >= 20);
      await page.waitForTimeout(300);
      const visible = (sel: string) =>
        page.evaluate(
          `[...document.querySelectorAll(${JSON.stringify(sel)})].filter((e) => e.offsetParent !== null).map((e) => e.textContent.trim())`,
        ) as Promise<string[]>;
      const heads = await visible('.scores th');
      assert.equal(heads.filter((h) => /no adaptation/i.test(h)).length, 1, `score rows: ${heads.join(' | ')}`);
      assert.equal((await visible('.pred-label')).length, 1, `prediction headers: ${(await visible('.pred-label')).join(' | ')}`);
      assert.equal((await visible('.scores td[data-total]')).length, 1, 'one score');
      for (const chart of ['acc', 'entropy']) {
        const names = (await legend(page, chart)).map((l) => l.replace(/ rgb.*$/, ''));
        assert.deepEqual(names, [...new Set(names)], `chart ${chart}: legend ${names.join(' | ')}`);
      }
      await assertNoPageErrors();
    },
    { path: `${STREAM}&method=source&compare=1`, context: VIEWPORT },
  ));

test('demo banner: a model without source statistics falls back to SAR and says so; the next model with statistics runs SAR + align again, no banner', () =>
  withPage(
    async ({ page }) => {
      await waitForDemo(page, '5 frames', (s) => s.frames >= 5);
      const dir = join(REPO_ROOT, 'public', 'models', 'fmnist-vit');
      await page.selectOption('#model-kind', 'files');
      await restarted(
        page,
        () =>
          page.setInputFiles('#model-files', [
            { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: readFileSync(join(dir, 'model.safetensors')) },
            { name: 'config.json', mimeType: 'application/json', buffer: readFileSync(join(dir, 'config.json')) },
          ]),
        5,
      );
      assert.match((await demoState(page)).message, /has none, so SAR runs/);
      assert.equal(await page.locator('#method').inputValue(), 'sar');

      await restarted(page, () => page.selectOption('#model-kind', 'shipped').then(() => undefined), 5);
      const s = await demoState(page);
      assert.doesNotMatch(s.message, /has none/, 'the banner outlived the model it was about');
      assert.equal(await page.locator('#method').inputValue(), 'sar-align', 'the method chosen (SAR + align) did not come back');
      assert.equal(await page.locator('#pred-method').textContent(), 'SAR + align');
      await assertNoPageErrors();
    },
    { path: 'demo/?backend=wasm&input=stream&fps=20', context: VIEWPORT },
  ));

/**
 * Fills the entropy chart with dots on the E0 line (both runs, every frame)
 * and sorts the pixels along the line's middle row: the line's colour, light
 * (its casing or the background), or a dot's colour covering the line.
 */
const E0_ROW = `(async () => {
  const { charts } = await import('/demo/view.ts');
  const ch = charts.entropy;
  const e0 = 0.92;
  ch.clear();
  for (let i = 0; i < 400; i++) ch.push(i, [e0, e0, e0]);
  ch.render();
  await new Promise((r) => requestAnimationFrame(() => r()));
  const u = ch.plot;
  const y = Math.round(u.valToPos(e0, 'y', true));
  const d = u.ctx.getImageData(Math.ceil(u.bbox.left), y, Math.floor(u.bbox.width), 1).data;
  const out = { line: 0, light: 0, hidden: 0 };
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
    if (r > 170 && g > 80 && g < 170 && b < 100) out.line++;
    else if (r > 200 && g > 200 && b > 200) out.light++;
    else out.hidden++;
  }
  return out;
})()`;

test('demo entropy chart: the E0 line stays visible over dense entropy dots', () =>
  withPage(
    async ({ page }) => {
      await waitForDemo(page, 'the 30 frames asked for', (s) => s.state === 'done');
      const row = (await page.evaluate(E0_ROW)) as { line: number; light: number; hidden: number };
      const width = row.line + row.light + row.hidden;
      assert.ok(row.hidden <= 0.05 * width, `the dots hide the E0 line over ${row.hidden} of ${width} pixels (${JSON.stringify(row)})`);
      assert.ok(row.line >= 0.4 * width, `the E0 line's colour over ${row.line} of ${width} pixels`);
      await assertNoPageErrors();
    },
    { path: `${STREAM}&frames=30&compare=1`, context: VIEWPORT },
  ));

// Every change of the page's status line, with the prediction shown at that moment, from the first parse on.
const WATCH_LOAD = `(() => {
  const log = (window.__loadLog = []);
  const snap = () => {
    const s = document.getElementById('load-status');
    const p = document.getElementById('pred-class');
    const text = s && !s.hidden && s.offsetParent !== null ? s.textContent.trim() : '';
    const pred = p ? p.textContent : '–';
    const last = log[log.length - 1];
    if (!last || last.text !== text || last.pred !== pred) log.push({ text, pred });
  };
  new MutationObserver(snap).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
})()`;

test('demo load: download bytes, then the compile and first step, are shown over the panels until the first prediction', () =>
  withPage(
    async ({ page }) => {
      await waitForDemo(page, '10 frames', (s) => s.frames >= 10);
      await page.waitForTimeout(300);
      const log = (await page.evaluate('window.__loadLog')) as Array<{ text: string; pred: string }>;
      const lines = log.map((l) => `${l.pred} | ${l.text}`).join('\n');
      // While the parser builds the page the element can exist before its '–' text does: empty is no prediction either.
      const first = log.findIndex((l) => l.pred.trim() !== '' && l.pred !== '–');
      assert.ok(first > 0, `no prediction was shown:\n${lines}`);
      // From the moment the panels exist until the first prediction, something says what is happening.
      const panels = log.findIndex((l) => l.text !== '');
      assert.ok(panels >= 0 && log.slice(panels, first).every((l) => l.text !== ''), `the panels showed no progress before the first prediction:\n${lines}`);
      assert.ok(
        log.slice(0, first).some((l) => /model.*\d+\.\d MB/.test(l.text)),
        `no download progress in bytes:\n${lines}`,
      );
      assert.ok(
        log.slice(0, first).some((l) => /compil|first step/i.test(l.text)),
        `no compile / first-step state:\n${lines}`,
      );
      assert.equal(log.at(-1)!.text, '', `the progress stayed after the first prediction:\n${lines}`);
      await assertNoPageErrors();
    },
    { path: `${STREAM}`, initScript: WATCH_LOAD, context: VIEWPORT },
  ));
