// The page's small DOM helpers: its elements by id, its message line and
// state, errors told in words, and a canvas drawn from model pixels.
import { EngineClosedError } from '../src/runtime/engine-client';
import { toRGBA } from '../src/runtime/preprocess';

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo page lacks #${id}`);
  return el as T;
};

/** Shows a message; `topic` names what it is about, so that it can be taken back when that no longer holds (unsay). */
export function say(text: string, kind: 'info' | 'error' = 'info', topic = ''): void {
  const m = $('message');
  m.textContent = text;
  m.className = `message${kind === 'error' ? ' error' : ''}`;
  m.hidden = text === '';
  m.dataset.kind = kind;
  m.dataset.topic = topic;
}

/** Takes back the message about `topic`, if it is the one shown. */
export function unsay(topic: string): void {
  if ($('message').dataset.topic === topic) say('');
}

/**
 * What the page is doing until the first prediction of a new engine or model
 * (shown over the image panels, which are empty until then); `fraction` fills
 * its bar, undefined leaves the bar indeterminate.
 */
export function showProgress(text: string, fraction?: number): void {
  $('load-status').hidden = false;
  $('load-text').textContent = text;
  const bar = $<HTMLProgressElement>('load-bar');
  if (fraction === undefined) bar.removeAttribute('value');
  else bar.value = fraction;
}

export function hideProgress(): void {
  $('load-status').hidden = true;
}

export const progressShown = (): boolean => !$('load-status').hidden;

export function setState(s: 'loading' | 'running' | 'paused' | 'done' | 'error'): void {
  document.body.dataset.state = s;
}

/** Runs an action, showing its failure on the page instead of an uncaught rejection. */
export async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (e) {
    if (e instanceof EngineClosedError) setState('error');
    hideProgress();
    say(describeError(e), 'error');
  }
}

export function describeError(e: unknown): string {
  const err = e instanceof Error ? e : new Error(String(e));
  switch (err.name) {
    case 'ModelFormatError':
      return `This model could not be loaded: ${err.message}`;
    case 'InvalidInputError':
    case 'FrameFormatError':
      return `A frame was rejected (${err.name}): ${err.message}. The engine goes on with the next frame.`;
    case 'BackendError':
      return `No usable compute backend: ${err.message}`;
    default:
      return `${err.name}: ${err.message}`;
  }
}

/** Shows a captured frame (a camera's, whole) on a canvas. */
export function drawImage(id: string, image: ImageData): void {
  const cv = $<HTMLCanvasElement>(id);
  if (cv.width !== image.width || cv.height !== image.height) {
    cv.width = image.width;
    cv.height = image.height;
  }
  cv.getContext('2d')!.putImageData(image, 0, 0);
}

export function drawPixels(id: string, pixels: Float32Array, width: number, channels: 1 | 3, height = width): void {
  const cv = $<HTMLCanvasElement>(id);
  if (cv.width !== width || cv.height !== height) {
    cv.width = width;
    cv.height = height;
  }
  cv.getContext('2d')!.putImageData(new ImageData(toRGBA(pixels, width, height, channels), width, height), 0, 0);
}
