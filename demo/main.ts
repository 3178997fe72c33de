// The live demo: webcam or labeled stream → preprocessing → corruption →
// adaptation in a Web Worker, with live plots. UI only; the engine
// (src/runtime/engine*.ts) knows nothing about this page.
import { EngineClient, EngineClosedError, FrameGate } from '../src/runtime/engine-client';
import type { FrameResult, MethodCard, MethodInfo, ModelInfo, ModelSource } from '../src/runtime/engine-types';
import { centerCrop, preprocessFrame, toRGBA, type PixelFrame } from '../src/runtime/preprocess';
import type { BackendChoice } from '../src/runtime/backend';
import type { MethodName } from '../src/methods/registry';
import { fetchLabeledImages, FASHION_MNIST_CLASSES, type LabeledImages } from '../src/data/idx';
import { splitPools } from '../src/data/streams';
import { mulberry32, shuffle } from '../src/data/random';
import { EXTRA_CORRUPTION_NAMES as EXTRA_CORRUPTIONS, TEST_CORRUPTION_NAMES as CORRUPTIONS } from '../src/runtime/corruption-names';
import { CORRUPTION_REGIMES, REGIME_LABELS, type CorruptionRegime } from '../src/data/corruptions/regime';
import { LivePlot, Markers, RollingRate } from './charts';
import { DEFAULTS, knownMethod, methodChoices, readConfig, tunedOptions, writeConfig, type DemoConfig, type InputKind } from './config';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo page lacks #${id}`);
  return el as T;
};

const BASE = import.meta.env.BASE_URL;
const SHIPPED_MODEL = new URL(`${BASE}models/fmnist-vit/`, location.href).href;
/** The second shipped model, the GroupNorm ResNet: a model URL like any other (so ?model= shares it), with its own entry in the picker. */
const SHIPPED_RESNET_PATH = `${BASE}models/fmnist-resnet-gn/`;
const SHIPPED_RESNET = new URL(SHIPPED_RESNET_PATH, location.href).href;
/** The picker's shipped entries: each one's value of config.model ('' is the ViT) and its URL. */
const SHIPPED_CHOICES: Record<string, { model: string; url: string }> = {
  shipped: { model: '', url: SHIPPED_MODEL },
  'shipped-resnet': { model: SHIPPED_RESNET_PATH, url: SHIPPED_RESNET },
};
/** The picker's entry for a model from the page's config. */
const modelKindOf = (model: string) => Object.entries(SHIPPED_CHOICES).find(([, c]) => c.model === model)?.[0] ?? 'url';
const DATA_URL = `${BASE}data/fashion-mnist/`;
/** Rolling window of the accuracy and reliable-fraction plots, in frames. */
const WINDOW = 50;
/** Clean images for EATA's Fisher, from the held-out pool (as the benchmark). */
const FISHER_COUNT = 500;
/** Chart redraws at most this often (ms): 20 per second. */
const REDRAW_MS = 50;
/** The model-input preview is read back from the engine at most this often (ms). */
const PREVIEW_MS = 66;

const config: DemoConfig = readConfig(location.search);

// ---------------------------------------------------------------- state

let client: EngineClient | undefined;
let modelInfo: ModelInfo | undefined;
let methodInfo: MethodInfo | undefined;
/** The methods the engine runs (empty until its worker answers). */
let cards: MethodCard[] = [];
/** The current worker's cards, on the page (restart waits for them before it sets a method). */
let methodsReady: Promise<void> | undefined;
let modelSource: ModelSource = { kind: 'url', url: config.model ? new URL(config.model, location.href).href : SHIPPED_MODEL };
/** A dropped file's bytes, kept so a backend switch can load the model again (the engine gets a copy). */
let modelBytes: { weights: ArrayBuffer; config: unknown; name: string } | undefined;
/** The model the engine holds, to go back to when another fails to load. */
let loaded: { source: ModelSource; bytes: typeof modelBytes; url: string; info: string } | undefined;
let fmnist: LabeledImages | undefined;
let streamOrder: number[] = [];
let fisherPool: number[] = [];

/** Bumped whenever the engine, model, method or input changes: results of an older session are ignored. */
let session = 0;
let paused = false;
let done = false;
let cameraLabel: number | null = null;

interface Stats {
  submitted: number;
  frames: number;
  labeled: number;
  correct: number;
  refLabeled: number;
  refCorrect: number;
  agreeTotal: number;
  agree: number;
  updates: number;
  autoResets: number;
  manualResets: number;
  lastStep: number;
}
const freshStats = (): Stats => ({
  submitted: 0,
  frames: 0,
  labeled: 0,
  correct: 0,
  refLabeled: 0,
  refCorrect: 0,
  agreeTotal: 0,
  agree: 0,
  updates: 0,
  autoResets: 0,
  manualResets: 0,
  lastStep: -1,
});
let stats = freshStats();

