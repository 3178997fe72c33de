// GroupNorm's forward and backward as host kernels: one engine call each
// where the tfjs ops take about ten and fifteen (ops/norm.ts), which at the
// shipped ResNet's size is most of their cost; the max pool's gradient, and
// the weaving of a strided conv's input gradient from its phases.
// Plain loops over the tensors' memory, float64 sums, NHWC layout (channel
// fastest). On tfjs-wasm GroupNorm's loops run in norm.wat (SIMD), on the
// threaded build shared among the gemm pool's workers; these loops are the
// reference the tests hold it to, and serve elsewhere.
import type { Host, HostKernel } from './glue';

/** The largest stride WildttaInterleave weaves (its inputs p0…p15). */
export const MAX_STRIDE = 4;

// Each channel's group, per channel and group count: made once, since at 28 px a kernel's loops take a few
// microseconds and making this array took as long.
const groupsOf = new Map<string, Int32Array>();

/** x [B, H, W, C] in G groups: its sizes, and the group of each channel. */
function geometry(shape: number[], groups: number) {
  const [B, H, W, C] = shape as [number, number, number, number];
  const per = C / groups;
  const key = `${C}/${groups}`;
  let group = groupsOf.get(key);
  if (!group) {
    group = new Int32Array(C);
    for (let c = 0; c < C; c++) group[c] = Math.floor(c / per);
    groupsOf.set(key, group);
  }
  return { B, P: H * W, C, G: groups, group, count: H * W * per };
}

/** Per-channel sums folded into their groups. */
function toGroups(perChannel: Float64Array, group: Int32Array, out: Float64Array): Float64Array {
  out.fill(0);
  for (let c = 0; c < perChannel.length; c++) out[group[c]!]! += perChannel[c]!;
  return out;
}

/**
 * Where norm.wat can take a GroupNorm on this host: C a multiple of 4 (its
 * loops go four channels at a time) and the scratch aligned for its
 * float64 sums (scratch [8C] floats: float64 sums [C] or [2, C] at 0, float64
 * means [C] at 8C bytes, float32 coefficients [C/4, 4, 4] at 16C bytes).
 */
function normWasm(host: Host, C: number, scratch: number) {
  if (!host.norm || !host.memory || C % 4 !== 0 || scratch % 8 !== 0) return null;
  const heap = host.memory.buffer;
  return {
    run: host.norm,
    f32: (at: number, n: number) => new Float32Array(heap, at, n),
    f64: (at: number, n: number) => new Float64Array(heap, at, n),
    coef: scratch + 16 * C,
  };
}

/** Channel c's place in coefficient row r of a [C/4, 4, 4] block (norm.wat's layout). */
const coefAt = (c: number, r: number) => (c >> 2) * 16 + r * 4 + (c & 3);

