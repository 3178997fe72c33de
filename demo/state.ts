// What the demo's modules share: the settings (kept in the page's URL, so a
// setup can be shared as a link), the engine and what it runs, the session
// results must belong to, and the session's scores.
import type { EngineClient } from '../src/runtime/engine-client';
import type { MethodInfo, ModelInfo } from '../src/runtime/engine-types';
import { FASHION_MNIST_CLASSES } from '../src/data/idx';
import { readConfig, writeConfig, type DemoConfig } from './config';
import { $ } from './dom';

export const config: DemoConfig = readConfig(location.search);

/** The session's counters: frames sent and answered since the engine, model, input or session last changed. */
export interface Stats {
  submitted: number;
  frames: number;
  lastStep: number;
}
export const freshStats = (): Stats => ({ submitted: 0, frames: 0, lastStep: -1 });

/**
 * The scores of the current segment: a change of corruption, severity, regime
 * or method starts a new one, so that no score mixes two shifts or two methods.
 */
export interface Score {
  labeled: number;
  correct: number;
  refLabeled: number;
  refCorrect: number;
  agreeTotal: number;
  agree: number;
  updates: number;
  autoResets: number;
  manualResets: number;
}
export const freshScore = (): Score => ({
  labeled: 0,
  correct: 0,
  refLabeled: 0,
  refCorrect: 0,
  agreeTotal: 0,
  agree: 0,
  updates: 0,
  autoResets: 0,
  manualResets: 0,
});

/** The engine and what it runs, and the session's state: one object, so that the modules that set them and those that read them share it. */
export const live = {
  client: undefined as EngineClient | undefined,
  modelInfo: undefined as ModelInfo | undefined,
  methodInfo: undefined as MethodInfo | undefined,
  /** The method running: the one chosen (config.method), or the one it extends on a model that lacks what it needs. */
  method: config.method,
  /** Bumped whenever the engine, model, method or input changes: results of an older session are ignored. */
  session: 0,
  paused: false,
  done: false,
  stats: freshStats(),
  score: freshScore(),
  /**
   * The scored segment: `id` tells every segment apart (a frame is scored only in the one it was sent in), `n` is
   * its number in the session, then its name, and the chart x of its first scored frame (null until then).
   */
  segment: { id: 0, n: 1, label: '', firstX: null as number | null },
};

/** Whether the no-adaptation run shows beside the method: asked for, and not the same method twice. */
export function showReference(): boolean {
  return config.compare && live.method !== 'source';
}

/** The labeled stream's labels are Fashion-MNIST's; they mean something only to a 10-class Fashion-MNIST model. */
export function streamLabelsApply(): boolean {
  return live.modelInfo !== undefined && live.modelInfo.numClasses === FASHION_MNIST_CLASSES.length;
}

/** Shows the settings on the page (which controls show, the figures beside them) and writes them into the URL. */
export function syncControlClasses(): void {
  const b = document.body.classList;
  b.toggle('input-camera', config.input === 'camera');
  b.toggle('input-stream', config.input === 'stream');
  b.toggle('corruption-cycle', config.corruption === 'cycle');
  const kind = $<HTMLSelectElement>('model-kind').value;
  b.toggle('model-url', kind === 'url');
  b.toggle('model-files', kind === 'files');
  $('severity-out').textContent = String(config.severity);
  $('queue-policy').textContent =
    config.input === 'camera'
      ? 'Camera frames are not queued: two are in the engine at once, the newest waits, older ones are dropped (counted above).'
      : 'The stream waits for each step: no frame is dropped.';
  $('source-title').textContent = config.input === 'camera' ? 'Camera' : 'Test image';
  history.replaceState(null, '', `${location.pathname}${writeConfig(config)}`);
}
