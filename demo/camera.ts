// The webcam: opened and released here, each frame captured, made
// model-sized and handed to the session through the hooks it passes down
// (session.ts), with the label the viewer gives what it shows (keys 0-9).
import { FrameGate } from '../src/runtime/engine-client';
import { centerCrop, preprocessFrame } from '../src/runtime/preprocess';
import type { InputKind } from './config';
import { $, describeError, drawImage, say } from './dom';
import { config, live } from './state';

/** The true class of what the camera shows, as the viewer set it (keys 0–9), or null. */
let cameraLabel: number | null = null;

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

/** The class the viewer says the camera shows, or null. */
export const currentCameraLabel = (): number | null => cameraLabel;

export function setCameraLabel(label: number | null): void {
  cameraLabel = label !== null && live.modelInfo && label < live.modelInfo.numClasses ? label : null;
  $<HTMLSelectElement>('label').value = cameraLabel === null ? '' : String(cameraLabel);
}

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
  /** Draws the frame's source panel when the frame's result is the one on screen (so the panel shows what the model classified). */
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

/** Opens the camera unless it is open; false (with a message saying why) when it cannot be. */
export async function openCamera(hooks: SourceHooks): Promise<boolean> {
  if (camera) return true;
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
  // Until the first result the panel shows nothing, not the last stream image.
  const panel = $<HTMLCanvasElement>('source-canvas');
  panel.getContext('2d')!.clearRect(0, 0, panel.width, panel.height);
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
  // The camera panel shows this captured frame, not the live video: on a slow backend the video is seconds
  // ahead of the result beside it.
  const showSource = () => {
    drawImage('source-canvas', img);
    $('clean-note').textContent = note;
  };
  return { pixels: r.pixels, label: cameraLabel, tag: cameraFrameCount, showSource };
}

export function runCamera(mine: number, hooks: SourceHooks): void {
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
