// The model: the shipped ones, a URL or dropped files, loaded into the
// engine with its progress shown, and the one the engine holds (to go back
// to when another fails to load).
import type { EngineClient } from '../src/runtime/engine-client';
import type { ModelSource } from '../src/runtime/engine-types';
import { fillLabelPicker } from './camera';
import { $, describeError, say, showProgress } from './dom';
import { config, live, syncControlClasses } from './state';

const BASE = import.meta.env.BASE_URL;
const SHIPPED_MODEL = new URL(`${BASE}models/fmnist-vit/`, location.href).href;
/** The second shipped model, the GroupNorm ResNet: a model URL like any other (so ?model= shares it), with its own entry in the picker. */
const SHIPPED_RESNET_PATH = `${BASE}models/fmnist-resnet-gn/`;
const SHIPPED_RESNET = new URL(SHIPPED_RESNET_PATH, location.href).href;
/** The third, the ConvNeXt (a LayerNorm CNN), likewise. */
const SHIPPED_CONVNEXT_PATH = `${BASE}models/fmnist-convnext/`;
const SHIPPED_CONVNEXT = new URL(SHIPPED_CONVNEXT_PATH, location.href).href;
/** The picker's shipped entries: each one's value of config.model ('' is the ViT) and its URL. */
export const SHIPPED_CHOICES: Record<string, { model: string; url: string }> = {
  shipped: { model: '', url: SHIPPED_MODEL },
  'shipped-resnet': { model: SHIPPED_RESNET_PATH, url: SHIPPED_RESNET },
  'shipped-convnext': { model: SHIPPED_CONVNEXT_PATH, url: SHIPPED_CONVNEXT },
};
/** The picker's entry for a model from the page's config. */
export const modelKindOf = (model: string) => Object.entries(SHIPPED_CHOICES).find(([, c]) => c.model === model)?.[0] ?? 'url';

export let modelSource: ModelSource = { kind: 'url', url: config.model ? new URL(config.model, location.href).href : SHIPPED_MODEL };
/** A dropped file's bytes, kept so a backend switch can load the model again (the engine gets a copy). */
let modelBytes: { weights: ArrayBuffer; config: unknown; name: string } | undefined;
/** The model the engine holds, to go back to when another fails to load. */
let loaded: { source: ModelSource; bytes: typeof modelBytes; url: string; info: string } | undefined;

/** Makes dropped files the model to load; false (with a message) when they are not a model. */
export async function chooseModelFiles(files: File[]): Promise<boolean> {
  const weights = files.find((f) => f.name.endsWith('.safetensors'));
  const cfg = files.find((f) => f.name.endsWith('.json'));
  if (!weights) {
    say('Drop a .safetensors file (timm layout), with its config.json if it has one.', 'error');
    return false;
  }
  let parsed: unknown;
  if (cfg) {
    try {
      parsed = JSON.parse(await cfg.text());
    } catch (e) {
      say(`${cfg.name} is not valid JSON: ${(e as Error).message}`, 'error');
      return false;
    }
  }
  modelBytes = { weights: await weights.arrayBuffer(), config: parsed, name: weights.name };
  modelSource = { kind: 'bytes', weights: modelBytes.weights, config: parsed, name: weights.name };
  config.model = '';
  syncControlClasses();
  return true;
}

/** Makes the model at `url` the one to load (`model` is how the page's URL names it). */
export function chooseModelUrl(model: string, url: string): void {
  config.model = model;
  modelSource = { kind: 'url', url };
  modelBytes = undefined;
  syncControlClasses();
}

/** After a model failed to load: the page goes back to naming the one the engine still holds (false: there is none). */
export function backToLoaded(e: unknown): boolean {
  if (!loaded || !live.modelInfo) return false;
  ({ source: modelSource, bytes: modelBytes, url: config.model } = loaded);
  $<HTMLSelectElement>('model-kind').value = modelBytes ? 'files' : modelKindOf(config.model);
  syncControlClasses();
  $('model-info').textContent = loaded.info;
  say(describeError(e), 'error');
  return true;
}

/** Loads the chosen model into the engine, showing the download's progress in the side panel and over the image panels. */
export async function loadModel(c: EngineClient): Promise<void> {
  const progress = $<HTMLProgressElement>('model-progress');
  progress.hidden = false;
  progress.removeAttribute('value');
  $('model-info').textContent = 'Loading the model…';
  showProgress('Downloading the model…');
  c.onProgress = (loaded, total) => {
    if (total) progress.value = loaded / total;
    const text = `${mb(loaded)}${total ? ` of ${mb(total)}` : ''}`;
    $('model-info').textContent = `Loading the model… ${text}`;
    showProgress(`Downloading the model… ${text}`, total ? loaded / total : undefined);
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
        : m.name === SHIPPED_CONVNEXT
          ? 'Shipped Fashion-MNIST ConvNeXt'
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

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : String(n);
}
