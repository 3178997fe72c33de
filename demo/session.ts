// The engine session: the worker and its model and method, started or
// changed by restart() for what changed (backend, model, method, session),
// and each frame's trip to the engine and back.
import { EngineClient, EngineClosedError } from '../src/runtime/engine-client';
import type { FrameResult, ModelSource } from '../src/runtime/engine-types';
import type { BackendReport } from '../src/runtime/backend';
import { tunedOptions, type InputKind } from './config';
import { $, describeError, guarded, say, setState } from './dom';
import { corruptionFor, fillLabelPicker, fisherImages, releaseCamera, startSource, stopSources, type Captured, type SourceHooks } from './inputs';
import { methodCard, methodLabel, setMethodCards } from './methods';
import { config, live, syncControlClasses } from './state';
import { allCharts, charts, markers, resetView, showLater, takeResult, takeUpdates } from './view';

const BASE = import.meta.env.BASE_URL;
const SHIPPED_MODEL = new URL(`${BASE}models/fmnist-vit/`, location.href).href;
/** The second shipped model, the GroupNorm ResNet: a model URL like any other (so ?model= shares it), with its own entry in the picker. */
const SHIPPED_RESNET_PATH = `${BASE}models/fmnist-resnet-gn/`;
const SHIPPED_RESNET = new URL(SHIPPED_RESNET_PATH, location.href).href;
/** The picker's shipped entries: each one's value of config.model ('' is the ViT) and its URL. */
export const SHIPPED_CHOICES: Record<string, { model: string; url: string }> = {
  shipped: { model: '', url: SHIPPED_MODEL },
  'shipped-resnet': { model: SHIPPED_RESNET_PATH, url: SHIPPED_RESNET },
};
/** The picker's entry for a model from the page's config. */
export const modelKindOf = (model: string) => Object.entries(SHIPPED_CHOICES).find(([, c]) => c.model === model)?.[0] ?? 'url';

/** The model-input preview is read back from the engine at most this often (ms). */
const PREVIEW_MS = 66;

/** The current worker's cards, on the page (restart waits for them before it sets a method). */
let methodsReady: Promise<void> | undefined;
export let modelSource: ModelSource = { kind: 'url', url: config.model ? new URL(config.model, location.href).href : SHIPPED_MODEL };
/** A dropped file's bytes, kept so a backend switch can load the model again (the engine gets a copy). */
let modelBytes: { weights: ArrayBuffer; config: unknown; name: string } | undefined;
/** The model the engine holds, to go back to when another fails to load. */
let loaded: { source: ModelSource; bytes: typeof modelBytes; url: string; info: string } | undefined;

let lastPreviewAt = 0;

export async function useModelFiles(files: File[]): Promise<void> {
  const weights = files.find((f) => f.name.endsWith('.safetensors'));
  const cfg = files.find((f) => f.name.endsWith('.json'));
  if (!weights) {
    say('Drop a .safetensors file (timm layout), with its config.json if it has one.', 'error');
    return;
  }
  let parsed: unknown;
  if (cfg) {
    try {
      parsed = JSON.parse(await cfg.text());
    } catch (e) {
      say(`${cfg.name} is not valid JSON: ${(e as Error).message}`, 'error');
      return;
    }
  }
  modelBytes = { weights: await weights.arrayBuffer(), config: parsed, name: weights.name };
  modelSource = { kind: 'bytes', weights: modelBytes.weights, config: parsed, name: weights.name };
  config.model = '';
  syncControlClasses();
  await restart('model');
}

/** Loads the model at `url` (`model` is how the page's URL names it). */
export async function useModelUrl(model: string, url: string): Promise<void> {
  config.model = model;
  modelSource = { kind: 'url', url };
  modelBytes = undefined;
  syncControlClasses();
  await restart('model');
}

