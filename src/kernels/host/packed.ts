// The frozen weights in gemm.wat's layout, made once per Linear on first use
// and kept with it (Linear.derived, freed by disposeLinear): the forward's
// [in, out] and the backward's [out, in], each cut into panels of 8
// columns. Only where gemm.wat runs (tfjs-wasm's SIMD builds; on the
// threaded one once its workers have started): elsewhere no copy is made
// and the backend's products serve.
import * as tf from '@tensorflow/tfjs-core';
import type { Linear } from '../types';
import { hostOf, simdOn } from './glue';

/** B [K, N] as [N/8, K, 8]: for each panel of 8 columns, its rows one after another. N % 8 = 0. */
export function packColumns(b: tf.Tensor2D): tf.Tensor3D {
  const [K, N] = b.shape;
  return tf.transpose(tf.reshape(b, [K, N / 8, 8]), [1, 0, 2]);
}

/** Whether the backend now running has gemm.wat (and SIMD is on). */
export function gemmRuns(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  const host = hostOf(tf.backend(), tf.getBackend());
  return host.gemm !== null && host.gemmThreads() > 0 && simdOn(host);
}

function derivedPack(l: Linear, key: string, source: () => tf.Tensor2D): tf.Tensor3D | undefined {
  const kept = l.derived.get(key) as tf.Tensor3D | undefined;
  if (kept) return kept;
  if (!gemmRuns()) return undefined;
  const packed = tf.tidy(() => {
    const b = source();
    return b.shape[1] % 8 === 0 ? tf.keep(packColumns(b)) : undefined;
  });
  if (packed) l.derived.set(key, packed);
  return packed;
}

/** x·Wᵀ's weight, [in, out], packed (undefined where gemm.wat does not run or out % 8 ≠ 0). */
export const packedForward = (l: Linear) => derivedPack(l, 'gemm:in-out', () => tf.transpose(l.w));

/** Where packedBackward keeps a Linear's packed weight: the backward's walk reads it there, as no tensor can be made inside a kernel. */
export const PACKED_BACKWARD = 'gemm:out-in';

/** dy·W's weight, [out, in], packed (undefined where gemm.wat does not run or in % 8 ≠ 0). */
export const packedBackward = (l: Linear) => derivedPack(l, PACKED_BACKWARD, () => l.w);
