// The inputs: the webcam and the labeled Fashion-MNIST stream (with its
// clean images for EATA's Fisher), each frame made model-sized here and
// handed to the session (session.ts), which passes down how.
import { FrameGate } from '../src/runtime/engine-client';
import { centerCrop, preprocessFrame, type PixelFrame } from '../src/runtime/preprocess';
import { fetchLabeledImages, FASHION_MNIST_CLASSES, type LabeledImages } from '../src/data/idx';
import { splitPools } from '../src/data/streams';
import { mulberry32, shuffle } from '../src/data/random';
import { TEST_CORRUPTION_NAMES as CORRUPTIONS } from '../src/runtime/corruption-names';
import type { CorruptionRegime } from '../src/data/corruptions/regime';
import type { InputKind } from './config';
import { $, describeError, drawPixels, say } from './dom';
import { config, live, streamLabelsApply, syncControlClasses } from './state';

const DATA_URL = `${import.meta.env.BASE_URL}data/fashion-mnist/`;

/** Clean images for EATA's Fisher, from the held-out pool (as the benchmark). */
const FISHER_COUNT = 500;

let fmnist: LabeledImages | undefined;
let streamOrder: number[] = [];
let fisherPool: number[] = [];

/** The true class of what the camera shows, as the viewer set it (keys 0–9), or null. */
let cameraLabel: number | null = null;

/** The labeled stream's images, its order (shuffled by the seed) and the held-out pool for the Fisher. */
export async function loadStreamImages(): Promise<void> {
  const d = await fetchLabeledImages(DATA_URL);
  fmnist = d;
  const pools = splitPools(d.labels, FASHION_MNIST_CLASSES.length);
  streamOrder = shuffle(pools.evaluation, mulberry32(config.seed));
  fisherPool = pools.clean;
}

/** What the inputs need from the session that starts them (session.ts), handed down so that they never import it. */
export interface SourceHooks {
  /** Sends one frame to the engine and takes in its result; false when the engine refused it. */
  process(frame: Captured, mine: number): Promise<boolean>;
  /** Starts a new session (on the stream, when the camera could not be opened). */
  restart(what: 'session'): Promise<void>;
  /** Changes the input (to the stream, when the camera stops). */
  switchInput(kind: InputKind, byUser: boolean): Promise<void>;
}

export function fillLabelPicker(): void {
  const sel = $<HTMLSelectElement>('label');
  sel.replaceChildren(Object.assign(document.createElement('option'), { value: '', textContent: '— not set —' }));
  (live.modelInfo?.classNames ?? []).forEach((name, i) =>
    sel.append(Object.assign(document.createElement('option'), { value: String(i), textContent: `${i < 10 ? `${i} · ` : ''}${name}` })),
  );
  sel.value = cameraLabel === null ? '' : String(cameraLabel);
}

