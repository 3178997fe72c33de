// GroupNorm's forward and backward as host kernels: one engine call each
// where the tfjs ops take about ten and fifteen (ops/norm.ts), which at the
// shipped ResNet's size is most of their cost. Plain loops over the tensors'
// memory, float64 sums, NHWC layout (channel fastest).
import type { HostKernel } from './glue';

/** x [B, H, W, C] in G groups: its sizes, and the group of each channel. */
function geometry(shape: number[], groups: number) {
  const [B, H, W, C] = shape as [number, number, number, number];
  const per = C / groups;
  return { B, P: H * W, C, G: groups, per, count: H * W * per };
}

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
      const { B, P, C, G, per, count } = geometry(shape!, groups as number);
      const sum = new Float64Array(G);
      for (let b = 0; b < B; b++) {
        const base = b * P * C;
        sum.fill(0);
        for (let p = 0, o = base; p < P; p++) for (let c = 0; c < C; c++, o++) sum[(c / per) | 0]! += x![o]!;
        const mean = sum.map((s) => s / count);
        sum.fill(0);
        for (let p = 0, o = base; p < P; p++)
          for (let c = 0; c < C; c++, o++) {
            const d = x![o]! - mean[(c / per) | 0]!;
            sum[(c / per) | 0]! += d * d;
          }
        for (let g = 0; g < G; g++) inv![b * G + g] = 1 / Math.sqrt(sum[g]! / count + (eps as number));
        for (let p = 0, o = base; p < P; p++)
          for (let c = 0; c < C; c++, o++) {
            const g = (c / per) | 0;
            const h = (x![o]! - mean[g]!) * inv![b * G + g]!;
            xhat![o] = h;
            const v = h * scale![c]! + shift![c]!;
            y![o] = relu && v < 0 ? 0 : v;
          }
      }
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
      const { B, P, C, G, per, count } = geometry(shape!, groups as number);
      const masked = y!.length > 0;
      const grad = (o: number) => (masked && !(y![o]! > 0) ? 0 : dy![o]!);
      const ds = new Float64Array(C);
      const db = new Float64Array(C);
      const m1 = new Float64Array(G);
      const m2 = new Float64Array(G);
      for (let b = 0; b < B; b++) {
        const base = b * P * C;
        m1.fill(0);
        m2.fill(0);
        for (let p = 0, o = base; p < P; p++)
          for (let c = 0; c < C; c++, o++) {
            const d = grad(o);
            const h = xhat![o]!;
            ds[c]! += d * h;
            db[c]! += d;
            const dh = d * scale![c]!;
            m1[(c / per) | 0]! += dh;
            m2[(c / per) | 0]! += dh * h;
          }
        if (!inputGrad) continue;
        for (let p = 0, o = base; p < P; p++)
          for (let c = 0; c < C; c++, o++) {
            const g = (c / per) | 0;
            dx![o] = inv![b * G + g]! * (grad(o) * scale![c]! - m1[g]! / count - xhat![o]! * (m2[g]! / count));
          }
      }
      dScale!.set(ds);
      dShift!.set(db);
    },
  },
} satisfies Record<string, HostKernel>;
