// The view: the four live charts, the prediction panel and the top bar's
// figures (the scores: scores.ts), fed by the session's results and redrawn
// at most every REDRAW_MS (never from inside a step).
import type { FrameResult } from '../src/runtime/engine-types';
import { LivePlot } from './charts';
import { $, drawPixels, hideProgress, progressShown } from './dom';
import { cameraGate, currentCameraLabel } from './camera';
import { methodLabel } from './methods';
import { markers, renderScores, scoreResult, scoreUpdate, startSegment, WINDOW } from './scores';
import { config, freshStats, live, showReference, streamLabelsApply } from './state';

/** Chart redraws at most this often (ms): 20 per second. */
const REDRAW_MS = 50;

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
      { key: 'adapted', label: 'adapted', stroke: '#2563eb', width: 2 },
      { key: 'reference', label: 'no adaptation', stroke: '#8a94a6', width: 1.5 },
      { key: 'agreement', label: 'agreement with no-adapt (clean frame)', stroke: '#0d9488', width: 1.5 },
    ],
  }),
  entropy: new LivePlot({
    el: $('chart-entropy'),
    xLabel: 'frame',
    yLabel: 'nats',
    yRange: (_min, max) => [0, Math.max(max, live.methodInfo?.maxEntropy ?? 2.3) * 1.02],
    markers,
    series: [
      // No-adapt first, so the adapted model's dots are drawn over them; E0 goes over both.
      { key: 'reference', label: 'no adaptation', stroke: '#c3cad6', dots: true },
      { key: 'adapted', label: 'adapted', stroke: '#2563eb', dots: true },
      { key: 'margin', label: 'E0 margin', stroke: '#d97706', dash: [6, 4], width: 2, spanGaps: true, onTop: true },
    ],
  }),
  grad: new LivePlot({
    el: $('chart-grad'),
    xLabel: 'frame',
    yLabel: '‖∇‖₂',
    yRange: (_min, max) => [0, max > 0 ? max * 1.1 : 1],
    markers,
    series: [{ key: 'grad', label: 'gradient norm of an update', stroke: '#7c3aed', dots: true }],
  }),
  reliable: new LivePlot({
    el: $('chart-reliable'),
    xLabel: 'frame',
    yLabel: 'reliable (%)',
    yRange: [0, 100],
    markers,
    series: [{ key: 'reliable', label: `reliable frames, last ${WINDOW}`, stroke: '#16a34a', width: 2 }],
  }),
};
export const allCharts = Object.values(charts);
new ResizeObserver(() => allCharts.forEach((c) => c.resize())).observe(document.querySelector('.charts')!);

// ---------------------------------------------------------------- results

/** Takes in the result of a frame sent during segment `segmentId` (live.segment.id). */
export function takeResult(r: FrameResult, segmentId: number): void {
  // Charts count the session's frames: the engine's own count starts over with each method.
  const x = live.stats.frames++;
  live.stats.lastStep = r.step;
  stepToFrame.set(r.step, x);
  if (stepToFrame.size > 256) stepToFrame.delete(stepToFrame.keys().next().value!);
  const t = performance.now();
  resultTimes.push(t);
  while (resultTimes.length > 2 && t - resultTimes[0]! > 2000) resultTimes.shift();
  stepMs = Number.isNaN(stepMs) ? r.ms.step : 0.9 * stepMs + 0.1 * r.ms.step;
  frameMs = Number.isNaN(frameMs) ? r.ms.total : 0.9 * frameMs + 0.1 * r.ms.total;
  numTensors = r.numTensors;
  tensorTrace.push([r.frame, r.numTensors, r.pending ? 1 : 0, r.numBytes]);
  if (tensorTrace.length > 5000) tensorTrace.shift();

  const s = scoreResult(r, x, segmentId);
  charts.acc.push(x, [s.acc, s.refAcc, s.agree]);
  charts.entropy.push(x, [showReference() ? (r.reference?.input.entropy ?? null) : null, r.entropy, live.methodInfo?.margin ?? null]);
  charts.grad.push(x, [null]);
  charts.reliable.push(x, [s.reliable]);
  takeUpdates(r.updates);
}

export function takeUpdates(reports: FrameResult['updates']): void {
  for (const u of reports) {
    const x = stepToFrame.get(u.step);
    if (x === undefined) continue;
    scoreUpdate(u, x);
    if (u.kept > 0 && Number.isFinite(u.gradNorm)) charts.grad.set(x, 'grad', u.gradNorm);
    if (u.reset) {
      markers.add(x, 'reset');
      allCharts.forEach((c) => c.touch());
    }
  }
}

/** Names the method running wherever the page shows it. */
function showMethod(): void {
  const name = methodLabel(live.method);
  $('pred-method').textContent = name;
  const labeled = config.input === 'stream' ? streamLabelsApply() : true;
  $('acc-method-name').textContent = `${name} accuracy${labeled ? '' : ' (no labels)'}`;
  charts.acc.setLabel('adapted', name);
  charts.entropy.setLabel('adapted', name);
  charts.acc.setShown('agreement', config.input === 'camera');
}

/** A new session: scores, charts and markers from zero, segment 1. */
export function resetView(): void {
  live.stats = freshStats();
  shown = undefined;
  pendingImages = undefined;
  stepToFrame.clear();
  resultTimes.length = 0;
  tensorTrace.length = 0;
  stepMs = NaN;
  frameMs = NaN;
  allCharts.forEach((c) => c.clear());
  startSegment(true);
  showMethod();
}

/** A new method in the same session: its steps count from zero, and a new segment starts; the charts go on. */
export function newMethodSegment(): void {
  live.stats.lastStep = -1;
  stepToFrame.clear();
  startSegment(false);
  showMethod();
}

/** The accuracy chart's caption: what it scores against, as it is now (a label key changes it). */
function accCaption(): string {
  if (config.input !== 'camera') return `(% of the last ${WINDOW} labeled frames)`;
  const label = currentCameraLabel();
  return label === null
    ? `(%, last ${WINDOW} frames; no label set: agreement instead)`
    : `(% of the last ${WINDOW} labeled frames; label set: ${className(label)})`;
}

// ---------------------------------------------------------------- rendering

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

  renderScores();
  const caption = accCaption();
  if ($('acc-caption').textContent !== caption) $('acc-caption').textContent = caption;

  const images = pendingImages;
  if (images && live.modelInfo) {
    pendingImages = undefined;
    images.showSource?.();
    drawPixels('clean-canvas', images.clean, live.modelInfo.imageSize, live.modelInfo.inChannels);
    drawPixels('input-canvas', images.input, live.modelInfo.imageSize, live.modelInfo.inChannels);
  }
  const r = shown;
  if (r) {
    // The load status gives way to the first prediction, in the same redraw.
    if (progressShown()) hideProgress();
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
