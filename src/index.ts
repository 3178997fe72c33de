// wildtta's package entry (dist/wildtta.js, and the global `WildTTA` of
// dist/wildtta.iife.js): test-time adaptation of a ViT on a page's images.
//
//   const tta = await WildTTA.create({ model: 'models/fmnist-vit/', method: 'sar' });
//   const r = await tta.classify(video);            // r.label, r.confidence...
//   const loop = tta.attach(video, { onResult });   // loop.stop()
// tfjs-core registers no gradients by itself (the @tensorflow/tfjs umbrella
// does); EATA's Fisher and the autodiff paths need them. Imported here, in the
// entry, because a side-effect-only module would be tree-shaken away; and only
// in the browser entries (this, the worker bundle, the demo's worker): it is
// tfjs-core's ESM build, which bundlers load and Node cannot (Node code imports
// the umbrella instead).
import '@tensorflow/tfjs-core'; // first: the gradients' modules read its flags as they load
import '@tensorflow/tfjs-core/dist/register_all_gradients';
export { WildTTA } from './api/wildtta';
export type { CreateOptions, Classification, ClassifyOptions, AttachOptions, Attachment, WildTTAEvents, Progress } from './api/wildtta';
export type { ImageSource, TensorLike } from './api/sources';
export {
  WildTTAError,
  DisposedError,
  SourceError,
  StorageError,
  BackendError,
  BackendInUseError,
  EngineError,
  EngineClosedError,
  EngineStateError,
  FrameFormatError,
  ModelFormatError,
  HubIdError,
  InvalidInputError,
  StateFormatError,
  NonFiniteOutputError,
  WorkerError,
  DownloadError,
} from './api/errors';
export type { BackendChoice, BackendName, BackendReport, BackendAttempt, BackendProbe } from './runtime/backend';
export type { UpdateReport } from './methods/types';
export type { MethodName } from './methods/registry';
export type { ModelInfo, MethodInfo } from './runtime/engine-types';

// The IIFE's global is this module's namespace: `WildTTA.create(...)` must work
// on it as on the class, so the statics are re-exported as functions.
import { WildTTA as Cls } from './api/wildtta';
export const create: typeof Cls.create = (options) => Cls.create(options);
export const forget: typeof Cls.forget = (key) => Cls.forget(key);
export const clearCache: typeof Cls.clearCache = () => Cls.clearCache();
export const version = '0.2.0';
