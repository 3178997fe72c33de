// In-page half of e2e/auto-backend.e2e.ts, imported into the harness page
// with import('/e2e/auto-backend-page.ts'): the engine's 'auto' start on this
// browser, and the measurement itself on candidates the test names (here every
// GPU is a software renderer, so 'auto' alone never has two to measure).
import * as tf from '@tensorflow/tfjs';
import { surveyBackends, type BackendName, type BackendReport } from '../src/runtime/backend';
import { chooseByMeasure, planAuto, shapeSignature } from '../src/runtime/auto-backend';
import { forgetChoices } from '../src/runtime/backend-memory';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import { Engine } from '../src/runtime/engine';
import { backboneFromFile, readModelFile } from '../src/model/load';

export interface AutoStart {
  /** The report init gave, before any model. */
  atInit: BackendReport;
  /** The report after the first model loaded. */
  afterLoad: BackendReport;
  /** tf.getBackend() after the load. */
  active: string;
  /** The first step's confidence: the model runs where it was put. */
  confidence: number;
}

/** An engine started with 'auto', a model loaded, one frame stepped. */
export async function autoStart(modelUrl: string): Promise<AutoStart> {
  const engine = new Engine();
  try {
    const atInit = await engine.init({ backend: 'auto', wasmPaths: WASM_PATHS });
    const info = await engine.loadModel({ kind: 'url', url: modelUrl });
    await engine.setMethod({ method: 'sar' });
    const frame = {
      data: new Float32Array(info.imageSize * info.imageSize).fill(0.5),
      width: info.imageSize,
      height: info.imageSize,
      channels: 1 as const,
      maxValue: 1,
    };
    const r = await engine.step({ frame });
    return { atInit, afterLoad: engine.backendReport(), active: tf.getBackend(), confidence: r.confidence };
  } finally {
    engine.dispose();
  }
}

export interface Measured {
  report: BackendReport;
  active: string;
  /** The chosen model's logits for a grey image, which must not depend on where it was measured. */
  logits: number[];
}

export interface MeasureRun {
  first: Measured;
  /** The same model again: the remembered choice, nothing measured. */
  second: Measured;
  /** After forgetChoices(): measured again. */
  third: Measured;
  /** tfjs tensors before the runs and after them (every model disposed). */
  numTensorsBefore: number;
  numTensorsAfter: number;
}

/** chooseByMeasure over `candidates` for the model at `modelUrl`, three times. */
export async function measureRun(modelUrl: string, candidates: BackendName[]): Promise<MeasureRun> {
  await forgetChoices();
  const attempts = await surveyBackends({ wasmPaths: WASM_PATHS });
  const file = await readModelFile(modelUrl);
  const signature = shapeSignature(file.tensors);
  const count = () =>
    tf
      .engine()
      .backendNames()
      .reduce((n, b) => n + (tf.engine().registry[b]?.numDataIds() ?? 0), 0);
  const numTensorsBefore = count();
  const once = async (): Promise<Measured> => {
    const { model, report } = await chooseByMeasure({ ...planAuto(attempts), candidates }, () => backboneFromFile(file), signature);
    const s = model.config.imageSize;
    const logits = tf.tidy(() => model.logits(tf.fill([1, s, s, model.config.inChannels], 0.5) as tf.Tensor4D));
    const values = Array.from(await logits.data());
    logits.dispose();
    model.dispose();
    return { report, active: tf.getBackend(), logits: values };
  };
  const first = await once();
  const second = await once();
  await forgetChoices();
  const third = await once();
  return { first, second, third, numTensorsBefore, numTensorsAfter: count() };
}
