// Input alignment (input-align.ts) against a plain-array reference.
//
//   node --import tsx --test src/methods/input-align.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { InputAlignment } from './input-align';
import { opsTable } from '../kernels/ops/table';
import type { SourceStats } from '../model/source-stats';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

const ramp = (lo: number, hi: number) => Float32Array.from({ length: 101 }, (_, k) => lo + ((hi - lo) * k) / 100);
const stats = { inputMeanQuantiles: ramp(0.1, 0.6), inputStdQuantiles: ramp(0.15, 0.45) } as SourceStats;

function reference(x: Float32Array, a: InputAlignment): Float32Array {
  const m = x.reduce((s, v) => s + v, 0) / x.length;
  const sd = Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / x.length);
  const mt = Math.min(Math.max(m, a.meanRange[0]), a.meanRange[1]);
  const st = Math.min(Math.max(sd, a.stdRange[0]), a.stdRange[1]);
  return x.map((v) => Math.min(1, Math.max(0, (v - m) * (st / sd) + mt)));
}

test('ranges come from the stored percentiles at q and 1 − q', () => {
  const a = new InputAlignment(stats, { quantile: 0.05 });
  assert.ok(Math.abs(a.meanRange[0] - 0.125) < 1e-6 && Math.abs(a.meanRange[1] - 0.575) < 1e-6);
  assert.ok(Math.abs(a.stdRange[0] - 0.165) < 1e-6 && Math.abs(a.stdRange[1] - 0.435) < 1e-6);
  assert.throws(() => new InputAlignment(stats, { quantile: 0.5 }), RangeError);
});

test('in-range frames pass unchanged; washed-out, dark and bright frames follow the reference', () => {
  const a = new InputAlignment(stats);
  const frames = [
    tf.randomUniform([1, 8, 8, 1], 0, 1, 'float32', 1), // mean ≈ 0.5, std ≈ 0.29: in range
    tf.add(tf.mul(tf.randomUniform([1, 8, 8, 1], 0, 1, 'float32', 2), 0.05), 0.4), // low contrast
    tf.mul(tf.randomUniform([1, 8, 8, 1], 0, 1, 'float32', 3), 0.12), // dark and flat
    tf.add(tf.mul(tf.randomUniform([1, 8, 8, 1], 0, 1, 'float32', 4), 0.2), 0.8), // bright
  ];
  const batch = tf.concat(frames) as tf.Tensor4D;
  const out = tf.tidy(() => a.apply(batch)).dataSync();
  const input = batch.dataSync() as Float32Array;
  for (let b = 0; b < frames.length; b++) {
    const x = input.slice(b * 64, (b + 1) * 64);
    const want = reference(x, a);
    for (let i = 0; i < 64; i++) assert.ok(Math.abs(out[b * 64 + i]! - want[i]!) < 1e-5, `frame ${b} pixel ${i}: ${out[b * 64 + i]} vs ${want[i]}`);
    if (b === 0) for (let i = 0; i < 64; i++) assert.ok(Math.abs(out[i]! - x[i]!) < 1e-6, 'an in-range frame is unchanged');
    else
      assert.ok(
        want.some((v, i) => Math.abs(v - x[i]!) > 0.01),
        `frame ${b} is changed`,
      );
  }
  tf.dispose([...frames, batch]);
});

test('the host kernel and the tfjs-ops implementation agree', () => {
  const a = new InputAlignment(stats);
  const x = tf.concat([
    tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 5),
    tf.mul(tf.randomUniform([1, 8, 8, 1], 0, 1, 'float32', 6), 0.05),
    tf.fill([1, 8, 8, 1], 0.3),
  ]) as tf.Tensor4D;
  const fused = tf.tidy(() => a.apply(x));
  const ops = tf.tidy(() => opsTable.inputAlign(x, a.range));
  const err = tf.tidy(() => tf.max(tf.abs(tf.sub(fused, ops))).dataSync()[0]!);
  assert.ok(err < 1e-5, `max |Δ| ${err}`);
  tf.dispose([x, fused, ops]);
});
