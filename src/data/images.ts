import * as tf from '@tensorflow/tfjs-core';

/** Gray uint8 images [n, h, w] (row-major, back to back) → float tensor [count, h, w, 1] in [0, 1]. */
export function grayBatch(images: Uint8Array, start: number, count: number, h: number, w: number): tf.Tensor4D {
  const px = h * w;
  const out = new Float32Array(count * px);
  const src = images.subarray(start * px, (start + count) * px);
  for (let i = 0; i < out.length; i++) out[i] = src[i]! / 255;
  return tf.tensor4d(out, [count, h, w, 1]);
}