const markers = new Markers();
const accRate = new RollingRate(WINDOW);
const refAccRate = new RollingRate(WINDOW);
const agreeRate = new RollingRate(WINDOW);
const reliableRate = new RollingRate(WINDOW);
const stepToFrame = new Map<number, number>();
const resultTimes: number[] = [];
/** [frame, numTensors, pending, numBytes] after each step, bounded; for the leak check. */
const tensorTrace: Array<[number, number, number, number]> = [];
let stepMs = NaN;
let frameMs = NaN;
let numTensors = NaN;
let lastPreviewAt = 0;
/** The newest result whose images are on screen (the prediction panel shows this one). */
let shown: FrameResult | undefined;
/** The images of `shown`, not drawn yet. */
let pendingImages: { clean: Float32Array; input: Float32Array; showSource: (() => void) | undefined } | undefined;
let chartRenders = 0;
let lastRender = 0;

// ---------------------------------------------------------------- charts

const charts = {
  acc: new LivePlot({
    el: $('chart-acc'),
    xLabel: 'frame',
    yLabel: 'accuracy (%)',
    yRange: [0, 100],
    markers,
    series: [
      { label: 'adapted', stroke: '#2563eb', width: 2 },
      { label: 'no adaptation', stroke: '#8a94a6', width: 1.5 },
      { label: 'agreement with no-adapt (clean frame)', stroke: '#0d9488', width: 1.5 },
    ],
  }),
  entropy: new LivePlot({
    el: $('chart-entropy'),
    xLabel: 'frame',
    yLabel: 'nats',
    yRange: (_min, max) => [0, Math.max(max, methodInfo?.maxEntropy ?? 2.3) * 1.02],
    markers,
    series: [
      // No-adapt first, so the adapted model's dots are drawn on top.
      { label: 'no adaptation', stroke: '#c3cad6', dots: true },
      { label: 'adapted', stroke: '#2563eb', dots: true },
      { label: 'E0 margin', stroke: '#d97706', dash: [6, 4], width: 1.5, spanGaps: true },
    ],
  }),
  grad: new LivePlot({
    el: $('chart-grad'),
    xLabel: 'frame',
    yLabel: '‖∇‖₂',
    yRange: (_min, max) => [0, max > 0 ? max * 1.1 : 1],
    markers,
    series: [{ label: 'gradient norm of an update', stroke: '#7c3aed', dots: true }],
  }),
  reliable: new LivePlot({
    el: $('chart-reliable'),
    xLabel: 'frame',
    yLabel: 'reliable (%)',
    yRange: [0, 100],
    markers,
    series: [{ label: 'reliable frames, last 50', stroke: '#16a34a', width: 2 }],
  }),
};
const allCharts = Object.values(charts);
new ResizeObserver(() => allCharts.forEach((c) => c.resize())).observe(document.querySelector('.charts')!);

// ---------------------------------------------------------------- messages

function say(text: string, kind: 'info' | 'error' = 'info'): void {
  const m = $('message');
  m.textContent = text;
  m.className = `message${kind === 'error' ? ' error' : ''}`;
  m.hidden = text === '';
  m.dataset.kind = kind;
}

function setState(s: 'loading' | 'running' | 'paused' | 'done' | 'error'): void {
  document.body.dataset.state = s;
}

// ---------------------------------------------------------------- controls

function fillControls(): void {
  const corruption = $<HTMLSelectElement>('corruption');
  const opt = (value: string, text: string) => Object.assign(document.createElement('option'), { value, textContent: text });
  const pretty = (n: string) => n.replace(/_/g, ' ');
  corruption.append(opt('none', 'none (clean)'));
  const test = Object.assign(document.createElement('optgroup'), { label: 'ImageNet-C test corruptions' });
  for (const c of CORRUPTIONS) test.append(opt(c, pretty(c)));
  const extra = Object.assign(document.createElement('optgroup'), { label: 'held-out corruptions' });
  for (const c of EXTRA_CORRUPTIONS) extra.append(opt(c, pretty(c)));
  const time = Object.assign(document.createElement('optgroup'), { label: 'changing over time' });
  time.append(opt('cycle', 'cycle through the 15, in turn'), opt('mixed', 'mixed: a random one per frame'));
  corruption.append(test, extra, time);
  $<HTMLSelectElement>('regime').append(...CORRUPTION_REGIMES.map((r) => opt(r, REGIME_LABELS[r])));
  // Until the engine's worker sends its methods, the picker holds only the one asked for (the URL's or the default).
  $<HTMLSelectElement>('method').append(opt(config.method, config.method));
  $<HTMLSelectElement>('method').disabled = true;

  for (const el of document.querySelectorAll<HTMLInputElement>('input[name=input]')) el.checked = el.value === config.input;
  corruption.value = config.corruption;
  $<HTMLInputElement>('severity').value = String(config.severity);
  $<HTMLSelectElement>('regime').value = config.regime;
  $<HTMLInputElement>('cycle').value = String(config.cycle);
  $<HTMLSelectElement>('method').value = config.method;
  $<HTMLInputElement>('lr').value = config.lr === null ? '' : String(config.lr);
  $<HTMLInputElement>('compare').checked = config.compare;
  $<HTMLSelectElement>('fps').value = String(config.fps);
  $<HTMLSelectElement>('invert').value = config.invert;
  $<HTMLSelectElement>('backend').value = config.backend;
  $<HTMLSelectElement>('model-kind').value = modelKindOf(config.model);
  $<HTMLInputElement>('model-url').value = config.model;
  syncControlClasses();
}

