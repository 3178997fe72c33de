import { initBackend, type BackendChoice } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import { loadViT } from '../src/model/load';
import { grayAccuracy } from '../src/model/evaluate';
import { fetchLabeledImages } from '../src/data/idx';

const $ = (id: string) => document.getElementById(id)!;

async function run(): Promise<void> {
  const button = $('run') as HTMLButtonElement;
  button.disabled = true;
  try {
    const report = await initBackend(($('backend') as HTMLSelectElement).value as BackendChoice, { wasmPaths: WASM_PATHS });
    $('chosen').textContent = report.backend;
    $('skipped').textContent = report.attempts.filter((a) => !a.ok).map((a) => `${a.backend}: ${a.reason}`).join('; ') || 'none skipped';
    const base = import.meta.env.BASE_URL;
    const model = await loadViT(`${base}models/fmnist-vit/`);
    const cfg = model.config;
    $('model').textContent = `ViT ${cfg.imageSize}×${cfg.imageSize}×${cfg.inChannels}, patch ${cfg.patchSize}, width ${cfg.width}, depth ${cfg.depth}, ${cfg.numClasses} classes`;
    const data = await fetchLabeledImages(`${base}data/fashion-mnist/`);
    const count = Number(($('count') as HTMLInputElement).value);
    const t0 = performance.now();
    const acc = await grayAccuracy(model, data.images, data.labels, { count, batch: 100 });
    const ms = performance.now() - t0;
    $('accuracy').textContent = `${(acc.accuracy * 100).toFixed(2)}% (${acc.correct}/${acc.total})`;
    $('speed').textContent = (ms / acc.total).toFixed(2);
    model.dispose();
  } catch (e) {
    $('log').textContent = `Error: ${(e as Error).message}`;
  } finally {
    button.disabled = false;
  }
}

$('run').addEventListener('click', () => void run());
