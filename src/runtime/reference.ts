// The frozen source model beside the adapted one: the norms as they were
// loaded (every other weight is shared with the running model), for the
// side-by-side comparison and for source statistics. Its forward on the
// clean and the input frame, and the input's pixels for the preview, ride in
// the adapter's own read: one GPU→CPU transfer per frame whatever is shown.
import * as tf from '@tensorflow/tfjs-core';
import { softmaxAndEntropy } from '../kernels';
import type { Backbone, ParamLookup } from '../model/backbone';
import type { Prediction } from './engine-types';

/** What a frame reads back beside its step. */
export interface Extras {
  reference: boolean;
  preview: boolean;
}

export class SourceReference {
  private readonly norms = new Map<string, tf.Tensor>();

  constructor(private readonly model: Backbone) {
    for (const [name, v] of model.variables) this.norms.set(name, tf.clone(v));
  }

  /** The source model's parameters: its norms as loaded, whatever an adapter has done since. */
  readonly param: ParamLookup = (name) => this.norms.get(name) ?? this.model.param(name);

  /**
   * The extras as one vector (undefined when none is asked): the source
   * model's probabilities and entropies on the clean and the input frame (as
   * one batch of two), then the input's pixels. The caller disposes it.
   */
  extras(clean: tf.Tensor4D, input: tf.Tensor4D, want: Extras): tf.Tensor | undefined {
    if (!want.reference && !want.preview) return undefined;
    return tf.tidy(() => {
      const parts: tf.Tensor[] = [];
      if (want.reference) {
        const { logits } = this.model.forward(tf.concat([clean, input]) as tf.Tensor4D, this.param);
        const { probabilities, entropies } = softmaxAndEntropy(logits);
        parts.push(tf.reshape(probabilities, [-1]), entropies);
      }
      if (want.preview) parts.push(tf.reshape(input, [-1]));
      return tf.concat(parts);
    });
  }

  /** The extras read back from `host` (the values of `extras`). */
  read(host: Float32Array, want: Extras): { reference?: { clean: Prediction; input: Prediction }; preview?: Float32Array } {
    const C = this.model.config.numClasses;
    const out: { reference?: { clean: Prediction; input: Prediction }; preview?: Float32Array } = {};
    let off = 0;
    if (want.reference) {
      out.reference = { clean: predictionOf(host, 0, C, host[2 * C]!), input: predictionOf(host, C, C, host[2 * C + 1]!) };
      off = 2 * C + 2;
    }
    if (want.preview) out.preview = host.slice(off);
    return out;
  }

  dispose(): void {
    for (const t of this.norms.values()) t.dispose();
    this.norms.clear();
  }
}

function predictionOf(host: ArrayLike<number>, offset: number, C: number, entropy: number): Prediction {
  let best = 0;
  for (let c = 1; c < C; c++) if (host[offset + c]! > host[offset + best]!) best = c;
  return { predicted: best, confidence: host[offset + best]!, entropy };
}
