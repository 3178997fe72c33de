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
 * Below this many multiply-adds (H·W·kh·kw·in·out) a strided conv's input
 * gradient is one stride-1 conv over dy spread out with zeros (two kernels),
 * not one conv per phase and their weaving (s² + 1 kernels). The zeros waste
 * all but 1/s² of its arithmetic, which at this size costs less than the
 * kernels saved: on the shipped 28 px ResNet, whose strided convs are all
 * under 2²⁰, a SAR step runs 18 kernels fewer (207 → 189; the shipped
 * ConvNeXt 386 → 368). At 224 px (ResNet-50-GN, ConvNeXt-Atto) every
 * strided conv is over 2²⁵, and the arithmetic decides.
 */
export const DILATE_BELOW = 1 << 20;

/**
 * dL/dx of y = conv2d(x, w, stride s, padding p), x of `inputShape`, from
 * dy: per phase (a_h, a_w) a stride-1 conv2d of dy with the taps that reach
 * that phase (channels swapped, in `filters` under `key`), the phases then
 * woven into the input's grid (interleavePhases). At stride 1 there is one
 * phase, the whole filter turned 180°. A small one (under `dilateBelow`
 * multiply-adds) is one conv over dy spread out instead (`dilated`).
 */
export function convInputGrad(
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  inputShape: readonly number[],
  s: number,
  p: number,
  filters: DerivedFilters,
  key: string,
  dilateBelow = DILATE_BELOW,
): tf.Tensor4D {
  const [kh, kw, inC, outC] = w.shape;
  const [B, H, W] = inputShape as [number, number, number];
  if (s > 1 && H * W * kh * kw * inC * outC < dilateBelow) {
    const viaZeros = dilated(dy, w, H, W, s, p, filters, key);
    if (viaZeros) return viaZeros;
  }
  const [, O, Q] = dy.shape;
  const phases: Array<tf.Tensor4D | undefined> = [];
  for (let ah = 0; ah < s; ah++) {
    const h = phaseAxis(kh, s, p, H, O, ah);
    for (let aw = 0; aw < s; aw++) {
      const v = phaseAxis(kw, s, p, W, Q, aw);
      const shape: [number, number, number, number] = [B, h.length, v.length, inC];
      // interleavePhases takes a phase no tap reaches as zeros, but phase 0, which gives it the shapes, as a tensor.
      phases.push(onePhase(dy, w, h, v, filters, `${key}:${ah},${aw}`, shape) ?? (phases.length === 0 ? tf.zeros(shape) : undefined));
    }
  }
  return s === 1 ? phases[0]! : interleavePhases(phases, s, H, W);
}

/**
 * dx[i] = Σ_m z[i + p − m]·w[m] with z = dy spread out (z[s·o] = dy[o], zeros
 * between): a stride-1 correlation of z, padded by k − 1 − p before, with the
 * filter turned 180°. z is woven s·O long, so the padding after is
 * H + p − s·O; undefined where a padding would be negative (a crop), which
 * the phases handle.
 */
function dilated(dy: tf.Tensor4D, w: tf.Tensor4D, H: number, W: number, s: number, p: number, filters: DerivedFilters, key: string): tf.Tensor4D | undefined {
  const [kh, kw] = w.shape;
  const [, O, Q] = dy.shape;
  const pads = [kh - 1 - p, H + p - s * O, kw - 1 - p, W + p - s * Q] as const;
  if (pads.some((n) => n < 0)) return undefined;
  const z = interleavePhases([dy, ...Array<undefined>(s * s - 1).fill(undefined)], s, s * O, s * Q);
  const turned = filters.get(`${key}:turned`, () => tf.reverse(tf.transpose(w, [0, 1, 3, 2]), [0, 1]) as tf.Tensor4D);
  const dx = tf.conv2d(z, turned, 1, [
    [0, 0],
    [pads[0], pads[1]],
    [pads[2], pads[3]],
    [0, 0],
  ]);
  z.dispose();
  return dx;
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
): tf.Tensor4D | undefined {
  // No tap reaches it: zeros, which the caller leaves to interleavePhases.
  if (h.taps.length === 0 || v.taps.length === 0 || shape[1] === 0 || shape[2] === 0) return undefined;
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
