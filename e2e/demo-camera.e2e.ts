// The demo page with a webcam: Chromium's fake camera plays a .y4m made of
// Fashion-MNIST test images (tools/make-y4m.ts). The page must show the
// frames, preprocess them to what the model was trained on, adapt (the step
// counter rises), draw its plots, keep the engine's tensor count flat, and
// reject bad frames with a typed error while it goes on. Runs on the wasm
// backend: SwiftShader's WebGPU takes ~0.3 s a forward here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFakeCameraY4m } from '../tools/make-y4m';
import { loadFashionMnist } from '../tools/fmnist-node';
import { REPO_ROOT, assertNoPageErrors, setExtraChromiumArgs, withPage } from './support/browser';
import { demoState, demoTensorTrace, settledTensorCounts, waitForDemo } from '../tools/lib/demo';
import { artifact } from './support/artifacts';

const video = writeFakeCameraY4m();
setExtraChromiumArgs(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${video.path}`]);

test('demo with the fake webcam: camera frames shown and preprocessed, SAR adapts, plots fill, tensors flat, no console errors', () =>
  withPage(
    async ({ page }) => {
      const first = await waitForDemo(page, 'the camera to run 30 steps', (s) => s.input === 'camera' && s.steps >= 30);
      assert.equal(first.backend, 'wasm');
      assert.equal(first.message, '', 'no fallback message with a working camera');

      // The video element plays the fake camera at its own size.
      const size = (await page.evaluate(`(() => { const v = document.getElementById('video'); return [v.videoWidth, v.videoHeight, v.paused]; })()`)) as [
        number,
        number,
        boolean,
      ];
      assert.deepEqual(size, [video.width, video.height, false]);

      // What the page shows as the model's clean input is one of the test images in the video.
      const shown = (await page.evaluate(`(() => {
        const c = document.getElementById('clean-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const out = []; for (let i = 0; i < d.length; i += 4) out.push(d[i]);
        return out; })()`)) as number[];
      const data = loadFashionMnist('t10k', join(REPO_ROOT, 'public', 'data', 'fashion-mnist'));
      const px = data.height * data.width;
      assert.equal(shown.length, px, 'the clean preview has the model input size');
      const mad = video.indices.map((idx) => shown.reduce((a, v, i) => a + Math.abs(v - data.images[idx * px + i]!), 0) / px);
      const best = Math.min(...mad);
      assert.ok(best < 12, `the preprocessed frame should match a test image in the video (closest mean |diff| ${best.toFixed(1)} of 255)`);

      // Adapting: steps and updates go on, plots get new points and redraw.
      await page.waitForTimeout(2500);
      const later = await demoState(page);
      assert.ok(later.steps > first.steps, `the step counter should rise (${first.steps} → ${later.steps})`);
      assert.ok(later.updates > 0, 'SAR made no update');
      assert.ok(later.chartRenders > first.chartRenders, 'the charts did not redraw');
      assert.ok(later.points.entropy > first.points.entropy, 'the entropy plot got no new points');
      assert.ok(later.points.gradNorm > 0, 'the gradient-norm plot has no point');
      assert.ok(later.points.accuracy > 0, 'no agreement/accuracy point without a label');
      assert.equal(later.agreeTotal, later.frames, 'without a label every frame is scored as agreement with no-adapt on the clean frame');
      assert.equal(await page.locator('#agree-row').isVisible(), true, 'the agreement figure is shown, named as such');
      assert.ok(later.cameraFrames >= later.frames, 'camera frames are counted');

      // A label set with a key makes the frames after it count as labeled.
      await page.keyboard.press('1');
      await waitForDemo(page, 'labeled camera frames', (s) => s.labeled >= 3, 30_000);
      assert.equal(await page.locator('#true-label').textContent(), 'Trouser');
      // The accuracy chart's caption says what it now scores against (it said "no label set" until a new session).
      const caption = (await page.locator('#acc-caption').textContent()) ?? '';
      assert.doesNotMatch(caption, /no label set/, `the caption after a label key: ${caption}`);
      assert.match(caption, /Trouser/, `the caption after a label key: ${caption}`);

      // Bad frames get typed errors and the engine goes on.
      const errors = (await page.evaluate(`(async () => {
        const c = window.wildttaDemo.client();
        const out = [];
        for (const data of [new Float32Array(28 * 28).fill(NaN), new Float32Array(27)]) {
          try { await c.step({ frame: { data, width: 28, height: 28, channels: 1, maxValue: 1 } }); out.push('accepted'); }
          catch (e) { out.push(e.name + ': ' + e.message); }
        }
        return out; })()`)) as string[];
      assert.match(errors[0]!, /^InvalidInputError: .*NaN/);
      assert.match(errors[1]!, /^FrameFormatError: .*needs 784 values, got 27/);
      const before = (await demoState(page)).steps;
      await waitForDemo(page, 'steps after the bad frames', (s) => s.steps > before + 5, 30_000);

      const counts = settledTensorCounts(await demoTensorTrace(page));
      assert.ok(counts.length >= 20, `too few steps traced (${counts.length})`);
      assert.equal(Math.max(...counts), Math.min(...counts), `the engine's tensor count moved: ${[...new Set(counts)].join(', ')}`);

      await page.screenshot({ path: artifact('demo-camera.png') });
      await assertNoPageErrors();
    },
    { path: 'demo/?backend=wasm&corruption=gaussian_noise&severity=3', context: { viewport: { width: 1280, height: 720 } } },
  ));