// The loops run channel-fastest over NHWC memory with per-channel sums and
// coefficients: no division, group lookup or closure per element (what made
// these kernels a quarter of a ResNet-50 step at 224 px).
export const normKernels = {
  /**
   * y = x̂·scale + shift (then ReLU), x̂ = (x − mean)·σ⁻¹ per image and group,
   * σ⁻¹ = 1/√(var + ε), the variance the mean squared deviation from the
   * mean (as tf.moments): x → y, x̂, σ⁻¹ [B, G].
   */
  WildttaGroupNorm: {
    inputs: ['x', 'scale', 'shift'],
    outputs: ([x], { groups }) => [x!, x!, [x![0]!, groups as number]],
    compute([x, scale, shift], [y, xhat, inv], [shape], { groups, eps, relu }) {
      const { B, P, C, G, group, count } = geometry(shape!, groups as number);
      const perChannel = new Float64Array(C);
      const sums = new Float64Array(G);
      const mean = new Float64Array(C);
      const invC = new Float64Array(C);
      const a = new Float64Array(C);
      const b0 = new Float64Array(C);
      for (let b = 0; b < B; b++) {
        const base = b * P * C;
        const end = base + P * C;
        perChannel.fill(0);
        for (let o = base; o < end; o += C) for (let c = 0; c < C; c++) perChannel[c]! += x![o + c]!;
        toGroups(perChannel, group, sums);
        for (let c = 0; c < C; c++) mean[c] = sums[group[c]!]! / count;
        perChannel.fill(0);
        for (let o = base; o < end; o += C)
          for (let c = 0; c < C; c++) {
            const d = x![o + c]! - mean[c]!;
            perChannel[c]! += d * d;
          }
        toGroups(perChannel, group, sums);
        for (let g = 0; g < G; g++) inv![b * G + g] = 1 / Math.sqrt(sums[g]! / count + (eps as number));
        for (let c = 0; c < C; c++) {
          invC[c] = inv![b * G + group[c]!]!;
          a[c] = invC[c]! * scale![c]!;
          b0[c] = shift![c]! - mean[c]! * a[c]!;
        }
        for (let o = base; o < end; o += C)
          for (let c = 0; c < C; c++) {
            const v = x![o + c]!;
            xhat![o + c] = (v - mean[c]!) * invC[c]!;
            const out = v * a[c]! + b0[c]!;
            y![o + c] = relu && out < 0 ? 0 : out;
          }
      }
    },
    scratch: ([shape]) => [[8 * shape![3]!]],
    // The same arithmetic on norm.wat: its float64 sums match the loops above bit for bit.
    simd(_k, [x, scale, shift], [y, xhat, inv], [shape], { groups, eps, relu }, [scratch], host) {
      const { B, P, C, G, group, count } = geometry(shape!, groups as number);
      const w = normWasm(host, C, scratch!);
      if (!w) return false;
      const sums = w.f64(scratch!, C);
      const mean = w.f64(scratch! + 8 * C, C);
      const coef = w.f32(w.coef, 4 * C);
      const [invOut, sc, sh] = [w.f32(inv!, B * G), w.f32(scale!, C), w.f32(shift!, C)];
      const g = new Float64Array(G);
      for (let b = 0; b < B; b++) {
        const at = 4 * b * P * C;
        w.run('channel_sums', [x! + at, 0, scratch!, P, C], P, C);
        toGroups(sums, group, g);
        for (let c = 0; c < C; c++) mean[c] = g[group[c]!]! / count;
        w.run('channel_sums', [x! + at, scratch! + 8 * C, scratch!, P, C], P, C);
        toGroups(sums, group, g);
        for (let j = 0; j < G; j++) invOut[b * G + j] = 1 / Math.sqrt(g[j]! / count + (eps as number));
        for (let c = 0; c < C; c++) {
          const s = invOut[b * G + group[c]!]!;
          const a = s * sc[c]!;
          coef[coefAt(c, 0)] = mean[c]!;
          coef[coefAt(c, 1)] = s;
          coef[coefAt(c, 2)] = a;
          coef[coefAt(c, 3)] = sh[c]! - mean[c]! * a;
        }
        w.run('gn_apply', [x! + at, w.coef, xhat! + at, y! + at, P, C, relu ? 1 : 0], P, C);
      }
      return true;
    },
  },

  /**
   * GroupNorm's backward from dy, x̂, σ⁻¹ and (after a ReLU) the output y,
   * whose sign masks dy: dscale = Σ dy·x̂, dshift = Σ dy over images and
   * positions and, with inputGrad, dx = σ⁻¹ (dx̂ − mean_g(dx̂) − x̂ ·
   * mean_g(dx̂·x̂)) with dx̂ = dy·scale.
   */
  WildttaGroupNormGrad: {
    inputs: ['dy', 'xhat', 'inv', 'scale', 'y?'],
    outputs: ([dy], { inputGrad }) => (inputGrad ? [[dy![3]!], [dy![3]!], dy!] : [[dy![3]!], [dy![3]!]]),
    compute([dy, xhat, inv, scale, y], [dScale, dShift, dx], [shape], { groups, inputGrad }) {
      const { B, P, C, G, group, count } = geometry(shape!, groups as number);
      const masked = y!.length > 0;
      const ds = new Float64Array(C);
      const db = new Float64Array(C);
      // This image's Σ dy·x̂ and Σ dy per channel; the image's share of ds and db, and of the groups' means.
      const imgDs = new Float64Array(C);
      const imgDb = new Float64Array(C);
      const m1 = new Float64Array(G);
      const m2 = new Float64Array(G);
      const k0 = new Float64Array(C);
      const k1 = new Float64Array(C);
      const k2 = new Float64Array(C);
      for (let b = 0; b < B; b++) {
        const base = b * P * C;
        const end = base + P * C;
        imgDs.fill(0);
        imgDb.fill(0);
        for (let o = base; o < end; o += C)
          for (let c = 0; c < C; c++) {
            const i = o + c;
            const d = masked && !(y![i]! > 0) ? 0 : dy![i]!;
            imgDs[c]! += d * xhat![i]!;
            imgDb[c]! += d;
          }
        for (let c = 0; c < C; c++) {
          ds[c]! += imgDs[c]!;
          db[c]! += imgDb[c]!;
          // Σ dx̂ = scale·Σ dy and Σ dx̂·x̂ = scale·Σ dy·x̂, per channel, then per group.
          imgDb[c] = imgDb[c]! * scale![c]!;
          imgDs[c] = imgDs[c]! * scale![c]!;
        }
        if (!inputGrad) continue;
        toGroups(imgDb, group, m1);
        toGroups(imgDs, group, m2);
        for (let c = 0; c < C; c++) {
          const g = group[c]!;
          const s = inv![b * G + g]!;
          k0[c] = s * scale![c]!;
          k1[c] = (s * m1[g]!) / count;
          k2[c] = (s * m2[g]!) / count;
        }
        for (let o = base; o < end; o += C)
          for (let c = 0; c < C; c++) {
            const i = o + c;
            const d = masked && !(y![i]! > 0) ? 0 : dy![i]!;
            dx![i] = d * k0[c]! - k1[c]! - xhat![i]! * k2[c]!;
          }
      }
      dScale!.set(ds);
      dShift!.set(db);
    },
    scratch: ([shape]) => [[8 * shape![3]!]],
    simd(_k, [dy, xhat, inv, scale, y], [dScale, dShift, dx], [shape], { groups, inputGrad }, [scratch], host) {
      const { B, P, C, G, group, count } = geometry(shape!, groups as number);
      const w = normWasm(host, C, scratch!);
      if (!w) return false;
      const sums = w.f64(scratch!, 2 * C);
      const coef = w.f32(w.coef, 4 * C);
      const [invs, sc] = [w.f32(inv!, B * G), w.f32(scale!, C)];
      const ds = new Float64Array(C);
      const db = new Float64Array(C);
      const m1 = new Float64Array(G);
      const m2 = new Float64Array(G);
      const scaled = new Float64Array(2 * C);
      for (let b = 0; b < B; b++) {
        const at = 4 * b * P * C;
        const mask = y ? y + at : 0;
        w.run('gn_grad_sums', [dy! + at, xhat! + at, mask, scratch!, P, C], P, C);
        for (let c = 0; c < C; c++) {
          ds[c]! += sums[c]!;
          db[c]! += sums[C + c]!;
          scaled[c] = sums[c]! * sc[c]!;
          scaled[C + c] = sums[C + c]! * sc[c]!;
        }
        if (!inputGrad) continue;
        toGroups(scaled.subarray(C), group, m1);
        toGroups(scaled.subarray(0, C), group, m2);
        for (let c = 0; c < C; c++) {
          const j = group[c]!;
          const s = invs[b * G + j]!;
          coef[coefAt(c, 0)] = s * sc[c]!;
          coef[coefAt(c, 1)] = (s * m1[j]!) / count;
          coef[coefAt(c, 2)] = (s * m2[j]!) / count;
        }
        w.run('gn_grad_apply', [dy! + at, xhat! + at, mask, w.coef, dx! + at, P, C], P, C);
      }
      w.f32(dScale!, C).set(ds);
      w.f32(dShift!, C).set(db);
      return true;
    },
  },

  /**
   * dL/dx of a max pool (size k, stride s, padding p on both axes) from dy
   * and the pool's input x: each output's dy added at the first largest
   * input of its window, in row-major order, as tfjs-cpu's MaxPoolGrad does.
   */
  WildttaMaxPoolGrad: {
    inputs: ['dy', 'x'],
    outputs: ([, x]) => [x!],
    compute([dy, x], [dx], [dyShape, xShape], { size, stride, pad }) {
      const [B, O, Q, C] = dyShape as [number, number, number, number];
      const [, H, W] = xShape as [number, number, number, number];
      const k = size as number;
      const s = stride as number;
      const p = pad as number;
      dx!.fill(0);
      // Channels innermost, as the memory lies: each window's rows are read once for all channels, not once per channel.
      const best = new Float32Array(C);
      const at = new Int32Array(C);
      for (let b = 0; b < B; b++)
        for (let o = 0; o < O; o++) {
          const h0 = Math.max(0, o * s - p);
          const h1 = Math.min(H, o * s - p + k);
          for (let q = 0; q < Q; q++) {
            const w0 = Math.max(0, q * s - p);
            const w1 = Math.min(W, q * s - p + k);
            at.fill(-1);
            for (let h = h0; h < h1; h++)
              for (let w = w0; w < w1; w++) {
                const row = ((b * H + h) * W + w) * C;
                for (let c = 0; c < C; c++) {
                  const v = x![row + c]!;
                  if (v > best[c]! || at[c]! < 0) {
                    best[c] = v;
                    at[c] = row + c;
                  }
                }
              }
            const out = ((b * O + o) * Q + q) * C;
            for (let c = 0; c < C; c++) if (at[c]! >= 0) dx![at[c]!]! += dy![out + c]!;
          }
        }
    },
  },

  /** Phases p0… [B, ⌈(H − a_h)/s⌉, ⌈(W − a_w)/s⌉, C] (phase a_h·s + a_w; absent ones zeros) woven into [B, H, W, C] (ops/norm.ts's interleavePhases). */
  WildttaInterleave: {
    inputs: Array.from({ length: MAX_STRIDE * MAX_STRIDE }, (_, i) => `p${i}?`),
    outputs: ([p0], { height, width }) => [[p0![0]!, height as number, width as number, p0![3]!]],
    compute(phases, [out], shapes, { stride, height, width }) {
      const s = stride as number;
      const H = height as number;
      const W = width as number;
      const [B, , , C] = shapes[0] as [number, number, number, number];
      out!.fill(0);
      for (let ah = 0; ah < s; ah++)
        for (let aw = 0; aw < s; aw++) {
          const p = phases[ah * s + aw]!;
          if (p.length === 0) continue; // an absent phase: zeros
          const [, R, Q] = shapes[ah * s + aw] as [number, number, number, number];
          for (let b = 0; b < B; b++)
            for (let t = 0; t < R && s * t + ah < H; t++)
              for (let u = 0; u < Q && s * u + aw < W; u++) {
                const from = ((b * R + t) * Q + u) * C;
                const to = ((b * H + s * t + ah) * W + s * u + aw) * C;
                for (let c = 0; c < C; c++) out![to + c] = p[from + c]!;
              }
        }
    },
  },
} satisfies Record<string, HostKernel>;
