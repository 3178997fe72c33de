// 'auto': the backend that runs this model fastest on this machine, measured
// rather than assumed. The order WebGPU → WebGL → WASM is right on a machine
// with a real GPU and wrong on one without: there the browser's WebGPU and
// WebGL are software renderers on the CPU (SwiftShader, llvmpipe), several
// times slower than the wasm backend on the same cores. So every backend is
// started, software renderers are set aside while wasm works, and when more
// than one candidate is left each runs the loaded model's forward and the
// fastest wins. The result is kept per origin (IndexedDB), keyed by the model's
// shapes and the machine's adapters, so a later visit does not measure again.
import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../model/backbone';
import { reportFor, type BackendAttempt, type BackendName, type BackendProbe, type BackendReport } from './backend';
import { recallChoice, rememberChoice } from './backend-memory';

export interface AutoPlan {
  attempts: BackendAttempt[];
  /** The backends worth measuring, in the order tried (the first is selected until the measurement). */
  candidates: BackendName[];
}

/** Which of the backends that work are worth measuring. */
export function planAuto(attempts: BackendAttempt[]): AutoPlan {
  const usable = attempts.filter((a) => a.ok);
  const wasm = usable.some((a) => a.backend === 'wasm');
  const gpus = usable.filter((a) => a.backend === 'webgpu' || a.backend === 'webgl');
  let candidates: BackendName[] = [...gpus.filter((a) => !a.software).map((a) => a.backend), ...(wasm ? ['wasm' as const] : [])];
  if (candidates.length === 0) candidates = gpus.map((a) => a.backend);
  if (candidates.length === 0) candidates = usable.map((a) => a.backend);
  for (const a of gpus)
    if (a.software && !candidates.includes(a.backend)) a.reason = `works, but on a software renderer (${a.adapter}), which is slower than wasm on the same CPU`;
  return { attempts, candidates };
}

/** The reason to show when there was nothing to measure. */
export function soleReason(plan: AutoPlan): string {
  const skipped = plan.attempts.filter((a) => a.backend !== plan.candidates[0]).map((a) => `${a.backend}: ${a.reason}`);
  return `the only fast backend here${skipped.length ? ` (${skipped.join('; ')})` : ''}`;
}

/**
 * Chooses among the plan's candidates for `file`'s model and selects the
 * winner; returns the model built on it (the measurement's own copy, not
 * built twice) and the report. `build` makes the model on the backend
 * selected when it is called.
 */
export async function chooseByMeasure(plan: AutoPlan, build: () => Backbone, signature: string): Promise<{ model: Backbone; report: BackendReport }> {
  const key = `${signature}|${environment(plan)}`;
  const remembered = await recallChoice(key);
  if (remembered !== undefined && plan.candidates.includes(remembered.backend)) {
    await tf.setBackend(remembered.backend);
    const why = `fastest for this model when measured on ${remembered.date} (${describe(remembered.probes)}), remembered on this origin`;
    return { model: build(), report: reportFor(remembered.backend, plan.attempts, why, remembered.probes) };
  }
  const probes: BackendProbe[] = [];
  let best: { model: Backbone; probe: BackendProbe } | undefined;
  for (const backend of plan.candidates) {
    await tf.setBackend(backend);
    const model = build();
    const probe = await timeForward(backend, model, best?.probe.ms);
    probes.push(probe);
    if (best === undefined || probe.ms < best.probe.ms) {
      best?.model.dispose();
      best = { model, probe };
    } else model.dispose();
  }
  await tf.setBackend(best!.probe.backend);
  await rememberChoice(key, { backend: best!.probe.backend, probes, date: new Date().toISOString().slice(0, 10) });
  return { model: best!.model, report: reportFor(best!.probe.backend, plan.attempts, `fastest for this model, measured now (${describe(probes)})`, probes) };
}

const describe = (probes: BackendProbe[]) => probes.map((p) => `${p.backend} ${p.ms < 10 ? p.ms.toFixed(1) : Math.round(p.ms)} ms`).join(', ');

/** What makes a measurement stale: the adapters, the browser and the cores. */
function environment(plan: AutoPlan): string {
  const nav = globalThis.navigator as Navigator | undefined;
  const gpus = plan.attempts.filter((a) => a.ok && a.adapter).map((a) => `${a.backend}=${a.adapter}`);
  return [plan.candidates.join(','), ...gpus, nav?.userAgent ?? '', nav?.hardwareConcurrency ?? ''].join('|');
}

/** Forward passes that make a measurement: the first (upload, compile) is not timed. */
const TIMED_RUNS = 3;

/**
 * The median time of a batch-1 forward on the running backend. A candidate
 * whose first forward alone takes more than 20 times the best median so far
 * (and over a second) is not timed further: it has lost, and its timed runs
 * would only make the page wait.
 */
async function timeForward(backend: BackendName, model: Backbone, bestMs: number | undefined): Promise<BackendProbe> {
  const { imageSize: s, inChannels: c } = model.config;
  const images = tf.fill([1, s, s, c], 0.5) as tf.Tensor4D;
  const run = async (): Promise<number> => {
    const t0 = performance.now();
    const logits = tf.tidy(() => model.forward(images, (n) => model.param(n)).logits);
    await logits.data();
    logits.dispose();
    return performance.now() - t0;
  };
  try {
    const firstMs = await run();
    if (bestMs !== undefined && firstMs > Math.max(1000, 20 * bestMs)) return { backend, ms: firstMs, firstMs };
    const times: number[] = [];
    for (let i = 0; i < TIMED_RUNS; i++) times.push(await run());
    times.sort((a, b) => a - b);
    return { backend, ms: times[Math.floor(times.length / 2)]!, firstMs };
  } finally {
    images.dispose();
  }
}

/** A short fingerprint of a model's architecture: its tensors' names and shapes. */
export function shapeSignature(shapes: Iterable<[string, { shape: readonly number[] }]>): string {
  // FNV-1a over the text: a key, not a security measure.
  let h = 0x811c9dc5;
  for (const [name, t] of shapes) {
    const text = `${name}:${t.shape.join('x')};`;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
