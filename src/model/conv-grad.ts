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
import { convPiece, interleavePhases, type ConvGradOps, type ConvPiece } from '../kernels';

/**
 * Filters derived from a model's frozen filters for its backward (flipped,
 * split by phase), made when first needed (the ResNet's at its first
 * recording forward, the ConvNeXt's at its first backward; inference never
 * pays their memory) and kept until the model releases them.
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
 * under 2²⁰, a SAR step ran 18 kernels fewer (207 → 189, when each was an
 * engine call; the shipped ConvNeXt 386 → 368, on WebGPU still dispatches).
 * At 224 px (ResNet-50-GN, ConvNeXt-Atto) every strided conv is over 2²⁵,
 * and the arithmetic decides.
 */
export const DILATE_BELOW = 1 << 20;

/** How one conv's input gradient runs: stride-1 convs of dy (conv-grad's pieces), woven together where the stride is over 1. */
export interface ConvGradPlan {
  stride: number;
  /** The conv's input height and width. */
  height: number;
  width: number;
  /** dy spread out with zeros, then `pieces[0]` alone (`dilated`); else one piece per phase, undefined where no tap reaches it. */
  dilated: boolean;
  pieces: Array<ConvPiece | undefined>;
  /** Phase 0's shape, for the zeros that stand in where no tap reaches it. */
  phase0: [number, number, number, number];
}

/** What running a plan asks of the kernels: ConvGradOps' conv pieces, weaving and zeros. */
export type ConvPrims<T> = Pick<ConvGradOps<T>, 'conv' | 'interleave' | 'zeros' | 'free'>;

/**
 * The plan of dL/dx of y = conv2d(x, w, stride s, padding p), x of
 * `inputShape`, y of `outShape`: per phase (a_h, a_w) a stride-1 conv2d of
 * dy with the taps that reach that phase (channels swapped, made once into
 * `filters` under `key`), the phases then woven into the input's grid. At
 * stride 1 there is one phase, the whole filter turned 180°. A small one
 * (under `dilateBelow` multiply-adds) is one conv over dy spread out
 * instead (`dilatedPiece`). Made at the forward (inside tf.tidy): running
 * it then needs no op that makes a filter.
 */
export function convGradPlan(
  w: tf.Tensor4D,
  inputShape: readonly number[],
  outShape: readonly number[],
  s: number,
  p: number,
  filters: DerivedFilters,
  key: string,
  dilateBelow = DILATE_BELOW,
): ConvGradPlan {
  const [kh, kw, inC, outC] = w.shape;
  const [B, H, W] = inputShape as [number, number, number];
  const [, O, Q] = outShape as [number, number, number];
  const plan = (dilated: boolean, pieces: Array<ConvPiece | undefined>, phase0: [number, number, number, number]) => ({
    stride: s,
    height: H,
    width: W,
    dilated,
    pieces,
    phase0,
  });
  if (s > 1 && H * W * kh * kw * inC * outC < dilateBelow) {
    const piece = dilatedPiece(w, H, W, O, Q, s, p, filters, key);
    if (piece) return plan(true, [piece], [B, O, Q, outC]);
  }
  const pieces: Array<ConvPiece | undefined> = [];
  let phase0: [number, number, number, number] = [B, 0, 0, inC];
  for (let ah = 0; ah < s; ah++) {
    const h = phaseAxis(kh, s, p, H, O, ah);
    for (let aw = 0; aw < s; aw++) {
      const v = phaseAxis(kw, s, p, W, Q, aw);
      if (ah === 0 && aw === 0) phase0 = [B, h.length, v.length, inC];
      pieces.push(phasePiece(w, h, v, filters, `${key}:${ah},${aw}`));
    }
  }
  return plan(false, pieces, phase0);
}

/** dL/dx from dy by `plan`, on tensors or on the host's tensor infos. */
export function runConvGrad<T>(ops: ConvPrims<T>, dy: T, plan: ConvGradPlan): T {
  const { stride: s, height: H, width: W, pieces } = plan;
  if (plan.dilated) {
    const [, O, Q] = plan.phase0;
    const z = ops.interleave([dy, ...Array<undefined>(s * s - 1).fill(undefined)], s, s * O, s * Q);
    const dx = ops.conv(z, pieces[0]!);
    ops.free(z);
    return dx;
  }
  if (s === 1) return ops.conv(dy, pieces[0]!);
  // interleave takes a phase no tap reaches as zeros, but phase 0, which gives it the shapes, as a tensor.
  const phases = pieces.map((piece, i) => (piece ? ops.conv(dy, piece) : i === 0 ? ops.zeros(plan.phase0) : undefined));
  const dx = ops.interleave(phases, s, H, W);
  ops.free(...phases);
  return dx;
}

/** convGradPlan and runConvGrad on tensors at once: a conv's input gradient where the plan need not outlive it. */
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
  return runConvGrad(TENSOR_PRIMS, dy, convGradPlan(w, inputShape, dy.shape, s, p, filters, key, dilateBelow));
}

const TENSOR_PRIMS: ConvPrims<tf.Tensor4D> = {
  conv: convPiece,
  interleave: interleavePhases,
  zeros: (shape) => tf.zeros(shape as [number, number, number, number]),
  // Early, not at the tidy's end: on a GPU a 224 px ResNet's intermediates add up.
  free: (...ts) => tf.dispose(ts.filter((t) => t !== undefined)),
};

/**
 * dx[i] = Σ_m z[i + p − m]·w[m] with z = dy spread out (z[s·o] = dy[o], zeros
 * between): a stride-1 correlation of z, padded by k − 1 − p before, with the
 * filter turned 180°. z is woven s·O long, so the padding after is
 * H + p − s·O; undefined where a padding would be negative (a crop), which
 * the phases handle.
 */
function dilatedPiece(
  w: tf.Tensor4D,
  H: number,
  W: number,
  O: number,
  Q: number,
  s: number,
  p: number,
  filters: DerivedFilters,
  key: string,
): ConvPiece | undefined {
  const [kh, kw] = w.shape;
  const pads = [kh - 1 - p, H + p - s * O, kw - 1 - p, W + p - s * Q] as const;
  if (pads.some((n) => n < 0)) return undefined;
  return { filter: filters.get(`${key}:turned`, () => tf.reverse(tf.transpose(w, [0, 1, 3, 2]), [0, 1]) as tf.Tensor4D), pads };
}

type Axis = ReturnType<typeof phaseAxis>;

/** One phase's piece: its taps' filter and dy's padding (negative: a crop); undefined where no tap reaches it or it is empty. */
function phasePiece(w: tf.Tensor4D, h: Axis, v: Axis, filters: DerivedFilters, key: string): ConvPiece | undefined {
  if (h.taps.length === 0 || v.taps.length === 0 || h.length === 0 || v.length === 0) return undefined;
  const filter = filters.get(key, () => tf.transpose(tf.gather(tf.gather(w, h.taps, 0), v.taps, 1), [0, 1, 3, 2]) as tf.Tensor4D);
  return { filter, pads: [h.before, h.after, v.before, v.after] };
}
