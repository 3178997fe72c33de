// The page's small DOM helpers: its elements by id, its message line and
// state, errors told in words, and a canvas drawn from model pixels.
import { EngineClosedError } from '../src/runtime/engine-client';
import { toRGBA } from '../src/runtime/preprocess';

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo page lacks #${id}`);
  return el as T;
};

export function say(text: string, kind: 'info' | 'error' = 'info'): void {
  const m = $('message');
  m.textContent = text;
  m.className = `message${kind === 'error' ? ' error' : ''}`;
  m.hidden = text === '';
  m.dataset.kind = kind;
}

export function setState(s: 'loading' | 'running' | 'paused' | 'done' | 'error'): void {
  document.body.dataset.state = s;
}

/** Runs an action, showing its failure on the page instead of an uncaught rejection. */
export async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (e) {
    if (e instanceof EngineClosedError) setState('error');
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

export function drawPixels(id: string, pixels: Float32Array, width: number, channels: 1 | 3, height = width): void {
  const cv = $<HTMLCanvasElement>(id);
  if (cv.width !== width || cv.height !== height) {
    cv.width = width;
    cv.height = height;
  }
  cv.getContext('2d')!.putImageData(new ImageData(toRGBA(pixels, width, height, channels), width, height), 0, 0);
}
