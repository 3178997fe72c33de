// The inputs: the webcam (camera.ts) or the labeled Fashion-MNIST stream
// (with its clean images for EATA's Fisher), each frame made model-sized and
// handed to the session (session.ts), which passes down how; and the
// corruption each frame gets.
import { preprocessFrame, type PixelFrame } from '../src/runtime/preprocess';
import { fetchLabeledImages, FASHION_MNIST_CLASSES, type LabeledImages } from '../src/data/idx';
import { splitPools } from '../src/data/streams';
import { mulberry32, shuffle } from '../src/data/random';
import { CORRUPTIONS } from '../src/data/corruptions/names';
import type { CorruptionRegime } from '../src/data/corruptions/regime';
import { openCamera, runCamera, type SourceHooks } from './camera';
import { $, drawPixels, progressShown, showProgress } from './dom';
import { config, live, streamLabelsApply, syncControlClasses } from './state';

const DATA_URL = `${import.meta.env.BASE_URL}data/fashion-mnist/`;

/** Clean images for EATA's Fisher, from the held-out pool (as the benchmark). */
const FISHER_COUNT = 500;

let fmnist: LabeledImages | undefined;
let streamOrder: number[] = [];
let fisherPool: number[] = [];

/** The labeled stream's images, its order (shuffled by the seed) and the held-out pool for the Fisher. */
export async function loadStreamImages(): Promise<void> {
  const d = await fetchLabeledImages(DATA_URL);
  fmnist = d;
  const pools = splitPools(d.labels, FASHION_MNIST_CLASSES.length);
  streamOrder = shuffle(pools.evaluation, mulberry32(config.seed));
  fisherPool = pools.clean;
}

export function fisherImages(): { pixels: Float32Array; count: number } | undefined {
  if (!fmnist || !live.modelInfo || !streamLabelsApply()) return undefined;
  const { imageSize: s, inChannels: ch } = live.modelInfo;
  const ids = fisherPool.slice(0, FISHER_COUNT);
  const pixels = new Float32Array(ids.length * s * s * ch);
  ids.forEach((idx, i) => pixels.set(preprocessFrame(testImage(idx), { size: s, channels: ch }).pixels, i * s * s * ch));
  return { pixels, count: ids.length };
}

function testImage(index: number): PixelFrame {
  const d = fmnist!;
  const px = d.height * d.width;
  return { data: d.images.subarray(index * px, (index + 1) * px), width: d.width, height: d.height, channels: 1 };
}

function frameSeed(n: number): number {
  return (Math.imul(config.seed + 1, 0x9e3779b1) ^ Math.imul(n + 1, 0x85ebca6b)) >>> 0;
}

export function corruptionFor(n: number): { name: string; severity: number; seed: number; regime: CorruptionRegime } | null {
  const c = config.corruption;
  if (c === 'none') return null;
  let name = c;
  if (c === 'cycle') name = CORRUPTIONS[Math.floor(n / config.cycle) % CORRUPTIONS.length]!;
  else if (c === 'mixed') name = CORRUPTIONS[Math.floor(mulberry32(frameSeed(n) ^ 0x5bd1e995)() * CORRUPTIONS.length)]!;
  return { name, severity: config.severity, seed: frameSeed(n), regime: config.regime };
}

/** What the page waits for once the model is in: the backend compiles its kernels on the first frame. */
export const FIRST_STEP = 'Compiling the kernels and running the first step…';

export async function startSource(mine: number, hooks: SourceHooks): Promise<void> {
  if (live.paused || live.done || mine !== live.session) return;
  if (config.input === 'camera') {
    // A new engine's first step waits for the camera too (its permission prompt, its first picture).
    const loading = progressShown();
    if (loading) showProgress('Opening the camera…');
    const ok = await openCamera(hooks);
    if (mine !== live.session) return;
    if (loading) showProgress(FIRST_STEP);
    if (!ok) {
      // Fall back to the labeled stream; the message from openCamera says why.
      config.input = 'stream';
      for (const el of document.querySelectorAll<HTMLInputElement>('input[name=input]')) el.checked = el.value === 'stream';
      syncControlClasses();
      await hooks.restart('session');
      return;
    }
    runCamera(mine, hooks);
  } else {
    void runStream(mine, hooks);
  }
}

// ---------------------------------------------------------------- labeled stream

/** The stream loop that may run: a pause and quick resume must not leave two loops feeding the engine. */
let streamLoop = 0;

async function runStream(mine: number, hooks: SourceHooks): Promise<void> {
  if (!fmnist || !live.modelInfo) return;
  const loop = ++streamLoop;
  const labels = streamLabelsApply();
  $('source-note').textContent = labels ? '' : '(labels do not apply to this model)';
  // At "as fast as it adapts" two frames are in flight: the engine starts the next as soon as it has
  // answered one, instead of idling through the message round trip and this page's handling.
  const inFlight = new Set<Promise<boolean>>();
  const depth = () => (config.fps === 'max' ? 2 : 1);
  while (mine === live.session && loop === streamLoop && !live.paused && !live.done) {
    if (config.frames > 0 && live.stats.submitted >= config.frames) {
      await Promise.all(inFlight);
      break;
    }
    const t0 = performance.now();
    const n = live.stats.submitted;
    const index = streamOrder[n % streamOrder.length]!;
    const image = testImage(index);
    const label = fmnist.labels[index]!;
    const showSource = () => {
      drawPixels(
        'source-canvas',
        Float32Array.from(image.data as Uint8Array, (v) => v / 255),
        image.width,
        1,
        image.height,
      );
      $('source-note').textContent = `#${index} · ${FASHION_MNIST_CLASSES[label]}${labels ? '' : ' (labels do not apply to this model)'}`;
    };
    const r = preprocessFrame(image, { size: live.modelInfo.imageSize, channels: live.modelInfo.inChannels });
    const sent = hooks.process({ pixels: r.pixels, label: labels ? label : null, tag: index, showSource }, mine);
    inFlight.add(sent);
    void sent.finally(() => inFlight.delete(sent));
    // Wait for a free place (the oldest frame's answer: the engine answers in order).
    const ok = inFlight.size >= depth() ? await [...inFlight][0]! : true;
    if (!ok) {
      await Promise.all(inFlight);
      await new Promise((res) => setTimeout(res, 500));
      continue;
    }
    if (config.fps !== 'max') {
      const wait = 1000 / config.fps - (performance.now() - t0);
      if (wait > 1) await new Promise((res) => setTimeout(res, wait));
    }
  }
}