/** Fills the method picker from the engine's cards, and drops a method the engine does not run (a ?method= typo). */
function setMethodCards(next: MethodCard[]): void {
  cards = next;
  const picker = $<HTMLSelectElement>('method');
  picker.replaceChildren(...methodChoices(cards).map((c) => Object.assign(document.createElement('option'), { value: c.name, textContent: c.text })));
  picker.disabled = false;
  config.method = knownMethod(config.method, cards);
  picker.value = config.method;
  if (config.lr === null) $<HTMLInputElement>('lr').value = String(tunedOptions(methodCard(config.method)).lr);
  syncControlClasses();
}

/** A method's card; config.method is always one of them once the cards are in (knownMethod). */
function methodCard(method: MethodName): MethodCard {
  const card = cards.find((c) => c.name === method);
  if (!card) throw new Error(`the engine runs no method '${method}'`);
  return card;
}

/** How the demo names a method. */
const methodLabel = (method: MethodName): string => cards.find((c) => c.name === method)?.label ?? method;

function syncControlClasses(): void {
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

function fillLabelPicker(): void {
  const sel = $<HTMLSelectElement>('label');
  sel.replaceChildren(Object.assign(document.createElement('option'), { value: '', textContent: '— not set —' }));
  (modelInfo?.classNames ?? []).forEach((name, i) =>
    sel.append(Object.assign(document.createElement('option'), { value: String(i), textContent: `${i < 10 ? `${i} · ` : ''}${name}` })),
  );
  sel.value = cameraLabel === null ? '' : String(cameraLabel);
}

function setCameraLabel(label: number | null): void {
  cameraLabel = label !== null && modelInfo && label < modelInfo.numClasses ? label : null;
  $<HTMLSelectElement>('label').value = cameraLabel === null ? '' : String(cameraLabel);
}

function wireControls(): void {
  for (const el of document.querySelectorAll<HTMLInputElement>('input[name=input]')) {
    el.addEventListener('change', () => {
      if (el.checked) void switchInput(el.value as InputKind, true);
    });
  }
  $<HTMLSelectElement>('corruption').addEventListener('change', (e) => {
    config.corruption = (e.target as HTMLSelectElement).value;
    syncControlClasses();
  });
  $<HTMLInputElement>('severity').addEventListener('input', (e) => {
    config.severity = Number((e.target as HTMLInputElement).value);
    syncControlClasses();
  });
  $<HTMLSelectElement>('regime').addEventListener('change', (e) => {
    config.regime = (e.target as HTMLSelectElement).value as CorruptionRegime;
    syncControlClasses();
  });
  $<HTMLInputElement>('cycle').addEventListener('change', (e) => {
    const v = Number((e.target as HTMLInputElement).value);
    if (Number.isInteger(v) && v >= 10) config.cycle = v;
    syncControlClasses();
  });
  $<HTMLSelectElement>('method').addEventListener('change', (e) => {
    config.method = (e.target as HTMLSelectElement).value as MethodName;
    config.lr = null;
    $<HTMLInputElement>('lr').value = String(tunedOptions(methodCard(config.method)).lr);
    syncControlClasses();
    void guarded(() => restart('method'));
  });
  $<HTMLInputElement>('lr').addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    const v = Number(input.value);
    if (!(Number.isFinite(v) && v >= 0 && v <= 1)) {
      say(`The learning rate must be a number from 0 to 1; "${input.value}" is not.`, 'error');
      input.value = String(methodInfo?.lr ?? '');
      return;
    }
    config.lr = v;
    syncControlClasses();
    void guarded(async () => {
      if (client && methodInfo) methodInfo.lr = await client.setLr(v);
    });
  });
  $<HTMLInputElement>('compare').addEventListener('change', (e) => {
    config.compare = (e.target as HTMLInputElement).checked;
    syncControlClasses();
    void guarded(applyReference);
  });
  $<HTMLSelectElement>('fps').addEventListener('change', (e) => {
    const v = (e.target as HTMLSelectElement).value;
    config.fps = v === 'max' ? 'max' : Number(v);
    syncControlClasses();
  });
  $<HTMLSelectElement>('invert').addEventListener('change', (e) => {
    config.invert = (e.target as HTMLSelectElement).value as DemoConfig['invert'];
    syncControlClasses();
  });
  $<HTMLSelectElement>('label').addEventListener('change', (e) => {
    const v = (e.target as HTMLSelectElement).value;
    setCameraLabel(v === '' ? null : Number(v));
  });
  $<HTMLSelectElement>('backend').addEventListener('change', (e) => {
    config.backend = (e.target as HTMLSelectElement).value as BackendChoice;
    syncControlClasses();
    void guarded(() => restart('backend'));
  });
  $<HTMLSelectElement>('model-kind').addEventListener('change', (e) => {
    syncControlClasses();
    const shipped = SHIPPED_CHOICES[(e.target as HTMLSelectElement).value];
    if (shipped && (modelSource.kind !== 'url' || modelSource.url !== shipped.url)) {
      config.model = shipped.model;
      modelSource = { kind: 'url', url: shipped.url };
      modelBytes = undefined;
      syncControlClasses();
      void guarded(() => restart('model'));
    }
  });
  $('model-load').addEventListener('click', () => {
    const raw = $<HTMLInputElement>('model-url').value.trim();
    let url: string;
    try {
      url = new URL(raw, location.href).href;
    } catch {
      say(`"${raw}" is not a URL. Give the folder that holds model.safetensors and config.json, or the .safetensors file itself.`, 'error');
      return;
    }
    config.model = raw;
    modelSource = { kind: 'url', url };
    modelBytes = undefined;
    syncControlClasses();
    void guarded(() => restart('model'));
  });
  $<HTMLInputElement>('model-files').addEventListener('change', (e) => {
    const files = (e.target as HTMLInputElement).files;
    if (files) void guarded(() => useModelFiles([...files]));
  });
  // Files can be dropped anywhere on the page, not only on the drop zone.
  let depth = 0;
  addEventListener('dragenter', (e) => {
    if (e.dataTransfer?.types.includes('Files')) {
      depth++;
      document.body.classList.add('dragging');
    }
  });
  addEventListener('dragleave', () => {
    if (--depth <= 0) {
      depth = 0;
      document.body.classList.remove('dragging');
    }
  });
  addEventListener('dragover', (e) => e.preventDefault());
  addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    document.body.classList.remove('dragging');
    const files = [...(e.dataTransfer?.files ?? [])];
    if (files.length) {
      $<HTMLSelectElement>('model-kind').value = 'files';
      syncControlClasses();
      void guarded(() => useModelFiles(files));
    }
  });
  $('reset').addEventListener('click', () => void guarded(manualReset));
  $('clear').addEventListener('click', () => void guarded(() => restart('session')));
  $('pause').addEventListener('click', () => setPaused(!paused));
  addEventListener('keydown', (e) => {
    const t = e.target as HTMLElement;
    if (t.closest('input, select, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[0-9]$/.test(e.key)) setCameraLabel(Number(e.key));
    else if (e.key === 'Escape') setCameraLabel(null);
  });
}

/** Runs an action, showing its failure on the page instead of an uncaught rejection. */
async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (e) {
    if (e instanceof EngineClosedError) setState('error');
    say(describeError(e), 'error');
  }
}