/** Starts or updates the engine for what changed: a new worker for a backend, a new model, a new method, or only a new session. */
export async function restart(what: 'backend' | 'model' | 'method' | 'session'): Promise<void> {
  const mine = ++live.session;
  stopSources();
  setState('loading');
  if (what === 'backend' || !live.client) {
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
      if (what !== 'model' || !loaded || !live.modelInfo) throw e;
      ({ source: modelSource, bytes: modelBytes, url: config.model } = loaded);
      $<HTMLSelectElement>('model-kind').value = modelBytes ? 'files' : modelKindOf(config.model);
      syncControlClasses();
      $('model-info').textContent = loaded.info;
      say(describeError(e), 'error');
    }
    if (mine !== live.session) return;
    // 'auto' settles on the first model: it may have measured and moved.
    showBackend(await c.backend());
  }
  await methodsReady;
  if (mine !== live.session) return;
  // A method that needs the model's source statistics (SAR + align) runs the one it extends (SAR) on a model without them
  // (dropped files, a URL with none beside it).
  const wanted = methodCard(config.method);
  if (wanted.needsSourceStats && live.modelInfo && !live.modelInfo.sourceStats) {
    const fallback = wanted.extends ?? 'source';
    config.method = fallback;
    $<HTMLSelectElement>('method').value = fallback;
    say(
      `${wanted.label} needs the model's source statistics (source-stats.safetensors beside the weights); this model has none, so ${methodLabel(fallback)} runs.`,
    );
  }
  const spec = methodCard(config.method);
  const tuned = tunedOptions(spec);
  const lr = config.lr ?? tuned.lr;
  const fisher = spec.usesCleanImages ? fisherImages() : undefined;
  live.methodInfo = await c.setMethod({ method: config.method, lr, options: tuned.options, ...(fisher ? { fisherImages: fisher } : {}) });
  await c.clearRecords();
  await applyReference();
  if (mine !== live.session) return;
  $<HTMLInputElement>('lr').value = String(live.methodInfo.lr);
  $<HTMLInputElement>('lr').disabled = spec.lr === null;
  if (spec.usesCleanImages && !live.methodInfo.fisher)
    say(`${spec.label} runs without its anti-forgetting (Fisher) term: there are no clean images for this model.`);
  resetView();
  live.done = false;
  setState(live.paused ? 'paused' : 'running');
  await startSource(mine, sourceHooks);
}

/** The backend chip and, beside the picker, which backend runs and why. */
function showBackend(report: BackendReport): void {
  $('chip-backend').textContent = report.backend;
  $('backend-info').textContent = `Running on ${report.backend}: ${report.why}.`;
}

async function loadModel(c: EngineClient): Promise<void> {
  const progress = $<HTMLProgressElement>('model-progress');
  progress.hidden = false;
  progress.removeAttribute('value');
  $('model-info').textContent = 'Loading the model…';
  c.onProgress = (loaded, total) => {
    if (total) progress.value = loaded / total;
    $('model-info').textContent = `Loading the model… ${mb(loaded)}${total ? ` of ${mb(total)}` : ''}`;
  };
  const source: ModelSource = modelBytes
    ? { kind: 'bytes', weights: modelBytes.weights.slice(0), config: modelBytes.config, name: modelBytes.name }
    : modelSource;
  try {
    live.modelInfo = await c.loadModel(source);
  } finally {
    progress.hidden = true;
    c.onProgress = undefined;
  }
  const m = live.modelInfo;
  const name =
    m.name === SHIPPED_MODEL
      ? 'Shipped Fashion-MNIST ViT'
      : m.name === SHIPPED_RESNET
        ? 'Shipped Fashion-MNIST GroupNorm ResNet'
        : m.name.replace(/^.*\/(?=[^/]+\/?$)/, '');
  const shape = m.family === 'vit' ? `ViT, patch ${m.patchSize}, width ${m.width}, depth ${m.depth}` : `${m.family}, feature width ${m.width}`;
  const info = `${name}: ${m.imageSize}×${m.imageSize}×${m.inChannels} input, ${shape}, ${m.numClasses} classes, ${formatCount(m.parameters)} weights.`;
  $('model-info').textContent = info;
  loaded = { source: modelSource, bytes: modelBytes, url: config.model, info };
  fillLabelPicker();
  for (const id of ['clean-canvas', 'input-canvas']) {
    const cv = $<HTMLCanvasElement>(id);
    cv.width = m.imageSize;
    cv.height = m.imageSize;
  }
  $('clean-note').textContent = `crop · ${m.inChannels === 1 ? 'gray' : 'RGB'} · ${m.imageSize}×${m.imageSize}`;
}

function needReference(): boolean {
  return config.compare || config.input === 'camera';
}

export async function applyReference(): Promise<void> {
  if (live.client) await live.client.setReference(needReference());
  charts.acc.setShown(1, config.compare);
  charts.entropy.setShown(0, config.compare);
  $('pred-ref').hidden = !config.compare;
  $('acc-reference-row').hidden = !config.compare;
}

export async function manualReset(): Promise<void> {
  if (!live.client) return;
  await live.client.reset();
  live.stats.manualResets++;
  markers.add(Math.max(live.stats.frames - 1, 0), true);
  allCharts.forEach((c) => c.touch());
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
  takeResult(res);
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

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : String(n);
}

const sourceHooks: SourceHooks = { process: processFrame, restart, switchInput };
