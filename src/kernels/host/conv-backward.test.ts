// The host's ConvGradOps (conv-backward.ts: what a ResNet's backward runs on
// inside one engine call) on wasm and cpu, op by op against the same ops on
// tensors (ops/conv-backward.ts and the tfjs ops); the whole walk is held to
// tf.grads by the ResNet's tests (model/resnet-gn.test.ts).
//
//   node --import tsx --test src/kernels/host/conv-backward.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { convPiece } from '..';
import { normOps } from '../ops/norm';
import { hostConvGradOps } from './conv-backward';
import { hostOf, type Made } from './glue';

const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

for (const backend of ['wasm', 'cpu']) {
  test(`${backend}: the host's conv-backward ops equal the tensor ops: crops and pads, weaving at strides 2 and 3, ReLU mask, mean spread, sums; nothing left behind`, async () => {
    await tf.setBackend(backend);
    const host = hostOf(tf.backend(), backend);
    const mine: tf.TensorInfo[] = [];
    const made: Made = (t) => {
      if (Array.isArray(t)) mine.push(...t);
      else mine.push(t as tf.TensorInfo);
      return t;
    };
    const ids = tf.backend().numDataIds();
    // Every tensor of the test's own goes with the scope; the ops' infos are freed by hand.
    tf.engine().startScope();
    const ops = hostConvGradOps(host, made, {}, () => undefined);
    const same = async (info: tf.TensorInfo, want: tf.Tensor, what: string) => {
      assert.deepEqual(info.shape, want.shape, `${what}: shape`);
      const w = await want.data();
      const got = host.values(info);
      let err = 0;
      for (let i = 0; i < w.length; i++) err = Math.max(err, Math.abs(got[i]! - w[i]!));
      assert.ok(err <= 1e-5, `${what}: off by ${err}`);
    };

    const x = rnd([2, 9, 8, 3], 1) as tf.Tensor4D;
    const filter = rnd([2, 3, 3, 4], 2) as tf.Tensor4D;
    // A negative padding crops x on that side (conv-grad.ts's phases do both).
    for (const pads of [
      [0, 0, 0, 0],
      [1, -1, 0, 2],
      [-2, 1, -1, -1],
      [2, 2, 1, 1],
    ] as const)
      await same(ops.conv(x, { filter, pads }), convPiece(x, { filter, pads }), `conv, pads ${pads.join(', ')}`);

    for (const s of [2, 3]) {
      const [H, W] = [7, 5];
      const shapes = Array.from({ length: s * s }, (_, i) => [2, Math.ceil((H - Math.floor(i / s)) / s), Math.ceil((W - (i % s)) / s), 3]);
      const phases = shapes.map((shape, i) => (i === 1 ? undefined : (rnd(shape, 10 + i) as tf.Tensor4D)));
      await same(ops.interleave(phases, s, H, W), normOps.interleavePhases(phases, s, H, W), `weaving at stride ${s}, phase 1 absent`);
    }

    const dy = rnd([2, 4, 3, 5], 20) as tf.Tensor4D;
    const y = tf.relu(rnd([2, 4, 3, 5], 21)) as tf.Tensor4D;
    await same(ops.reluGrad(dy, y), tf.mul(dy, tf.step(y)), 'ReLU mask');
    await same(ops.add(dy, y), tf.add(dy, y), 'sum');
    const pooled = rnd([2, 5], 22);
    await same(
      ops.spreadMean(pooled, [2, 4, 3, 5], tf.scalar(1 / 12)),
      tf.broadcastTo(tf.reshape(tf.div(pooled, 12), [2, 1, 1, 5]), [2, 4, 3, 5]),
      'mean spread',
    );
    await same(ops.zeros([2, 3, 1, 2]), tf.zeros([2, 3, 1, 2]), 'zeros');

    ops.free(...mine);
    tf.engine().endScope();
    assert.equal(tf.backend().numDataIds(), ids, 'buffers left');
  });
}
