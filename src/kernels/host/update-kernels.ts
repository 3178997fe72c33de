// The host kernels of the methods' arithmetic: softmax and entropy with its
// gradient, and the update on the flat vector of adapted values (SAM's ascent,
// gated SGD with momentum, moving averages, gates, finiteness, the stats
// vector), plus input alignment and feature re-centering. Each replaces four
// to thirteen tfjs kernels, most of them on scalars, where a kernel's
// bookkeeping is all its cost.
import type { HostKernel } from './glue';

/** Most scalars WildttaScalars packs. */
const MAX_SCALARS = 8;

/** log softmax of the row of z starting at o into logp (its length is the row's); returns the row's entropy. */
function rowLogSoftmax(z: Float32Array, o: number, logp: Float64Array): number {
  const C = logp.length;
  let max = -Infinity;
  for (let c = 0; c < C; c++) max = Math.max(max, z[o + c]!);
  let sum = 0;
  for (let c = 0; c < C; c++) sum += Math.exp(z[o + c]! - max);
  const logSum = Math.log(sum);
  let ent = 0;
  for (let c = 0; c < C; c++) {
    logp[c] = z[o + c]! - max - logSum;
    ent -= Math.exp(logp[c]!) * logp[c]!;
  }
  return ent;
}

/** The update kernels, by the name tfjs registers them under. */
export const updateKernels = {
  /**
   * Softmax, entropy and the entropy's gradient per row of logits [B, C]:
   * p [B, C], E = −Σ p·log p [B], dE/dz = −p·(log p + E) [B, C]. (tfjs's
   * logSoftmax alone is six kernels.)
   */
  WildttaSoftmaxEntropy: {
    inputs: ['logits'],
    outputs: ([s]) => [s!, [s![0]!], s!],
    compute([z], [p, e, g], [s]) {
      const B = s![0]!;
      const C = s![1]!;
      const logp = new Float64Array(C);
      for (let b = 0, o = 0; b < B; b++, o += C) {
        const ent = rowLogSoftmax(z!, o, logp);
        e![b] = ent;
        for (let c = 0; c < C; c++) {
          const pc = Math.exp(logp[c]!);
          p![o + c] = pc;
          g![o + c] = -pc * (logp[c]! + ent);
        }
      }
    },
  },

  /**
   * An entropy loss over rows of logits [B, C]: with E_b the entropy of row
   * b, the rows with E_b < margin (all rows when margin is absent), weighted
   * by `weights` [B] where given, L = Σ w_b·E_b, divided by the number of
   * those rows (at least 1) with `mean`. Outputs the entropies [B], L [1],
   * that count [1] and dL/dlogits [B, C].
   */
  WildttaEntropyLoss: {
    inputs: ['logits', 'weights?'],
    outputs: ([s]) => [[s![0]!], [1], [1], s!],
    compute([z, weights], [e, loss, count, g], [s], { margin, mean }) {
      const B = s![0]!;
      const C = s![1]!;
      const below = margin === undefined ? Infinity : (margin as number);
      // Every row's log softmax and entropy first: the weights need the count of rows below the margin.
      const logp = new Float64Array(B * C);
      const ents = new Float64Array(B);
      let n = 0;
      for (let b = 0, o = 0; b < B; b++, o += C) {
        ents[b] = rowLogSoftmax(z!, o, logp.subarray(o, o + C));
        e![b] = ents[b]!;
        if (e![b]! < below) n++;
      }
      const scale = mean ? 1 / Math.max(n, 1) : 1;
      let sum = 0;
      // As the same loss written with tfjs ops: a dropped row counts 0·E_b, so a NaN still shows.
      for (let b = 0, o = 0; b < B; b++, o += C) {
        const ent = ents[b]!;
        const w = e![b]! < below ? (weights!.length > 0 ? weights![b]! : 1) * scale : 0; // the float32 entropy, as the filters see it
        sum += w * ent;
        for (let c = 0; c < C; c++) g![o + c] = -w * Math.exp(logp[o + c]!) * (logp[o + c]! + ent);
      }
      loss![0] = sum;
      count![0] = n;
    },
  },

  /** A vector cut into consecutive pieces of the given sizes (tfjs-wasm's split copies piece by piece at 25-35 µs a call). */
  WildttaSplit: {
    inputs: ['x'],
    outputs: (_s, { sizes }) => (sizes as number[]).map((n) => [n]),
    compute([x], outs) {
      let at = 0;
      for (const out of outs) {
        out.set(x!.subarray(at, at + out.length));
        at += out.length;
      }
    },
  },

  /** SAM's ascent θ + ρ·g/(‖g‖₂ + 1e-12) on flat vectors [P], and ‖g‖₂ [1]. */
  WildttaSamAscent: {
    inputs: ['theta', 'grad'],
    outputs: ([s]) => [s!, [1]],
    compute([theta, g], [out, norm], _s, { rho }) {
      let squares = 0;
      for (let i = 0; i < g!.length; i++) squares += g![i]! * g![i]!;
      const n = Math.fround(Math.sqrt(squares));
      const scale = (rho as number) / (n + 1e-12);
      for (let i = 0; i < g!.length; i++) out![i] = theta![i]! + g![i]! * scale;
      norm![0] = n;
    },
  },

  /**
   * SGD with momentum on flat vectors [P] where the scalar gate holds
   * (buf ← μ·buf + g, θ ← θ − lr·buf), θ and buf unchanged where it does not:
   * outputs θ and buf.
   */
  WildttaSgdMomentum: {
    inputs: ['theta', 'grad', 'buffer', 'gate'],
    outputs: ([s]) => [s!, s!],
    compute([theta, g, buf, gate], [outTheta, outBuf], _s, { lr, momentum }) {
      if (!gate![0]) {
        outTheta!.set(theta!);
        outBuf!.set(buf!);
        return;
      }
      for (let i = 0; i < g!.length; i++) {
        const b = Math.fround((momentum as number) * buf![i]! + g![i]!);
        outBuf![i] = b;
        outTheta![i] = theta![i]! - (lr as number) * b;
      }
    },
  },

  /**
   * A gated moving average: where the scalar gate holds, m ← x if `has` is
   * 0, else decay·m + (1 − decay)·x, and has ← 1; elsewhere both unchanged.
   * Outputs m (x's shape) and has [].
   */
  WildttaMovingAverage: {
    inputs: ['value', 'has', 'x', 'gate'],
    outputs: ([s, h]) => [s!, h!],
    compute([m, has, x, gate], [outM, outHas], _s, { decay }) {
      if (!gate![0]) {
        outM!.set(m!);
        outHas![0] = has![0]!;
        return;
      }
      const d = decay as number;
      for (let i = 0; i < m!.length; i++) outM![i] = has![0] ? d * m![i]! + (1 - d) * x![i]! : x![i]!;
      outHas![0] = 1;
    },
  },

  /**
   * Input alignment (methods/input-align.ts) in one pass per image: x [B, …]
   * with each image's pixel mean m and standard deviation s (population)
   * brought into [meanLo, meanHi] and [stdLo, stdHi]: (x − m)·s′/s + m′,
   * clipped to [0, 1].
   */
  WildttaInputAlign: {
    inputs: ['x'],
    outputs: ([x]) => [x!],
    compute([x], [out], [shape], { meanLo, meanHi, stdLo, stdHi }) {
      const B = shape![0]!;
      const n = x!.length / B;
      for (let b = 0; b < B; b++) {
        const at = b * n;
        let sum = 0;
        for (let i = 0; i < n; i++) sum += x![at + i]!;
        const m = sum / n;
        let sq = 0;
        for (let i = 0; i < n; i++) sq += (x![at + i]! - m) ** 2;
        const sd = Math.sqrt(sq / n);
        const mt = Math.min(Math.max(m, meanLo as number), meanHi as number);
        const gain = sd > 1e-6 ? Math.min(Math.max(sd, stdLo as number), stdHi as number) / sd : 1;
        for (let i = 0; i < n; i++) out![at + i] = Math.min(1, Math.max(0, (x![at + i]! - m) * gain + mt));
      }
    },
  },

  /**
   * Feature re-centering's update (methods/recenter.ts) in one pass: each
   * row of features [B, D] folded into the running mean of the class its
   * (re-centred) logits [B, C] predict, means [C, D] and weights [C] moved
   * by `decay` for the classes present; then the logit shift W·(μ_src − μ̂)
   * [1, C] from head [C, D], μ_src = mean of srcMeans [C, D], and the
   * feature shift μ̂ − μ_src [1, D]. A non-finite
   * feature anywhere changes nothing.
   */
  WildttaRecenter: {
    inputs: ['features', 'logits', 'means', 'weights', 'srcMeans', 'head'],
    outputs: ([, , means, weights, , head]) => [means!, weights!, [1, head![0]!], [1, head![1]!]],
    compute([f, z, means, weights, src, head], [outMeans, outWeights, offset, shift], [fs, zs], { decay, biasCorrected }) {
      const [B, D] = [fs![0]!, fs![1]!];
      const C = zs![1]!;
      const d = decay as number;
      outMeans!.set(means!);
      outWeights!.set(weights!);
      let finite = true;
      for (let i = 0; i < f!.length && finite; i++) finite = Number.isFinite(f![i]!);
      if (finite) {
        const counts = new Float64Array(C);
        const sums = new Float64Array(C * D);
        for (let b = 0; b < B; b++) {
          let best = 0;
          for (let c = 1; c < C; c++) if (z![b * C + c]! > z![b * C + best]!) best = c;
          counts[best]!++;
          for (let j = 0; j < D; j++) sums[best * D + j]! += f![b * D + j]!;
        }
        for (let c = 0; c < C; c++) {
          if (counts[c] === 0) continue;
          for (let j = 0; j < D; j++) outMeans![c * D + j] = d * means![c * D + j]! + (1 - d) * (sums[c * D + j]! / counts[c]!);
          outWeights![c] = d * weights![c]! + (1 - d);
        }
      }
      // μ_src − μ̂, with μ̂ the plain or the bias-corrected class average.
      let total = 0;
      for (let c = 0; c < C; c++) total += outWeights![c]!;
      const delta = new Float64Array(D);
      for (let j = 0; j < D; j++) {
        let moved = 0;
        for (let c = 0; c < C; c++) moved += outMeans![c * D + j]! - src![c * D + j]!;
        delta[j] = -(biasCorrected ? moved / Math.max(total, 1e-6) : moved / C);
        shift![j] = -delta[j]!;
      }
      for (let c = 0; c < C; c++) {
        let v = 0;
        for (let j = 0; j < D; j++) v += head![c * D + j]! * delta[j]!;
        offset![c] = v;
      }
    },
  },

  /** a where the scalar `when` holds (is non-zero), else b (a and b of one shape). */
  WildttaPick: {
    inputs: ['when', 'a', 'b'],
    outputs: ([, s]) => [s!],
    compute([when, a, b], [out]) {
      out!.set(when![0] ? a! : b!);
    },
  },

  /**
   * Scalars s0… (any dtype, booleans as 0/1) as one float vector, an absent
   * one as its entry in `fallback`, whose length is the output's.
   */
  WildttaScalars: {
    inputs: Array.from({ length: MAX_SCALARS }, (_, i) => `s${i}?`),
    outputs: (_s, { fallback }) => [[(fallback as number[]).length]],
    compute(ins, [out], _s, { fallback }) {
      (fallback as number[]).forEach((f, i) => (out![i] = ins[i]!.length === 0 ? f : ins[i]![0]!));
    },
  },

  /** [1] if every value of x (and of x1… where given) is finite, else [0] (as tfjs's isFinite, all and a cast give it, in one pass). */
  WildttaAllFinite: {
    inputs: ['x', ...Array.from({ length: MAX_SCALARS - 1 }, (_, i) => `x${i + 1}?`)],
    outputs: () => [[1]],
    compute(ins, [out]) {
      let ok = 1;
      for (const x of ins) {
        for (let i = 0; i < x.length && ok; i++) if (!Number.isFinite(x[i]!)) ok = 0;
      }
      out![0] = ok;
    },
  },
} satisfies Record<string, HostKernel>;
