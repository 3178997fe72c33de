// The one entry point to every hand-written kernel. src/model and
// src/methods import ops from here only: each op runs the current backend's
// own implementation where its table has one (host/ for wasm and cpu, webgpu/
// for webgpu) and the tfjs-ops one (ops/) elsewhere. What each op computes is
// documented on the Kernels interface (types.ts); docs/contributing.md says
// how to add one.
import { installHost } from './host/table';
import { opsTable } from './ops/table';
import { entry, registerFallbacks } from './registry';
import { installWebgpu } from './webgpu/table';

// Explicit calls, not imports for their side effects: a bundler that takes the package's sideEffects list
// at its word drops imports of modules whose exports nobody uses.
registerFallbacks(opsTable);
installHost();
installWebgpu();

export type {
  AttentionShape,
  AttnSaved,
  BackwardArgs,
  BackwardWalk,
  BlockWeights,
  ConvBackwardArgs,
  ConvBackwardWalk,
  ConvGradOps,
  ConvPiece,
  EmbedWeights,
  GradOps,
  GnSaved,
  GradientLayout,
  GroupNormAttrs,
  InputRange,
  Kernels,
  Linear,
  LnSaved,
  RecenterSource,
  RecenterState,
} from './types';
export { hasOwnKernel } from './registry';
export { gemmThreadsNow, startGemmThreads } from './host/glue';
export { disposeLinear, savedTensors } from './ops/vit';
export { softmaxEntropy, l2Norm, recenterShift } from './ops/update';
export { concatByLayout } from './ops/backward';
export { convPiece } from './ops/conv-backward';

// The update arithmetic.
export const samAscent = entry('samAscent');
export const sgdMomentum = entry('sgdMomentum');
export const movingAverage = entry('movingAverage');
export const pick = entry('pick');
export const packScalars = entry('packScalars');
export const allFinite = entry('allFinite');
export const truthy = entry('truthy');
export const finiteFlag = entry('finiteFlag');
export const splitFlat = entry('splitFlat');

// Entropy.
export const softmaxAndEntropy = entry('softmaxAndEntropy');
export const entropyWithGrad = entry('entropyWithGrad');
export const entropyLoss = entry('entropyLoss');

// Alignment to the source.
export const inputAlign = entry('inputAlign');
export const recenterObserve = entry('recenterObserve');

// A transformer's pieces.
export const prepareLinear = entry('prepareLinear');
export const linear = entry('linear');
export const embed = entry('embed');
export const layerNorm = entry('layerNorm');
export const layerNormGrad = entry('layerNormGrad');
export const attention = entry('attention');
export const mlp = entry('mlp');
export const mlpGrad = entry('mlpGrad');
export const geluGrad = entry('geluGrad');
export const attentionGrad = entry('attentionGrad');
export const headsGrad = entry('headsGrad');
export const softmaxBackward = entry('softmaxBackward');
export const headsMerge = entry('headsMerge');
export const classRows = entry('classRows');
export const runBackward = entry('runBackward');

// A convolutional network's norm.
export const groupNorm = entry('groupNorm');
export const groupNormGrad = entry('groupNormGrad');
export const maxPoolGrad = entry('maxPoolGrad');
export const interleavePhases = entry('interleavePhases');
export const runConvBackward = entry('runConvBackward');
