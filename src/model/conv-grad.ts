// The input gradient of a convolution with a frozen filter, as stride-1
// convolutions of dy with pieces of the filter, and the store that keeps
// those pieces for a model's lifetime.
//
// wasm runs conv2d through XNNPACK and conv2DBackpropInput (tfjs's own input
// gradient) as a plain loop, about 3× slower at the shipped ResNet's sizes.
// At a stride s > 1, spreading dy out with zeros and running one stride-1
// conv over it costs s² times the forward's multiply-adds (all but one in s²
// of them by a zero); split by the phase of the input position instead, each
// of the s² phases is a small stride-1 conv of dy itself with the filter taps
// that land there, and together they cost what the forward does.
import * as tf from '@tensorflow/tfjs-core';
import { interleavePhases } from '../kernels';

/**
 * Filters derived from a model's frozen filters for its backward (flipped,
 * split by phase), made at the first backward (inference never pays their
 * memory) and kept until the model releases them.
 */
export class DerivedFilters {
  private readonly made = new Map<string, tf.Tensor4D>();

  get(key: string, make: () => tf.Tensor4D): tf.Tensor4D {
    let f = this.made.get(key);
    if (f === undefined) this.made.set(key, (f = tf.keep(tf.tidy(make))));
    return f;
  }

  dispose(): void {
    for (const t of this.made.values()) t.dispose();
    this.made.clear();
  }
}

/**
 * One axis of one phase a (the input positions i = s·t + a): the filter taps
 * that reach it, in the order a stride-1 correlation of dy reads them, and
 * the padding (negative: a crop) of dy that lines that correlation up.
 *
 * From y[o] = Σ_m x[s·o − p + m]·w[m]: dx[i] = Σ dy[o]·w[m] over s·o + m = i + p,
 * so m ≡ (i + p) mod s. With r = (a + p) mod s and c = ⌊(a + p)/s⌋ the taps
 * are m_j = r + s·j (j < J) and dx[s·t + a] = Σ_j dy[t + c − j]·w[m_j].
 */
export function phaseAxis(k: number, s: number, p: number, inLength: number, outLength: number, a: number) {
  const r = (a + p) % s;
  const c = Math.floor((a + p) / s);
  const J = r < k ? Math.ceil((k - r) / s) : 0;
  const taps = Array.from({ length: J }, (_, j) => r + s * (J - 1 - j));
  const length = a < inLength ? Math.ceil((inLength - a) / s) : 0;
  const before = J - 1 - c;
  return { taps, length, before, after: length + J - 1 - before - outLength };
}

/**
 * dL/dx of y = conv2d(x, w, stride s, padding p), x of `inputShape`, from
 * dy: per phase (a_h, a_w) a stride-1 conv2d of dy with the taps that reach
 * that phase (channels swapped, in `filters` under `key`), the phases then
 * woven into the input's grid (interleavePhases). At stride 1 there is one
 * phase, the whole filter turned 180°.
 */
export function convInputGrad(
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  inputShape: readonly number[],
  s: number,
  p: number,
  filters: DerivedFilters,
  key: string,
): tf.Tensor4D {
  const [kh, kw, inC] = w.shape;
  const [B, H, W] = inputShape as [number, number, number];
  const [, O, Q] = dy.shape;
  const phases: tf.Tensor4D[] = [];
  for (let ah = 0; ah < s; ah++) {
    const h = phaseAxis(kh, s, p, H, O, ah);
    for (let aw = 0; aw < s; aw++) {
      const v = phaseAxis(kw, s, p, W, Q, aw);
      phases.push(onePhase(dy, w, h, v, filters, `${key}:${ah},${aw}`, [B, h.length, v.length, inC]));
    }
  }
  return s === 1 ? phases[0]! : interleavePhases(phases, s, H, W);
}

type Axis = ReturnType<typeof phaseAxis>;

function onePhase(
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  h: Axis,
  v: Axis,
  filters: DerivedFilters,
  key: string,
  shape: [number, number, number, number],
): tf.Tensor4D {
  if (h.taps.length === 0 || v.taps.length === 0 || shape[1] === 0 || shape[2] === 0) return tf.zeros(shape);
  const [B, O, Q, C] = dy.shape;
  const sub = filters.get(key, () => tf.transpose(tf.gather(tf.gather(w, h.taps, 0), v.taps, 1), [0, 1, 3, 2]) as tf.Tensor4D);
  const crop = [Math.max(0, -h.before), Math.max(0, -h.after), Math.max(0, -v.before), Math.max(0, -v.after)] as const;
  const input = crop.some((n) => n > 0) ? tf.slice(dy, [0, crop[0], crop[2], 0], [B, O - crop[0] - crop[1], Q - crop[2] - crop[3], C]) : dy;
  return tf.conv2d(input, sub, 1, [
    [0, 0],
    [Math.max(0, h.before), Math.max(0, h.after)],
    [Math.max(0, v.before), Math.max(0, v.after)],
    [0, 0],
  ]);
}
