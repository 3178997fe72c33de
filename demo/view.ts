// The view: the four live charts, the scores, the prediction panel and the
// top bar's figures, fed by the session's results and redrawn at most every
// REDRAW_MS (never from inside a step).
import type { FrameResult } from '../src/runtime/engine-types';
import { LivePlot, Markers } from './charts';
import { RollingRate } from './ring';
import { $, drawPixels } from './dom';
import { cameraGate } from './camera';
import { methodLabel } from './methods';
import { config, freshStats, live, streamLabelsApply } from './state';

/** Rolling window of the accuracy and reliable-fraction plots, in frames. */
const WINDOW = 50;

/** Chart redraws at most this often (ms): 20 per second. */
const REDRAW_MS = 50;

export const markers = new Markers();
const accRate = new RollingRate(WINDOW);
const refAccRate = new RollingRate(WINDOW);
const agreeRate = new RollingRate(WINDOW);
const reliableRate = new RollingRate(WINDOW);
const stepToFrame = new Map<number, number>();
const resultTimes: number[] = [];
/** [frame, numTensors, pending, numBytes] after each step, bounded; for the leak check. */
export const tensorTrace: Array<[number, number, number, number]> = [];
let stepMs = NaN;
let frameMs = NaN;
let numTensors = NaN;
/** The newest result whose images are on screen (the prediction panel shows this one). */
let shown: FrameResult | undefined;
/** The images of `shown`, not drawn yet. */
let pendingImages: { clean: Float32Array; input: Float32Array; showSource: (() => void) | undefined } | undefined;
export let chartRenders = 0;
let lastRender = 0;

/** Puts a result and its images on screen with the next redraw. */
export function showLater(result: FrameResult, images: NonNullable<typeof pendingImages>): void {
  shown = result;
  pendingImages = images;
}

// ---------------------------------------------------------------- charts

export const charts = {
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
    yRange: (_min, max) => [0, Math.max(max, live.methodInfo?.maxEntropy ?? 2.3) * 1.02],
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
export const allCharts = Object.values(charts);
new ResizeObserver(() => allCharts.forEach((c) => c.resize())).observe(document.querySelector('.charts')!);

// ---------------------------------------------------------------- results

export function takeResult(r: FrameResult): void {
  live.stats.frames++;
  live.stats.lastStep = r.step;
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
    live.stats.labeled++;
    const ok = r.predicted === r.label;
    if (ok) live.stats.correct++;
    acc = 100 * accRate.push(ok);
    if (r.reference) {
      live.stats.refLabeled++;
      const refOk = r.reference.input.predicted === r.label;
      if (refOk) live.stats.refCorrect++;
      refAcc = 100 * refAccRate.push(refOk);
    }
  } else if (r.reference) {
    live.stats.agreeTotal++;
    const same = r.predicted === r.reference.clean.predicted;
    if (same) live.stats.agree++;
    agree = 100 * agreeRate.push(same);
  }
  const reliable = 100 * reliableRate.push(r.reliable);
  charts.acc.push(r.frame, [acc, refAcc, agree]);
  charts.entropy.push(r.frame, [config.compare ? (r.reference?.input.entropy ?? null) : null, r.entropy, live.methodInfo?.margin ?? null]);
  charts.grad.push(r.frame, [null]);
  charts.reliable.push(r.frame, [reliable]);
  takeUpdates(r.updates);
}

export function takeUpdates(reports: FrameResult['updates']): void {
  for (const u of reports) {
    if (u.updated) live.stats.updates++;
    const x = stepToFrame.get(u.step);
    if (x === undefined) continue;
    if (u.kept > 0 && Number.isFinite(u.gradNorm)) charts.grad.set(x, 0, u.gradNorm);
    if (u.reset) {
      live.stats.autoResets++;
      markers.add(x, false);
      allCharts.forEach((c) => c.touch());
    }
  }
}

export function resetView(): void {
  live.stats = freshStats();
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

// ---------------------------------------------------------------- rendering

const pct = (num: number, den: number) => (den > 0 ? `${((100 * num) / den).toFixed(1)}% (${num}/${den})` : '–');

function className(i: number): string {
  return live.modelInfo?.classNames[i] ?? `class ${i}`;
}

export function render(now: number): void {
  requestAnimationFrame(render);
  if (now - lastRender < REDRAW_MS) return;
  lastRender = now;
  for (const c of allCharts) if (c.render()) chartRenders++;

  const fps = resultTimes.length > 1 ? ((resultTimes.length - 1) * 1000) / (resultTimes.at(-1)! - resultTimes[0]!) : NaN;
  const recent = resultTimes.length > 0 && now - resultTimes.at(-1)! < 2000;
  $('chip-fps').textContent = recent && Number.isFinite(fps) ? fps.toFixed(1) : '–';
  $('chip-step-ms').textContent = Number.isNaN(stepMs) ? '–' : `${stepMs.toFixed(0)} · frame ${frameMs.toFixed(0)}`;
  $('chip-steps').textContent = String(live.stats.lastStep + 1);
  $('chip-dropped').textContent = config.input === 'camera' ? String(cameraGate?.dropped ?? 0) : '0 (stream waits)';
  $('chip-tensors').textContent = Number.isNaN(numTensors) ? '–' : String(numTensors);

  const accEl = $('acc-method');
  accEl.textContent = pct(live.stats.correct, live.stats.labeled);
  accEl.dataset.correct = String(live.stats.correct);
  accEl.dataset.total = String(live.stats.labeled);
  const refEl = $('acc-reference');
  refEl.textContent = pct(live.stats.refCorrect, live.stats.refLabeled);
  refEl.dataset.correct = String(live.stats.refCorrect);
  refEl.dataset.total = String(live.stats.refLabeled);
  const agreeEl = $('agree');
  $('agree-row').hidden = live.stats.agreeTotal === 0;
  agreeEl.textContent = pct(live.stats.agree, live.stats.agreeTotal);
  agreeEl.dataset.agree = String(live.stats.agree);
  agreeEl.dataset.total = String(live.stats.agreeTotal);
  $('updates').textContent = `${live.stats.updates} · ${live.stats.autoResets}${live.stats.manualResets ? ` + ${live.stats.manualResets} by hand` : ''}`;

  const images = pendingImages;
  if (images && live.modelInfo) {
    pendingImages = undefined;
    images.showSource?.();
    drawPixels('clean-canvas', images.clean, live.modelInfo.imageSize, live.modelInfo.inChannels);
    drawPixels('input-canvas', images.input, live.modelInfo.imageSize, live.modelInfo.inChannels);
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
