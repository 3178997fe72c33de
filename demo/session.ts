// The engine session: the worker and its model and method, started or
// changed by restart() for what changed (backend, model, method, session),
// and each frame's trip to the engine and back.
import { EngineClient, EngineClosedError } from '../src/runtime/engine-client';
import type { FrameResult } from '../src/runtime/engine-types';
import type { BackendReport } from '../src/runtime/backend';
import { tunedOptions, type InputKind } from './config';
import { releaseCamera, stopSources, type Captured, type SourceHooks } from './camera';
import { $, describeError, guarded, say, setState, showProgress, unsay } from './dom';
import { corruptionFor, FIRST_STEP, fisherImages, startSource } from './inputs';
import { methodCard, methodLabel, setMethodCards } from './methods';
import { backToLoaded, chooseModelFiles, chooseModelUrl, loadModel } from './model';
import { markers } from './scores';
import { config, live, showReference, syncControlClasses } from './state';
import { allCharts, charts, newMethodSegment, resetView, showLater, takeResult, takeUpdates } from './view';

/** The model-input preview is read back from the engine at most this often (ms). */
const PREVIEW_MS = 66;

/** The current worker's cards, on the page (restart waits for them before it sets a method). */
let methodsReady: Promise<void> | undefined;
let lastPreviewAt = 0;

/** Starts or updates the engine for what changed: a new worker for a backend, a new model, a new method, or only a new session. */
export async function restart(what: 'backend' | 'model' | 'method' | 'session'): Promise<void> {
  const mine = ++live.session;
  stopSources();
  setState('loading');
  if (what === 'backend' || !live.client) {
    showProgress(`Starting the engine (${config.backend === 'auto' ? 'choosing a backend' : config.backend})…`);
    live.client?.terminate();
    live.client = new EngineClient();
    live.modelInfo = undefined;
    // Asked once per worker; handled here so that a worker closed before it answers leaves no unhandled rejection.
    const ready = live.client.methods().then(setMethodCards);
    ready.catch(() => undefined);
    methodsReady = ready;
    $('chip-backend').textContent = '…';
    const report = await live.client.init({ backend: config.backend });
    if (mine !== live.session) return;
    showBackend(report);
  }
  const c = live.client;
  if (what === 'backend' || what === 'model' || !live.modelInfo) {
    try {
      await loadModel(c);
    } catch (e) {
      // A model that fails to load leaves the engine with the one it had: go on with that.
      if (what !== 'model' || !backToLoaded(e)) throw e;
    }
    if (mine !== live.session) return;
    // 'auto' settles on the first model: it may have measured and moved.
    showBackend(await c.backend());
    showProgress(FIRST_STEP);
  }
  await methodsReady;
  if (mine !== live.session) return;
  // A method that needs the model's source statistics (SAR + align) runs the one it extends (SAR) on a model without them
  // (dropped files, a URL with none beside it). The choice stays the viewer's: the next model with statistics runs it.
  const wanted = methodCard(config.method);
  const lacking = wanted.needsSourceStats && live.modelInfo !== undefined && !live.modelInfo.sourceStats;
  live.method = lacking ? (wanted.extends ?? 'source') : config.method;
  $<HTMLSelectElement>('method').value = live.method;
  if (lacking) {
    say(
      `${wanted.label} needs the model's source statistics (source-stats.safetensors beside the weights); this model has none, so ${methodLabel(live.method)} runs.`,
      'info',
      'fallback',
    );
  } else unsay('fallback');
  const spec = methodCard(live.method);
  const tuned = tunedOptions(spec);
  const lr = config.lr ?? tuned.lr;
  const fisher = spec.usesCleanImages ? fisherImages() : undefined;
  live.methodInfo = await c.setMethod({ method: live.method, lr, options: tuned.options, ...(fisher ? { fisherImages: fisher } : {}) });
  await c.clearRecords();
  await applyReference();
  if (mine !== live.session) return;
  $<HTMLInputElement>('lr').value = String(live.methodInfo.lr);
  $<HTMLInputElement>('lr').disabled = spec.lr === null;
  if (spec.usesCleanImages && !live.methodInfo.fisher)
    say(`${spec.label} runs without its anti-forgetting (Fisher) term: there are no clean images for this model.`, 'info', 'fisher');
  else unsay('fisher');
  if (what === 'method') newMethodSegment();
  else resetView();
  live.done = false;
  setState(live.paused ? 'paused' : 'running');
  await startSource(mine, sourceHooks);
}

/** The backend chip and, beside the picker, which backend runs and why. */
function showBackend(report: BackendReport): void {
  $('chip-backend').textContent = report.backend;
  $('backend-info').textContent = `Running on ${report.backend}: ${report.why}.`;
}

