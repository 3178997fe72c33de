// The engine's data types and the worker message protocol. Plain data only
// (numbers, strings, typed arrays), so everything crosses postMessage intact
// and the same types serve an engine on the page's own thread.
import type { BackendChoice, BackendReport } from './backend';
import type { PixelFrame } from './preprocess';
import type { UpdateReport } from '../methods/types';
import type { MethodName } from '../methods/registry';
import type { CorruptionRegime } from '../data/corruptions/regime';
import type { CachePolicy } from '../model/download-cache';

export type ModelSource =
  /** A folder URL (model.safetensors + config.json inside) or a .safetensors URL. */
  (
    | {
        kind: 'url';
        url: string;
        /** How the download cache trusts a cached copy (model/download-cache.ts); default 'revalidate', false: no cache. */
        cache?: CachePolicy;
      }
    /** The bytes of a model.safetensors file, and its config.json parsed, if given. */
    | { kind: 'bytes'; weights: ArrayBuffer; config?: unknown; name?: string }
    /** A File/Blob of a model.safetensors (streamed, not read whole), and its config.json parsed, if given. */
    | { kind: 'blob'; blob: Blob; config?: unknown; name?: string }
  ) & {
    /**
     * The model's source statistics (a source-stats.safetensors file's bytes,
     * or its URL); false: none. By default a URL model looks for
     * source-stats.safetensors beside its weights (none there is no error).
     */
    sourceStats?: ArrayBuffer | string | false;
  };

export interface ModelInfo {
  name: string;
  imageSize: number;
  inChannels: 1 | 3;
  numClasses: number;
  classNames: string[];
  /** 'vit', 'resnet-gn' or 'convnext' (model/backbone.ts). */
  family: string;
  /** The ViT's patch side; 0 for a family without patches. */
  patchSize: number;
  /** Width of the pooled feature the head reads. */
  width: number;
  /** ViT blocks, or a ResNet's stages and stem (the units a method's skipLastBlocks counts). */
  depth: number;
  /** Number of weights. */
  parameters: number;
  /** The source statistics loaded with the model (re-centering and alignment need them), or null. */
  sourceStats: { count: number; provenance: string } | null;
}

/** A method option: a number or switch, or a group of them (inputAlign: { quantile }, recenter: { decay }). */
export type MethodOptionValue = number | boolean | { [key: string]: number | boolean };

export interface MethodConfig {
  method: MethodName;
  lr?: number;
  /** Method-specific options (SAR's resetThreshold, EATA's dMargin...), passed to createAdapter. */
  options?: Record<string, MethodOptionValue>;
  /**
   * Clean in-distribution images for EATA's Fisher: `count` images of the
   * model's input size, [count, H, W, C] in [0, 1]. Without them EATA runs
   * without its anti-forgetting term.
   */
  fisherImages?: { pixels: Float32Array; count: number };
}

/** What a page needs to offer a method: its registry entry without its code (a page need not load tfjs for it). */
export interface MethodCard {
  name: MethodName;
  label: string;
  /** Its default learning rate; null: it does not learn. */
  lr: number | null;
  /** Whether it needs the model's source statistics. */
  needsSourceStats: boolean;
  /** Whether clean images (fisherImages) improve it. */
  usesCleanImages: boolean;
  /** The method it extends (what to run instead on a model that lacks what this one needs), or null. */
  extends: MethodName | null;
}

export interface MethodInfo {
  method: MethodName;
  lr: number;
  /** The entropy margin E0 of the method's reliable filter (nats). */
  margin: number;
  /** ln C, the largest possible entropy. */
  maxEntropy: number;
  /** EATA only: whether a Fisher was estimated. */
  fisher?: boolean;
}

export interface CorruptionSpec {
  name: string;
  severity: number;
  seed: number;
  /**
   * Whose constants: 'imagenet64' (make_imagenet_64_c.py, "paper strength",
   * the default when absent) or 'cifar' (make_cifar_c.py, mild).
   */
  regime?: CorruptionRegime;
}

export interface FrameInput {
  /**
   * The frame. When it is already the model's size and channel count with
   * values in [0, 1] (maxValue 1) it is used as it is; otherwise it is center
   * cropped, resized and converted (see preprocess.ts).
   */
  frame: PixelFrame;
  invert?: boolean | 'auto';
  cropFraction?: number;
  /** Applied to the model-sized frame, so severities mean what they mean in the benchmark. */
  corruption?: CorruptionSpec | null;
  /** The true class, when known; recorded with the prediction. */
  label?: number | null;
  /** The caller's own tag for the frame (e.g. the image's index in a dataset); recorded. */
  tag?: number;
  /** Send back the pixels the model saw (costs one more device→CPU read on GPU backends). */
  preview?: boolean;
}

export interface Prediction {
  predicted: number;
  confidence: number;
  entropy: number;
}

