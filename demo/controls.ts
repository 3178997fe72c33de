// The controls in the side panel: filled from the settings, and each change
// written to the settings (and so to the URL) and handed to the session.
import type { BackendChoice } from '../src/runtime/backend';
import type { MethodName } from '../src/methods/registry';
import { CORRUPTIONS, EXTRA_CORRUPTIONS } from '../src/data/corruptions/names';
import { CORRUPTION_REGIMES, REGIME_LABELS, type CorruptionRegime } from '../src/data/corruptions/regime';
import { tunedOptions, type DemoConfig, type InputKind } from './config';
import { $, guarded, say } from './dom';
import { setCameraLabel } from './camera';
import { methodCard } from './methods';
import { modelKindOf, modelSource, SHIPPED_CHOICES } from './model';
import { startSegment } from './scores';
import { applyReference, manualReset, restart, setPaused, switchInput, useModelFiles, useModelUrl } from './session';
import { config, live, syncControlClasses } from './state';

export function fillControls(): void {
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

export function wireControls(): void {
  for (const el of document.querySelectorAll<HTMLInputElement>('input[name=input]')) {
    el.addEventListener('change', () => {
      if (el.checked) void switchInput(el.value as InputKind, true);
    });
  }
  // A new shift is scored as a new segment from the next frame on (the method's change restarts the session: below).
  const shift = <K extends 'corruption' | 'severity' | 'regime'>(key: K, value: DemoConfig[K]) => {
    if (config[key] === value) return;
    config[key] = value;
    syncControlClasses();
    if (live.modelInfo) startSegment(false);
  };
  $<HTMLSelectElement>('corruption').addEventListener('change', (e) => shift('corruption', (e.target as HTMLSelectElement).value));
  $<HTMLInputElement>('severity').addEventListener('input', (e) => shift('severity', Number((e.target as HTMLInputElement).value)));
  $<HTMLSelectElement>('regime').addEventListener('change', (e) => shift('regime', (e.target as HTMLSelectElement).value as CorruptionRegime));
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
      input.value = String(live.methodInfo?.lr ?? '');
      return;
    }
    config.lr = v;
    syncControlClasses();
    void guarded(async () => {
      if (live.client && live.methodInfo) live.methodInfo.lr = await live.client.setLr(v);
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
      void guarded(() => useModelUrl(shipped.model, shipped.url));
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
    void guarded(() => useModelUrl(raw, url));
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
  $('pause').addEventListener('click', () => setPaused(!live.paused));
  addEventListener('keydown', (e) => {
    const t = e.target as HTMLElement;
    if (t.closest('input, select, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[0-9]$/.test(e.key)) setCameraLabel(Number(e.key));
    else if (e.key === 'Escape') setCameraLabel(null);
  });
}
