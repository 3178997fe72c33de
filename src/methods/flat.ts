import * as tf from '@tensorflow/tfjs-core';
import { concatByLayout, splitFlat, type GradientLayout } from '../kernels';

/**
 * The adapted tensors laid end to end as one vector [P], in the parameter
 * map's order. The update arithmetic (gradient norm, SAM's ascent, SGD with
 * momentum, gating, reset) runs on that vector: a handful of kernels per step
 * instead of a handful per tensor (ViT-B/16 adapts 36 tensors).
 */
export class FlatLayout implements GradientLayout {
  readonly names: string[] = [];
  readonly shapes: number[][] = [];
  readonly offsets: number[] = [];
  readonly sizes: number[] = [];
  readonly total: number;

  constructor(params: ReadonlyMap<string, tf.Tensor>) {
    let offset = 0;
    for (const [name, p] of params) {
      this.names.push(name);
      this.shapes.push(p.shape);
      this.offsets.push(offset);
      this.sizes.push(p.size);
      offset += p.size;
    }
    this.total = offset;
  }

  /** One vector of `values` by name (every name must be present). Inside tf.tidy. */
  concat(values: ReadonlyMap<string, tf.Tensor>): tf.Tensor1D {
    return concatByLayout(values, this);
  }

  /** The pieces of a flat vector by name, in their own shapes (one split kernel). Inside tf.tidy. */
  split(flat: tf.Tensor1D): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    if (this.names.length === 0) return out;
    const pieces = this.names.length > 1 ? splitFlat(flat, this.sizes) : [flat];
    this.names.forEach((n, i) => out.set(n, this.shapes[i]!.length === 1 ? pieces[i]! : tf.reshape(pieces[i]!, this.shapes[i]!)));
    return out;
  }
}
