// The demo's scores by segment (issue 23): a change of corruption, severity,
// regime or method starts a new scored segment, named in the scores, with a
// numbered marker on every chart, and the charts go on (a new session alone
// clears them). Labeled stream, wasm backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { assertNoPageErrors, withPage } from './support/browser';
import { demoState, waitForDemo, type DemoState } from '../tools/lib/demo';
import { artifact } from './support/artifacts';

const CHARTS = ['acc', 'entropy', 'grad', 'reliable'] as const;

/** The segment markers each chart drew in its last redraw, as "label@x" (none when the page draws no such marker). */
async function segmentMarkers(page: Page): Promise<Record<string, string[]>> {
  // Read loosely: a page without the hook's chartMarkers has drawn no segment marker.
  const s = (await demoState(page)) as Partial<DemoState>;
  return Object.fromEntries(CHARTS.map((c) => [c, (s.chartMarkers?.[c] ?? []).filter((m) => m.kind === 'segment').map((m) => `${m.label}@${m.x}`)]));
}

/** An element's text ('' when the page has no such element). */
const text = async (page: Page, selector: string) =>
  ((await page.evaluate(`document.querySelector(${JSON.stringify(selector)})?.textContent ?? ''`)) as string).trim();

/** Waits for `n` more frames after a change, then pauses until nothing is in flight and the page has redrawn. */
async function framesAfter(page: Page, what: string, n: number): Promise<DemoState> {
  const from = (await demoState(page)).frames;
  await waitForDemo(page, what, (st) => st.frames >= from + n, 60_000);
  await page.click('#pause');
  // Settled: no frame answered for half a second (the frames a method change discards are never answered).
  let last = -1;
  for (;;) {
    await page.waitForTimeout(500);
    const s = await demoState(page);
    if (s.frames === last) return s;
    last = s.frames;
  }
}

test('demo: changing the corruption, the severity and the method starts a new scored segment, named in the scores and marked on every chart', () =>
  withPage(
    async ({ page }) => {
      await waitForDemo(page, '40 labeled frames', (s) => s.labeled >= 40);
      const first = await text(page, '#segment');

      await page.selectOption('#corruption', 'fog');
      const fog = await framesAfter(page, 'frames of fog', 30);
      // The running score covers the new segment only; the first one's final score is kept beside it.
      const total = Number(await page.locator('#acc-method').getAttribute('data-total'));
      assert.ok(total >= 30 && total < fog.frames - 30, `the score covers ${total} of ${fog.frames} frames: not the fog segment alone`);
      assert.equal(first, 'segment 1 · gaussian noise s5 · SAR');
      assert.equal(await text(page, '#segment'), 'segment 2 · fog s5 · SAR', 'the scores do not name the new segment');
      const past = await text(page, '#segments li');
      const m = /^segment 1 · gaussian noise s5 · SAR: \d+\.\d% \((\d+)\/(\d+)\); no adaptation: \d+\.\d% \(\d+\/\2\)$/.exec(past);
      assert.ok(m, `the first segment's score: "${past}"`);
      // Both figures count every frame once (two may be in flight at the change; they belong to neither).
      assert.ok(fog.frames - (Number(m[2]) + total) <= 2, `segments ${m[2]} + ${total} frames of ${fog.frames}`);
      let marks = await segmentMarkers(page);
      for (const c of CHARTS) assert.equal(marks[c]!.length, 1, `chart ${c}: segment markers ${JSON.stringify(marks[c])}`);
      assert.ok(CHARTS.every((c) => marks[c]![0] === marks.acc![0]) && marks.acc![0]!.startsWith('2@'), JSON.stringify(marks));

      await page.click('#pause');
      await page.locator('#severity').fill('3');
      await framesAfter(page, 'frames of fog s3', 20);
      assert.equal(await text(page, '#segment'), 'segment 3 · fog s3 · SAR');

      const before = await demoState(page);
      await page.click('#pause');
      await page.selectOption('#method', 'tent');
      const tent = await framesAfter(page, 'frames of Tent', 20);
      assert.equal(await text(page, '#segment'), 'segment 4 · fog s3 · Tent');
      assert.ok(tent.points.entropy > before.points.entropy, 'a method change cleared the charts');
      marks = await segmentMarkers(page);
      for (const c of CHARTS)
        assert.deepEqual(
          marks[c]!.map((x) => x.split('@')[0]),
          ['2', '3', '4'],
          `chart ${c}: ${JSON.stringify(marks[c])}`,
        );
      assert.equal(await page.locator('#segments li').count(), 3, 'the three finished segments are listed');
      await page.screenshot({ path: artifact('demo-segments.png') });

      // A new session starts from zero.
      await page.click('#pause');
      await page.click('#clear');
      await framesAfter(page, 'frames of the new session', 10);
      assert.equal(await text(page, '#segment'), 'segment 1 · fog s3 · Tent');
      assert.equal(await page.locator('#segments li').count(), 0);
      await assertNoPageErrors();
    },
    { path: 'demo/?backend=wasm&input=stream&fps=max&method=sar&corruption=gaussian_noise&severity=5', context: { viewport: { width: 1280, height: 800 } } },
  ));
