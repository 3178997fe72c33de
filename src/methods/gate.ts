import * as tf from '@tensorflow/tfjs-core';
import { hasFusedKernel, runFusedKernel } from '../model/host-kernels';

/**
 * `ifTrue` where the boolean scalar `when` holds, else `ifFalse` (float
 * tensors of one shape). The choice stays on the device, so gating an update
 * on a later filter or a finiteness check costs no GPU→CPU read. Inside
 * tf.tidy.
 */
export function pick<T extends tf.Tensor>(when: tf.Tensor, ifTrue: T, ifFalse: T): T {
  if (hasFusedKernel('WildttaPick')) return runFusedKernel('WildttaPick', { when, a: ifTrue, b: ifFalse })[0] as T;
  return tf.where(ifTrue.rank === 0 ? when : tf.broadcastTo(when, ifTrue.shape), ifTrue, ifFalse) as T;
}
