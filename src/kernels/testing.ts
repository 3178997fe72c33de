// For tests: the cpu backend under another name, with tfjs's own kernels but
// none of wildtta's, so that every op runs its tfjs-ops implementation
// (ops/), the path of a backend without a table of its own (webgl), on the
// CPU beside the host's kernels. Nothing in the library imports this file.
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

export const OPS_ONLY_BACKEND = 'cpu-ops-only';

/** Registers the backend once (tfjs's cpu kernels must be registered already: import the cpu backend first). */
export function registerOpsOnlyBackend(): void {
  if (tf.findBackendFactory(OPS_ONLY_BACKEND)) return;
  tf.registerBackend(OPS_ONLY_BACKEND, () => new MathBackendCPU(), -1);
  for (const k of tf.getKernelsForBackend('cpu')) {
    if (!k.kernelName.startsWith('Wildtta')) tf.registerKernel({ ...k, backendName: OPS_ONLY_BACKEND });
  }
}
