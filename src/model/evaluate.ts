import * as tf from '@tensorflow/tfjs-core';
import { grayBatch } from '../data/images';
import type { Backbone } from './backbone';

export interface AccuracyResult {
  correct: number;
  total: number;
  accuracy: number;
  predictions: Int32Array;
}

/** Top-1 accuracy of a model on gray uint8 images, `batch` at a time, no adaptation. */
export async function grayAccuracy(
  model: Backbone,
  images: Uint8Array,
  labels: Uint8Array,
  opts: { start?: number; count?: number; batch?: number; height?: number; width?: number } = {},
): Promise<AccuracyResult> {
  const start = opts.start ?? 0;
  const total = opts.count ?? labels.length - start;
  const batch = opts.batch ?? 250;
  const h = opts.height ?? model.config.imageSize;
  const w = opts.width ?? model.config.imageSize;
  const predictions = new Int32Array(total);
  let correct = 0;
  for (let i = 0; i < total; i += batch) {
    const n = Math.min(batch, total - i);
    const argmax = tf.tidy(() => tf.argMax(model.logits(grayBatch(images, start + i, n, h, w)), 1));
    const pred = (await argmax.data()) as Int32Array;
    argmax.dispose();
    for (let j = 0; j < n; j++) {
      predictions[i + j] = pred[j]!;
      if (pred[j] === labels[start + i + j]) correct++;
    }
  }
  return { correct, total, accuracy: correct / total, predictions };
}
