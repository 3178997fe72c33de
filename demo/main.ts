// The live demo: webcam or labeled stream → preprocessing → corruption →
// adaptation in a Web Worker, with live plots. UI only; the engine
// (src/runtime/engine*.ts) knows nothing about this page.
//
// The page's modules, each importing only those above it, so data flows one
// way: config (the settings and the URL), dom, ring and charts, state (what
// they share), methods (the engine's method cards), camera and inputs (the
// webcam, the labeled stream), scores (by segment), view (charts, panels),
// model (loading one), session (the engine, its restarts, each frame's
// trip), controls, and this file, which starts them and offers the test and
// scripting hook. A lower module that must reach up (a failed camera
// restarts the session) is handed a function by the one above.
import { DEFAULTS } from './config';
import { $, guarded, say, showProgress } from './dom';
import { cameraFrameCount, cameraGate } from './camera';
import { loadStreamImages } from './inputs';
import { restart, resetTiming, timing } from './session';
import { config, live } from './state';
import { chartRenders, charts, render, tensorTrace } from './view';
import { fillControls, wireControls } from './controls';

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
  /** The method chosen; `running` is the one the engine runs (they differ on a model that lacks what the chosen one needs). */
  method: config.method,
  running: live.method,
  backend: $('chip-backend').textContent,
  session: live.session,
  steps: live.stats.lastStep + 1,
  ...live.stats,
  ...live.score,
  segment: { n: live.segment.n, label: live.segment.label, firstX: live.segment.firstX },
  dropped: cameraGate?.dropped ?? 0,
  cameraFrames: cameraFrameCount,
  chartRenders,
  points: {
    accuracy: charts.acc.count('adapted') + charts.acc.count('agreement'),
    entropy: charts.entropy.count('adapted'),
    gradNorm: charts.grad.count('grad'),
    reliable: charts.reliable.count('reliable'),
  },
  /** The markers (resets, segments) each chart painted in its last redraw. */
  chartMarkers: Object.fromEntries(Object.entries(charts).map(([name, c]) => [name, c.drawn.map((m) => ({ ...m }))])),
  message: $('message').hidden ? '' : $('message').textContent,
});
export type DemoState = ReturnType<typeof demoState>;

window.wildttaDemo = {
  state: demoState,
  tensorTrace: () => tensorTrace.slice(),
  timing: () => ({ ...timing, wallMs: performance.now() - timing.since }),
  resetTiming,
  records: () => live.client?.records(),
  memory: () => live.client?.memory(),
  client: () => live.client,
  defaults: DEFAULTS,
};

// ---------------------------------------------------------------- start

async function main(): Promise<void> {
  fillControls();
  wireControls();
  requestAnimationFrame(render);
  showProgress('Loading the test images…');
  try {
    await loadStreamImages();
  } catch (e) {
    say(`The Fashion-MNIST test images could not be loaded (${(e as Error).message}); only the webcam works.`, 'error');
  }
  await guarded(() => restart('backend'));
}

void main();