export function setCameraLabel(label: number | null): void {
  cameraLabel = label !== null && live.modelInfo && label < live.modelInfo.numClasses ? label : null;
  $<HTMLSelectElement>('label').value = cameraLabel === null ? '' : String(cameraLabel);
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

// ---------------------------------------------------------------- camera

let video: HTMLVideoElement | undefined;
let camera: MediaStream | undefined;
export let cameraGate: FrameGate<() => Captured | undefined> | undefined;
export let cameraFrameCount = 0;
const grabCanvas = document.createElement('canvas');
const grab = grabCanvas.getContext('2d', { willReadFrequently: true })!;

export interface Captured {
  /** The model-sized clean frame (sent to the engine, which takes the buffer). */
  pixels: Float32Array;
  label: number | null;
  tag: number;
  /** Draws the frame's source panel, when it is the one on screen. */
  showSource?: () => void;
}

export function stopSources(): void {
  cameraGate?.clear();
  cameraGate = undefined;
}

export function releaseCamera(): void {
  camera?.getTracks().forEach((t) => t.stop());
  camera = undefined;
  if (video) video.srcObject = null;
  $('crop-box').hidden = true;
}

export async function startSource(mine: number, hooks: SourceHooks): Promise<void> {
  if (live.paused || live.done || mine !== live.session) return;
  if (config.input === 'camera') {
    const ok = camera !== undefined || (await openCamera(hooks));
    if (mine !== live.session) return;
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

async function openCamera(hooks: SourceHooks): Promise<boolean> {
  const fallback = 'The demo runs on the labeled Fashion-MNIST stream instead; choose Webcam to try again.';
  if (!navigator.mediaDevices?.getUserMedia) {
    say(`This page cannot use a camera here (cameras need https or localhost). ${fallback}`);
    return false;
  }
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    const name = (e as Error).name;
    const why =
      name === 'NotAllowedError' || name === 'SecurityError'
        ? 'Camera access was declined.'
        : name === 'NotFoundError' || name === 'OverconstrainedError'
          ? 'No camera was found.'
          : name === 'NotReadableError'
            ? 'The camera is in use by another application.'
            : `The camera could not be opened (${name}).`;
    console.warn(`getUserMedia: ${name}: ${(e as Error).message}`);
    say(`${why} ${fallback}`);
    return false;
  }
  video = $<HTMLVideoElement>('video');
  video.srcObject = camera;
  const track = camera.getVideoTracks()[0];
  if (track) {
    track.onended = () => {
      if (camera?.getVideoTracks()[0] !== track || config.input !== 'camera') return;
      releaseCamera();
      say(`The camera stopped (unplugged or taken by another application). ${fallback}`);
      void hooks.switchInput('stream', false);
    };
  }
  try {
    await video.play();
  } catch (e) {
    releaseCamera();
    say(`The camera stream could not be played (${(e as Error).message}). ${fallback}`);
    return false;
  }
  const deadline = performance.now() + 5000;
  while (video.videoWidth === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (video.videoWidth === 0) {
    releaseCamera();
    say(`The camera gave no picture. ${fallback}`);
    return false;
  }
  placeCropBox();
  return true;
}

/** Outlines the center crop over the whole camera frame (shown with object-fit: contain). */
function placeCropBox(): void {
  if (!video) return;
  const vw = video.videoWidth;
  const vh = video.videoHeight;
  const view = 140;
  const scale = Math.min(view / vw, view / vh);
  const crop = centerCrop(vw, vh);
  const box = $('crop-box');
  Object.assign(box.style, {
    left: `${(view - vw * scale) / 2 + crop.x * scale}px`,
    top: `${(view - vh * scale) / 2 + crop.y * scale}px`,
    width: `${crop.side * scale}px`,
    height: `${crop.side * scale}px`,
  });
  box.hidden = false;
  $('source-note').textContent = `${vw}×${vh}, center crop`;
}

function captureCamera(): Captured | undefined {
  if (!video || !live.modelInfo || video.videoWidth === 0) return undefined;
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (grabCanvas.width !== w || grabCanvas.height !== h) {
    grabCanvas.width = w;
    grabCanvas.height = h;
    placeCropBox();
  }
  grab.drawImage(video, 0, 0, w, h);
  const img = grab.getImageData(0, 0, w, h);
  // Auto-invert is for gray models trained on bright objects on black; an RGB model sees the scene as it is.
  const invert = config.invert === 'on' ? true : config.invert === 'off' || live.modelInfo.inChannels === 3 ? false : 'auto';
  const r = preprocessFrame(
    { data: img.data, width: w, height: h, channels: 4 },
    { size: live.modelInfo.imageSize, channels: live.modelInfo.inChannels, invert },
  );
  const note = `crop · ${live.modelInfo.inChannels === 1 ? 'gray' : 'RGB'} · ${live.modelInfo.imageSize}×${live.modelInfo.imageSize}${r.inverted ? ' · inverted' : ''}`;
  return { pixels: r.pixels, label: cameraLabel, tag: cameraFrameCount, showSource: () => ($('clean-note').textContent = note) };
}

function runCamera(mine: number, hooks: SourceHooks): void {
  // Two frames in flight, as the stream at "as fast as it adapts": one slow frame no longer drops the next camera frame.
  const gate = new FrameGate<() => Captured | undefined>(async (capture) => {
    const frame = capture();
    if (frame && mine === live.session) await hooks.process(frame, mine);
  }, 2);
  gate.onError = (e) => say(describeError(e), 'error');
  cameraGate = gate;
  const v = video!;
  const onFrame = () => {
    if (mine !== live.session || live.paused || live.done || cameraGate !== gate) return;
    cameraFrameCount++;
    gate.offer(captureCamera);
    schedule();
  };
  const schedule = () => {
    if ('requestVideoFrameCallback' in v) v.requestVideoFrameCallback(onFrame);
    else setTimeout(onFrame, 33);
  };
  schedule();
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