function describeError(e: unknown): string {
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

// ---------------------------------------------------------------- engine

async function useModelFiles(files: File[]): Promise<void> {
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

/** Starts or updates the engine for what changed: a new worker for a backend, a new model, a new method, or only a new session. */
async function restart(what: 'backend' | 'model' | 'method' | 'session'): Promise<void> {
  const mine = ++session;
  stopSources();
  setState('loading');
  if (what === 'backend' || !client) {
    client?.terminate();
    client = new EngineClient();
    modelInfo = undefined;
    // Asked once per worker; handled here so that a worker closed before it answers leaves no unhandled rejection.
    const ready = client.methods().then(setMethodCards);
    ready.catch(() => undefined);
    methodsReady = ready;
    $('chip-backend').textContent = '…';
    const report = await client.init({ backend: config.backend });
    if (mine !== session) return;
    $('chip-backend').textContent = report.backend;
    const skipped = report.attempts.filter((a) => !a.ok).map((a) => `${a.backend}: ${a.reason}`);
    $('backend-info').textContent = `Running on ${report.backend}${skipped.length ? ` (skipped ${skipped.join('; ')})` : ''}.`;
  }
  const c = client;
  if (what === 'backend' || what === 'model' || !modelInfo) {
    try {
      await loadModel(c);
    } catch (e) {
      // A model that fails to load leaves the engine with the one it had: go on with that.
      if (what !== 'model' || !loaded || !modelInfo) throw e;
      ({ source: modelSource, bytes: modelBytes, url: config.model } = loaded);
      $<HTMLSelectElement>('model-kind').value = modelBytes ? 'files' : modelKindOf(config.model);
      syncControlClasses();
      $('model-info').textContent = loaded.info;
      say(describeError(e), 'error');
    }
    if (mine !== session) return;
  }
  await methodsReady;
  if (mine !== session) return;
  // A method that needs the model's source statistics (SAR + align) runs the one it extends (SAR) on a model without them
  // (dropped files, a URL with none beside it).
  const wanted = methodCard(config.method);
  if (wanted.needsSourceStats && modelInfo && !modelInfo.sourceStats) {
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
  methodInfo = await c.setMethod({ method: config.method, lr, options: tuned.options, ...(fisher ? { fisherImages: fisher } : {}) });
  await c.clearRecords();
  await applyReference();
  if (mine !== session) return;
  $<HTMLInputElement>('lr').value = String(methodInfo.lr);
  $<HTMLInputElement>('lr').disabled = spec.lr === null;
  if (spec.usesCleanImages && !methodInfo.fisher)
    say(`${spec.label} runs without its anti-forgetting (Fisher) term: there are no clean images for this model.`);
  resetView();
  done = false;
  setState(paused ? 'paused' : 'running');
  await startSource(mine);
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
    modelInfo = await c.loadModel(source);
  } finally {
    progress.hidden = true;
    c.onProgress = undefined;
  }
  const m = modelInfo;
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

/** The labeled stream's labels are Fashion-MNIST's; they mean something only to a 10-class Fashion-MNIST model. */
function streamLabelsApply(): boolean {
  return modelInfo !== undefined && modelInfo.numClasses === FASHION_MNIST_CLASSES.length;
}

function fisherImages(): { pixels: Float32Array; count: number } | undefined {
  if (!fmnist || !modelInfo || !streamLabelsApply()) return undefined;
  const { imageSize: s, inChannels: ch } = modelInfo;
  const ids = fisherPool.slice(0, FISHER_COUNT);
  const pixels = new Float32Array(ids.length * s * s * ch);
  ids.forEach((idx, i) => pixels.set(preprocessFrame(testImage(idx), { size: s, channels: ch }).pixels, i * s * s * ch));
  return { pixels, count: ids.length };
}

function needReference(): boolean {
  return config.compare || config.input === 'camera';
}

async function applyReference(): Promise<void> {
  if (client) await client.setReference(needReference());
  charts.acc.setShown(1, config.compare);
  charts.entropy.setShown(0, config.compare);
  $('pred-ref').hidden = !config.compare;
  $('acc-reference-row').hidden = !config.compare;
}

async function manualReset(): Promise<void> {
  if (!client) return;
  await client.reset();
  stats.manualResets++;
  markers.add(Math.max(stats.frames - 1, 0), true);
  allCharts.forEach((c) => c.touch());
}

function setPaused(p: boolean): void {
  paused = p;
  $('pause').textContent = p ? 'Resume' : 'Pause';
  if (done) return;
  setState(p ? 'paused' : 'running');
  if (!p) void startSource(session);
}

// ---------------------------------------------------------------- sources

function testImage(index: number): PixelFrame {
  const d = fmnist!;
  const px = d.height * d.width;
  return { data: d.images.subarray(index * px, (index + 1) * px), width: d.width, height: d.height, channels: 1 };
}

function frameSeed(n: number): number {
  return (Math.imul(config.seed + 1, 0x9e3779b1) ^ Math.imul(n + 1, 0x85ebca6b)) >>> 0;
}

function corruptionFor(n: number): { name: string; severity: number; seed: number; regime: CorruptionRegime } | null {
  const c = config.corruption;
  if (c === 'none') return null;
  let name = c;
  if (c === 'cycle') name = CORRUPTIONS[Math.floor(n / config.cycle) % CORRUPTIONS.length]!;
  else if (c === 'mixed') name = CORRUPTIONS[Math.floor(mulberry32(frameSeed(n) ^ 0x5bd1e995)() * CORRUPTIONS.length)]!;
  return { name, severity: config.severity, seed: frameSeed(n), regime: config.regime };
}

let video: HTMLVideoElement | undefined;
let camera: MediaStream | undefined;
let cameraGate: FrameGate<() => Captured | undefined> | undefined;
let cameraFrameCount = 0;
const grabCanvas = document.createElement('canvas');
const grab = grabCanvas.getContext('2d', { willReadFrequently: true })!;

interface Captured {
  /** The model-sized clean frame (sent to the engine, which takes the buffer). */
  pixels: Float32Array;
  label: number | null;
  tag: number;
  /** Draws the frame's source panel, when it is the one on screen. */
  showSource?: () => void;
}

function stopSources(): void {
  cameraGate?.clear();
  cameraGate = undefined;
}

async function switchInput(kind: InputKind, byUser: boolean): Promise<void> {
  config.input = kind;
  for (const el of document.querySelectorAll<HTMLInputElement>('input[name=input]')) el.checked = el.value === kind;
  syncControlClasses();
  if (kind === 'stream') releaseCamera();
  if (byUser) say('');
  await guarded(async () => {
    if (client && modelInfo) await restart('session');
  });
}

function releaseCamera(): void {
  camera?.getTracks().forEach((t) => t.stop());
  camera = undefined;
  if (video) video.srcObject = null;
  $('crop-box').hidden = true;
}

async function startSource(mine: number): Promise<void> {
  if (paused || done || mine !== session) return;
  if (config.input === 'camera') {
    const ok = camera !== undefined || (await openCamera());
    if (mine !== session) return;
    if (!ok) {
      // Fall back to the labeled stream; the message from openCamera says why.
      config.input = 'stream';
      for (const el of document.querySelectorAll<HTMLInputElement>('input[name=input]')) el.checked = el.value === 'stream';
      syncControlClasses();
      await restart('session');
      return;
    }
    runCamera(mine);
  } else {
    void runStream(mine);
  }
}

async function openCamera(): Promise<boolean> {
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
      void switchInput('stream', false);
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
  if (!video || !modelInfo || video.videoWidth === 0) return undefined;
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
  const invert = config.invert === 'on' ? true : config.invert === 'off' || modelInfo.inChannels === 3 ? false : 'auto';
  const r = preprocessFrame({ data: img.data, width: w, height: h, channels: 4 }, { size: modelInfo.imageSize, channels: modelInfo.inChannels, invert });
  const note = `crop · ${modelInfo.inChannels === 1 ? 'gray' : 'RGB'} · ${modelInfo.imageSize}×${modelInfo.imageSize}${r.inverted ? ' · inverted' : ''}`;
  return { pixels: r.pixels, label: cameraLabel, tag: cameraFrameCount, showSource: () => ($('clean-note').textContent = note) };
}

function runCamera(mine: number): void {
  // Two frames in flight, as the stream at "as fast as it adapts": one slow frame no longer drops the next camera frame.
  const gate = new FrameGate<() => Captured | undefined>(async (capture) => {
    const frame = capture();
    if (frame && mine === session) await processFrame(frame, mine);
  }, 2);
  gate.onError = (e) => say(describeError(e), 'error');
  cameraGate = gate;
  const v = video!;
  const onFrame = () => {
    if (mine !== session || paused || done || cameraGate !== gate) return;
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

/** The stream loop that may run: a pause and quick resume must not leave two loops feeding the engine. */
let streamLoop = 0;

async function runStream(mine: number): Promise<void> {
  if (!fmnist || !modelInfo) return;
  const loop = ++streamLoop;
  const labels = streamLabelsApply();
  $('source-note').textContent = labels ? '' : '(labels do not apply to this model)';
  // At "as fast as it adapts" two frames are in flight: the engine starts the next as soon as it has
  // answered one, instead of idling through the message round trip and this page's handling.
  const inFlight = new Set<Promise<boolean>>();
  const depth = () => (config.fps === 'max' ? 2 : 1);
  while (mine === session && loop === streamLoop && !paused && !done) {
    if (config.frames > 0 && stats.submitted >= config.frames) {
      await Promise.all(inFlight);
      break;
    }
    const t0 = performance.now();
    const n = stats.submitted;
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
    const r = preprocessFrame(image, { size: modelInfo.imageSize, channels: modelInfo.inChannels });
    const sent = processFrame({ pixels: r.pixels, label: labels ? label : null, tag: index, showSource }, mine);
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

/**
 * Where a frame's time goes, summed over the frames since the last reset
 * (window.wildttaDemo.timing(); the frame-path rows of `npm run bench:step`):
 * in the engine (its preparation and its adapter step) and in this page's
 * handling of the result; with the wall time, frames per second. (Nothing is
 * summed per round trip: two frames are in flight at once, so their round
 * trips overlap and would count the same milliseconds twice.)
 */
const timing = { frames: 0, engineMs: 0, prepareMs: 0, stepMs: 0, pageMs: 0, since: performance.now() };
function resetTiming(): void {
  Object.assign(timing, { frames: 0, engineMs: 0, prepareMs: 0, stepMs: 0, pageMs: 0, since: performance.now() });
}

/** Sends one frame to the engine and takes in its result; false when the engine refused it. */
async function processFrame(frame: Captured, mine: number): Promise<boolean> {
  const c = client;
  const m = modelInfo;
  if (!c || !m) return false;
  const n = stats.submitted++;
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
    if (mine !== session) return false;
    if (e instanceof EngineClosedError) setState('error');
    say(describeError(e), 'error');
    return false;
  }
  if (mine !== session) return false;
  const tBack = performance.now();
  takeResult(res);
  if (res.preview && clean) {
    // The three images and the prediction on screen all belong to this frame; they are drawn with the
    // next animation frame (render), so drawing never holds up a step.
    shown = res;
    pendingImages = { clean, input: res.preview, showSource: frame.showSource };
  }
  const tDone = performance.now();
  timing.frames++;
  timing.engineMs += res.ms.total;
  timing.prepareMs += res.ms.prepare;
  timing.stepMs += res.ms.step;
  timing.pageMs += tDone - tBack;
  if (config.frames > 0 && stats.frames >= config.frames && !done) {
    done = true;
    const late = await c.flush();
    if (mine === session) {
      takeUpdates(late);
      setState('done');
      say(`Finished: ${stats.frames} frames, as asked (frames=${config.frames} in the URL). Press New session to run again.`);
    }
  }
  return true;
}

// ---------------------------------------------------------------- results

function takeResult(r: FrameResult): void {
  stats.frames++;
  stats.lastStep = r.step;
  stepToFrame.set(r.step, r.frame);
  if (stepToFrame.size > 256) stepToFrame.delete(stepToFrame.keys().next().value!);
  const t = performance.now();
  resultTimes.push(t);
  while (resultTimes.length > 2 && t - resultTimes[0]! > 2000) resultTimes.shift();
  stepMs = Number.isNaN(stepMs) ? r.ms.step : 0.9 * stepMs + 0.1 * r.ms.step;
  frameMs = Number.isNaN(frameMs) ? r.ms.total : 0.9 * frameMs + 0.1 * r.ms.total;
  numTensors = r.numTensors;
  tensorTrace.push([r.frame, r.numTensors, r.pending ? 1 : 0, r.numBytes]);
  if (tensorTrace.length > 5000) tensorTrace.shift();

  let acc: number | null = null;
  let refAcc: number | null = null;
  let agree: number | null = null;
  if (r.label !== null) {
    stats.labeled++;
    const ok = r.predicted === r.label;
    if (ok) stats.correct++;
    acc = 100 * accRate.push(ok);
    if (r.reference) {
      stats.refLabeled++;
      const refOk = r.reference.input.predicted === r.label;
      if (refOk) stats.refCorrect++;
      refAcc = 100 * refAccRate.push(refOk);
    }
  } else if (r.reference) {
    stats.agreeTotal++;
    const same = r.predicted === r.reference.clean.predicted;
    if (same) stats.agree++;
    agree = 100 * agreeRate.push(same);
  }
  const reliable = 100 * reliableRate.push(r.reliable);
  charts.acc.push(r.frame, [acc, refAcc, agree]);
  charts.entropy.push(r.frame, [config.compare ? (r.reference?.input.entropy ?? null) : null, r.entropy, methodInfo?.margin ?? null]);
  charts.grad.push(r.frame, [null]);
  charts.reliable.push(r.frame, [reliable]);
  takeUpdates(r.updates);
}

function takeUpdates(reports: FrameResult['updates']): void {
  for (const u of reports) {
    if (u.updated) stats.updates++;
    const x = stepToFrame.get(u.step);
    if (x === undefined) continue;
    if (u.kept > 0 && Number.isFinite(u.gradNorm)) charts.grad.set(x, 0, u.gradNorm);
    if (u.reset) {
      stats.autoResets++;
      markers.add(x, false);
      allCharts.forEach((c) => c.touch());
    }
  }
}

function resetView(): void {
  stats = freshStats();
  shown = undefined;
  pendingImages = undefined;
  markers.clear();
  for (const r of [accRate, refAccRate, agreeRate, reliableRate]) r.clear();
  stepToFrame.clear();
  resultTimes.length = 0;
  tensorTrace.length = 0;
  stepMs = NaN;
  frameMs = NaN;
  allCharts.forEach((c) => c.clear());
  $('pred-method').textContent = methodLabel(config.method);
  const labeled = config.input === 'stream' ? streamLabelsApply() : true;
  $('acc-method-name').textContent = `${methodLabel(config.method)} accuracy${labeled ? '' : ' (no labels)'}`;
  $('acc-caption').textContent = config.input === 'camera' ? '(%, last 50 frames; no label set: agreement instead)' : '(% of the last 50 labeled frames)';
  charts.acc.setLabel(0, methodLabel(config.method));
  charts.entropy.setLabel(1, methodLabel(config.method));
  charts.acc.setShown(2, config.input === 'camera');
}

function drawPixels(id: string, pixels: Float32Array, width: number, channels: 1 | 3, height = width): void {
  const cv = $<HTMLCanvasElement>(id);
  if (cv.width !== width || cv.height !== height) {
    cv.width = width;
    cv.height = height;
  }
  cv.getContext('2d')!.putImageData(new ImageData(toRGBA(pixels, width, height, channels), width, height), 0, 0);
}

// ---------------------------------------------------------------- rendering

const pct = (num: number, den: number) => (den > 0 ? `${((100 * num) / den).toFixed(1)}% (${num}/${den})` : '–');
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : String(n);
}

function className(i: number): string {
  return modelInfo?.classNames[i] ?? `class ${i}`;
}

function render(now: number): void {
  requestAnimationFrame(render);
  if (now - lastRender < REDRAW_MS) return;
  lastRender = now;
  for (const c of allCharts) if (c.render()) chartRenders++;

  const fps = resultTimes.length > 1 ? ((resultTimes.length - 1) * 1000) / (resultTimes.at(-1)! - resultTimes[0]!) : NaN;
  const recent = resultTimes.length > 0 && now - resultTimes.at(-1)! < 2000;
  $('chip-fps').textContent = recent && Number.isFinite(fps) ? fps.toFixed(1) : '–';
  $('chip-step-ms').textContent = Number.isNaN(stepMs) ? '–' : `${stepMs.toFixed(0)} · frame ${frameMs.toFixed(0)}`;
  $('chip-steps').textContent = String(stats.lastStep + 1);
  $('chip-dropped').textContent = config.input === 'camera' ? String(cameraGate?.dropped ?? 0) : '0 (stream waits)';
  $('chip-tensors').textContent = Number.isNaN(numTensors) ? '–' : String(numTensors);

  const accEl = $('acc-method');
  accEl.textContent = pct(stats.correct, stats.labeled);
  accEl.dataset.correct = String(stats.correct);
  accEl.dataset.total = String(stats.labeled);
  const refEl = $('acc-reference');
  refEl.textContent = pct(stats.refCorrect, stats.refLabeled);
  refEl.dataset.correct = String(stats.refCorrect);
  refEl.dataset.total = String(stats.refLabeled);
  const agreeEl = $('agree');
  $('agree-row').hidden = stats.agreeTotal === 0;
  agreeEl.textContent = pct(stats.agree, stats.agreeTotal);
  agreeEl.dataset.agree = String(stats.agree);
  agreeEl.dataset.total = String(stats.agreeTotal);
  $('updates').textContent = `${stats.updates} · ${stats.autoResets}${stats.manualResets ? ` + ${stats.manualResets} by hand` : ''}`;

  const images = pendingImages;
  if (images && modelInfo) {
    pendingImages = undefined;
    images.showSource?.();
    drawPixels('clean-canvas', images.clean, modelInfo.imageSize, modelInfo.inChannels);
    drawPixels('input-canvas', images.input, modelInfo.imageSize, modelInfo.inChannels);
  }
  const r = shown;
  if (r) {
    $('pred-class').textContent = className(r.predicted);
    $('pred-conf').textContent = `${(100 * r.confidence).toFixed(0)}%`;
    $('pred-entropy').textContent = r.entropy.toFixed(2);
    $('pred-bar').style.width = `${(100 * r.confidence).toFixed(1)}%`;
    $('true-label').textContent = r.label === null ? (config.input === 'camera' ? 'not set (0–9)' : 'n/a for this model') : className(r.label);
    if (r.reference) {
      $('ref-class').textContent = className(r.reference.input.predicted);
      $('ref-conf').textContent = `${(100 * r.reference.input.confidence).toFixed(0)}%`;
    }
    const c = r.corruption;
    $('input-note').textContent = c
      ? `${c.name.replace(/_/g, ' ')} · severity ${c.severity}${config.corruption === 'cycle' || config.corruption === 'mixed' ? ` (${config.corruption})` : ''}`
      : 'no corruption';
  }
}

// ---------------------------------------------------------------- test and scripting hook

declare global {
  interface Window {
    wildttaDemo?: unknown;
  }
}

/** Plain data about the running session (the tests read it through window.wildttaDemo.state()). */
const demoState = () => ({
  state: document.body.dataset.state,
  input: config.input,
  method: config.method,
  backend: $('chip-backend').textContent,
  session,
  steps: stats.lastStep + 1,
  ...stats,
  dropped: cameraGate?.dropped ?? 0,
  cameraFrames: cameraFrameCount,
  chartRenders,
  points: {
    accuracy: charts.acc.ring.count(0) + charts.acc.ring.count(2),
    entropy: charts.entropy.ring.count(1),
    gradNorm: charts.grad.ring.count(0),
    reliable: charts.reliable.ring.count(0),
  },
  message: $('message').hidden ? '' : $('message').textContent,
});
export type DemoState = ReturnType<typeof demoState>;

window.wildttaDemo = {
  state: demoState,
  tensorTrace: () => tensorTrace.slice(),
  timing: () => ({ ...timing, wallMs: performance.now() - timing.since }),
  resetTiming,
  records: () => client?.records(),
  memory: () => client?.memory(),
  client: () => client,
  defaults: DEFAULTS,
};

// ---------------------------------------------------------------- start

async function main(): Promise<void> {
  fillControls();
  wireControls();
  requestAnimationFrame(render);
  const data = fetchLabeledImages(DATA_URL).then((d) => {
    fmnist = d;
    const pools = splitPools(d.labels, FASHION_MNIST_CLASSES.length);
    streamOrder = shuffle(pools.evaluation, mulberry32(config.seed));
    fisherPool = pools.clean;
  });
  try {
    await data;
  } catch (e) {
    say(`The Fashion-MNIST test images could not be loaded (${(e as Error).message}); only the webcam works.`, 'error');
  }
  await guarded(() => restart('backend'));
}

void main();