export interface FrameResult extends Prediction {
  /** The adapter's step index (restarts when the method changes). */
  step: number;
  /** Frames this engine has processed since its records were last cleared. */
  frame: number;
  label: number | null;
  tag: number | null;
  reliable: boolean;
  /** An update was queued from this frame. */
  adapting: boolean;
  /**
   * Every update outcome that reached the CPU since the previous result,
   * oldest first: usually the previous step's (the adapter reads it with this
   * step's prediction), plus any read by flush or reset in between.
   */
  updates: UpdateReport[];
  /** The frozen source model (no adaptation), when `reference` is on. */
  reference?: { clean: Prediction; input: Prediction };
  /** The five most likely classes, most likely first. */
  top: Array<{ cls: number; p: number }>;
  /** Wall time in the engine, milliseconds. */
  ms: { total: number; prepare: number; step: number };
  /** tf.memory().numTensors after the frame. */
  numTensors: number;
  /** tf.memory().numBytes after the frame (host and device). */
  numBytes: number;
  /** Whether an update of this adapter is still queued on the device (it holds one tensor). */
  pending: boolean;
  /** [H, W, C] pixels the model saw, in [0, 1] (when asked for). */
  preview?: Float32Array;
  corruption: CorruptionSpec | null;
}

/** What the engine remembers about each frame, for scoring independently of any UI. */
export interface FrameRecords {
  /** Oldest first; at most `capacity` frames (older ones are counted in `dropped`). */
  frame: number[];
  step: number[];
  label: number[];
  predicted: number[];
  /** The source model's prediction on the corrupted input / on the clean frame (-1 when no reference ran). */
  referenceInput: number[];
  referenceClean: number[];
  tag: number[];
  /** Records that fell out of the ring. */
  dropped: number;
  capacity: number;
}

export interface EngineMemory {
  numTensors: number;
  numBytes: number;
}

export interface InitOptions {
  backend: BackendChoice;
  wasmPaths?: string | Record<string, string>;
  /**
   * On WebGPU, copy the adapted state to CPU memory every this many steps
   * (default 20), so a lost device costs at most that many steps of
   * adaptation. 0 turns the copies (and so the restore) off.
   */
  snapshotEvery?: number;
}

/** A frame as an ImageBitmap (transferred to a worker, not copied), with the same options as FrameInput. */
export type BitmapFrameInput = Omit<FrameInput, 'frame'> & { bitmap: ImageBitmap };

/** Things that happen to the engine outside any call. */
export type EngineEvent =
  /** The GPU device went away; the engine is rebuilding itself. */
  | { type: 'deviceLost'; backend: string; reason: string; message: string }
  /**
   * The engine is back: on `backend` (the lost one when it could be restarted,
   * else the next in webgpu → webgl → wasm → cpu), with the model reloaded and
   * the adapted state of step `restoredStep` imported (null: there was no
   * snapshot yet, so it starts from the source weights).
   */
  | { type: 'recovered'; backend: string; previousBackend: string; restoredStep: number | null; lostSteps: number; ms: number }
  /** Recovery failed; calls fail until the engine is disposed. */
  | { type: 'recoveryFailed'; message: string };

/** Every operation: its argument and its result. */
export interface EngineOps {
  init: { args: InitOptions; result: BackendReport };
  /** The backend running now and why ('auto' settles it when the first model loads). */
  backend: { args: undefined; result: BackendReport };
  /** The methods this engine runs, in the registry's order. */
  methods: { args: undefined; result: MethodCard[] };
  loadModel: { args: ModelSource; result: ModelInfo };
  setMethod: { args: MethodConfig; result: MethodInfo };
  setLr: { args: number; result: number };
  setReference: { args: boolean; result: boolean };
  reset: { args: undefined; result: undefined };
  step: { args: FrameInput; result: FrameResult };
  /** Reads the last queued update; returns the reports not yet given out with a step result. */
  flush: { args: undefined; result: UpdateReport[] };
  records: { args: undefined; result: FrameRecords };
  clearRecords: { args: undefined; result: undefined };
  memory: { args: undefined; result: EngineMemory };
  /** The adapted state (scale/shift, optimizer and method state) as a safetensors file. */
  exportState: { args: undefined; result: Uint8Array };
  /**
   * Computes the model's source statistics from clean in-distribution images
   * ([count, H, W, C] in [0, 1] at the model's input size; labels optional),
   * uses them from now on (the next setMethod), and returns the file's bytes.
   */
  computeSourceStats: { args: { pixels: Float32Array; count: number; labels?: number[]; provenance?: string }; result: Uint8Array };
  importState: { args: Uint8Array; result: undefined };
  stepBitmap: { args: BitmapFrameInput; result: FrameResult };
  /** Test hook: destroys the WebGPU device, as a driver reset or a lost GPU would. */
  loseDevice: { args: undefined; result: undefined };
  dispose: { args: undefined; result: undefined };
}

export type EngineOp = keyof EngineOps;

export interface EngineRequest<K extends EngineOp = EngineOp> {
  id: number;
  op: K;
  args: EngineOps[K]['args'];
}

export interface SerializedError {
  name: string;
  message: string;
  /** The error's own fields that survive structured cloning (BackendError's attempts, NonFiniteOutputError's step and cause...). */
  detail?: Record<string, unknown>;
}

export type EngineResponse =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: SerializedError }
  | { event: 'progress'; loadedBytes: number; totalBytes: number | null; fromCache: boolean }
  | { event: 'update'; report: UpdateReport }
  | { event: 'engine'; data: EngineEvent };