// A slow backend, made so on purpose: every message from the engine's worker reaches the page 1.5 s late,
// while the fake camera moves to its next image every 0.5 s.
const SLOW_ENGINE = `(() => {
  const W = window.Worker;
  window.Worker = class extends W {
    set onmessage(h) { super.onmessage = h && ((e) => setTimeout(() => h.call(this, e), 1500)); }
    get onmessage() { return super.onmessage; }
  };
})()`;

/**
 * What the camera panel and the model-input panel show, as 28×28 gray: the
 * panel's topmost element at its centre (the live video, or a canvas over
 * it), center-cropped and shrunk as the page's preprocessing does, and the
 * preprocessed frame beside it.
 */
const PANELS = `(() => {
  const view = document.getElementById('source-view').getBoundingClientRect();
  const top = document.elementFromPoint(view.left + view.width / 2, view.top + view.height / 2);
  const w = top.videoWidth || top.width, h = top.videoHeight || top.height;
  const side = Math.min(w, h);
  const c = document.createElement('canvas'); c.width = 28; c.height = 28;
  const g = c.getContext('2d');
  g.drawImage(top, (w - side) / 2, (h - side) / 2, side, side, 0, 0, 28, 28);
  const gray = (cv) => { const d = cv.getContext('2d').getImageData(0, 0, 28, 28).data; const o = []; for (let i = 0; i < d.length; i += 4) o.push((d[i] + d[i + 1] + d[i + 2]) / 3); return o; };
  return { shown: top.id, camera: gray(c), model: gray(document.getElementById('clean-canvas')) };
})()`;

test('demo with the fake webcam on a slow engine: the camera panel shows the frame the model classified, not the live one', (t) =>
  withPage(
    async ({ page }) => {
      await waitForDemo(page, 'the camera to run 5 steps', (s) => s.input === 'camera' && s.steps >= 5);
      const data = loadFashionMnist('t10k', join(REPO_ROOT, 'public', 'data', 'fashion-mnist'));
      const px = data.height * data.width;
      const nearest = (img: number[]) =>
        video.indices
          .map((idx) => ({ idx, mad: img.reduce((a, v, i) => a + Math.abs(v - data.images[idx * px + i]!), 0) / px }))
          .sort((a, b) => a.mad - b.mad)[0]!;
      const seen: string[] = [];
      for (let i = 0; i < 5; i++) {
        const p = (await page.evaluate(PANELS)) as { shown: string; camera: number[]; model: number[] };
        const cam = nearest(p.camera);
        const model = nearest(p.model);
        seen.push(`${p.shown}: camera #${cam.idx} (${cam.mad.toFixed(1)}), model #${model.idx} (${model.mad.toFixed(1)})`);
        await page.waitForTimeout(400);
      }
      t.diagnostic(seen.join('; '));
      const differ = seen.filter((l) => !/camera (#\d+) .*model \1 /.test(l));
      assert.deepEqual(differ, [], `the camera panel and the model's input showed different images:\n${seen.join('\n')}`);
      await assertNoPageErrors();
    },
    { path: 'demo/?backend=wasm&corruption=none', initScript: SLOW_ENGINE, context: { viewport: { width: 1280, height: 720 } } },
  ));