/** The engine runs the no-adaptation model beside the method when the page shows it, and for the camera's agreement figure. */
function needReference(): boolean {
  return showReference() || config.input === 'camera';
}

export async function applyReference(): Promise<void> {
  if (live.client) await live.client.setReference(needReference());
  charts.acc.setShown('reference', showReference());
  charts.entropy.setShown('reference', showReference());
  $('pred-ref').hidden = !showReference();
}

export async function manualReset(): Promise<void> {
  if (!live.client) return;
  await live.client.reset();
  live.score.manualResets++;
  markers.add(Math.max(live.stats.frames - 1, 0), 'manual');
  allCharts.forEach((c) => c.touch());
}

export async function useModelFiles(files: File[]): Promise<void> {
  if (await chooseModelFiles(files)) await restart('model');
}

/** Loads the model at `url` (`model` is how the page's URL names it). */
export async function useModelUrl(model: string, url: string): Promise<void> {
  chooseModelUrl(model, url);
  await restart('model');
}

export function setPaused(p: boolean): void {
  live.paused = p;
  $('pause').textContent = p ? 'Resume' : 'Pause';
  if (live.done) return;
  setState(p ? 'paused' : 'running');
  if (!p) void startSource(live.session, sourceHooks);
}

export async function switchInput(kind: InputKind, byUser: boolean): Promise<void> {
  config.input = kind;
  for (const el of document.querySelectorAll<HTMLInputElement>('input[name=input]')) el.checked = el.value === kind;
  syncControlClasses();
  if (kind === 'stream') releaseCamera();
  if (byUser) say('');
  await guarded(async () => {
    if (live.client && live.modelInfo) await restart('session');
  });
}

/**
 * Where a frame's time goes, summed over the frames since the last reset
 * (window.wildttaDemo.timing(); the frame-path rows of `npm run bench:step`):
 * in the engine (its preparation and its adapter step) and in this page's
 * handling of the result; with the wall time, frames per second. (Nothing is
 * summed per round trip: two frames are in flight at once, so their round
 * trips overlap and would count the same milliseconds twice.)
 */
export const timing = { frames: 0, engineMs: 0, prepareMs: 0, stepMs: 0, pageMs: 0, since: performance.now() };
export function resetTiming(): void {
  Object.assign(timing, { frames: 0, engineMs: 0, prepareMs: 0, stepMs: 0, pageMs: 0, since: performance.now() });
}

/** Sends one frame to the engine and takes in its result; false when the engine refused it. */
async function processFrame(frame: Captured, mine: number): Promise<boolean> {
  const c = live.client;
  const m = live.modelInfo;
  if (!c || !m) return false;
  const n = live.stats.submitted++;
  // The segment the frame is sent in: a change while it is in flight must not score it in the next one.
  const segment = live.segment.id;
  const corruption = corruptionFor(n);
  const now = performance.now();
  // With the reference on, the preview shares its read, so it costs nothing to take every frame.
  const preview = needReference() || now - lastPreviewAt >= PREVIEW_MS;
  if (preview) lastPreviewAt = now;
  // The engine takes the frame's buffer; keep a copy to show beside the result.
  const clean = preview ? frame.pixels.slice() : undefined;
  let res: FrameResult;
  try {
    res = await c.step({
      frame: { data: frame.pixels, width: m.imageSize, height: m.imageSize, channels: m.inChannels, maxValue: 1 },
      corruption,
      label: frame.label,
      tag: frame.tag,
      preview,
    });
  } catch (e) {
    if (mine !== live.session) return false;
    if (e instanceof EngineClosedError) setState('error');
    say(describeError(e), 'error');
    return false;
  }
  if (mine !== live.session) return false;
  const tBack = performance.now();
  takeResult(res, segment);
  if (res.preview && clean) {
    // The three images and the prediction on screen all belong to this frame; they are drawn with the
    // next animation frame (render), so drawing never holds up a step.
    showLater(res, { clean, input: res.preview, showSource: frame.showSource });
  }
  const tDone = performance.now();
  timing.frames++;
  timing.engineMs += res.ms.total;
  timing.prepareMs += res.ms.prepare;
  timing.stepMs += res.ms.step;
  timing.pageMs += tDone - tBack;
  if (config.frames > 0 && live.stats.frames >= config.frames && !live.done) {
    live.done = true;
    const late = await c.flush();
    if (mine === live.session) {
      takeUpdates(late);
      setState('done');
      say(`Finished: ${live.stats.frames} frames, as asked (frames=${config.frames} in the URL). Press New session to run again.`);
    }
  }
  return true;
}

const sourceHooks: SourceHooks = { process: processFrame, restart, switchInput };
