// The update EATA and DeYO share: one gated SGD step on a weighted entropy
// of the kept samples, from the prediction's own forward.
import * as tf from '@tensorflow/tfjs-core';
import type { BackboneTape } from '../model/backbone';
import { allFinite, entropyLoss, l2Norm, pick } from '../kernels';
import { Adapter } from './adapter';
import { scatterKept } from './filters';
import { packStats } from './stats';

export abstract class WeightedEntropyAdapter extends Adapter {
  /**
   * One gated SGD step on Σ w·E / max(kept, 1) (+ `extra`), the loss of EATA
   * and DeYO, from the first forward's tape: w are per-sample weights of the
   * kept samples (0 for those a later filter dropped), E their entropies (the
   * weights are constants: no gradient flows through them). `extra` gives a
   * term of θ and its gradient. Nothing changes when no sample is kept or the
   * loss or gradient is not finite. Returns the stats vector. Inside tf.tidy.
   */
  protected weightedEntropyStep(
    logits: tf.Tensor2D,
    tape: BackboneTape,
    keep: number[],
    weights: tf.Tensor1D,
    kept: tf.Tensor,
    extra?: (theta: tf.Tensor1D) => { value: tf.Tensor; grad: tf.Tensor1D },
  ): tf.Tensor {
    const anyKept = tf.greater(kept, this.constant(0));
    const w = tf.div(scatterKept(weights, keep, logits.shape[0]), tf.maximum(kept, this.constant(1))) as tf.Tensor1D;
    const entropy = entropyLoss(logits, { weights: w });
    let loss: tf.Tensor = entropy.loss;
    let g = this.flatGrad(tape, entropy.dLogits);
    const theta = this.theta();
    if (extra) {
      const e = extra(theta);
      loss = tf.add(loss, e.value);
      g = tf.add(g, e.grad) as tf.Tensor1D;
    }
    const gradNorm = l2Norm(g);
    const finite = allFinite(loss, gradNorm);
    const gate = tf.logicalAnd(finite, anyKept);
    this.writeParams(this.sgd.step(theta, g, gate));
    return packStats({ updated: gate, kept, loss: pick(anyKept, loss, this.constant(NaN)), gradNorm, nonFinite: tf.logicalNot(finite) });
  }
}
