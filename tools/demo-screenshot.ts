// The README's picture of the live demo: serves the page, runs it in headless
// Chromium (wasm backend) until enough frames have gone through, and saves a
// 1280×720 screenshot.
//
//   npm run demo:screenshot -- [--out docs/demo.png] [--frames 400] [--camera]
//                              [--query 'corruption=gaussian_noise&severity=5']
//
// Default: the labeled Fashion-MNIST stream, gaussian noise at severity 5, the
// default method (SAR + align) beside no adaptation. --camera uses Chromium's fake camera playing the test
// images (npm run demo:y4m) instead.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, setExtraChromiumArgs, shutdown, withPage } from './lib/session';
import { waitForDemo } from './lib/demo';
import { writeFakeCameraY4m } from './make-y4m';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string', default: 'docs/demo.png' },
    frames: { type: 'string', default: '400' },
    camera: { type: 'boolean', default: false },
    query: { type: 'string', default: 'corruption=gaussian_noise&severity=5&compare=1' },
  },
});

const frames = Number(a.frames);
const out = resolve(REPO_ROOT, a.out);
if (a.camera) {
  const video = writeFakeCameraY4m();
  setExtraChromiumArgs(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${video.path}`]);
}
const input = a.camera ? 'camera' : 'stream';
const path = `demo/?backend=wasm&input=${input}&fps=max&${a.query}`;

try {
  await withPage(
    async ({ page, errors }) => {
      const s = await waitForDemo(page, `${frames} frames`, (st) => st.steps >= frames, 600_000);
      // One more redraw after the last frame counted.
      await page.waitForTimeout(200);
      mkdirSync(dirname(out), { recursive: true });
      await page.screenshot({ path: out });
      if (errors.length) throw new Error(`the page logged errors:\n${errors.join('\n')}`);
      console.log(`${out}: ${s.steps} steps on ${s.backend} (${path})`);
    },
    { path, context: { viewport: { width: 1280, height: 720 } } },
  );
} finally {
  await shutdown();
}
