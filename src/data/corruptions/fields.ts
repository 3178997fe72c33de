/**
 * Single-channel random fields computed in JS on the reference grid (see
 * ops.referenceGrid): the plasma fractal of fog, the procedural frost
 * texture, spatter's liquid and water shading, and the filters they need. Row-major Float32Array/
 * Float64Array of gh·gw values.
 */
import { foldIndex, gaussianKernel, normalSource, randInt, type Border } from './ops';

/** Correlates a field with a centred 1-D kernel along rows then columns, borders by `mode`. */
export function filterField(src: ArrayLike<number>, gh: number, gw: number, kernel: ArrayLike<number>, mode: Border): Float64Array {
  const r = (kernel.length - 1) / 2;
  const tmp = new Float64Array(gh * gw);
  const out = new Float64Array(gh * gw);
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += kernel[k + r]! * src[y * gw + foldIndex(x + k, gw, mode)]!;
      tmp[y * gw + x] = s;
    }
  }
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += kernel[k + r]! * tmp[foldIndex(y + k, gh, mode) * gw + x]!;
      out[y * gw + x] = s;
    }
  }
  return out;
}

/** skimage.filters.gaussian on a field (truncate 4; mode 'nearest' is our 'edge'). */
export function gaussianField(src: ArrayLike<number>, gh: number, gw: number, sigma: number, mode: Border = 'edge'): Float64Array {
  return filterField(src, gh, gw, gaussianKernel(sigma), mode);
}

// ---------------------------------------------------------------------------
// Plasma fractal (fog)

/**
 * Diamond-square height map on a torus of side `size` (a power of two),
 * normalised to [0, 1]. As in make_cifar_c.py's plasma_fractal: the corner
 * starts at 0, every new point is the mean of its four parents plus uniform
 * noise of half-width wibble² with wibble = 100 at the coarsest step, divided
 * by `decay` at each finer step.
 */
export function plasmaFractal(size: number, decay: number, rng: () => number): Float64Array {
  const map = new Float64Array(size * size);
  const at = (i: number, j: number) => map[(((i % size) + size) % size) * size + (((j % size) + size) % size)]!;
  let step = size;
  let wibble = 100;
  while (step >= 2) {
    const half = step / 2;
    const amp = wibble * wibble;
    const noise = () => amp * (2 * rng() - 1);
    for (let i = 0; i < size; i += step) {
      for (let j = 0; j < size; j += step) {
        const mean = (at(i, j) + at(i + step, j) + at(i, j + step) + at(i + step, j + step)) / 4;
        map[(i + half) * size + j + half] = mean + noise();
      }
    }
    for (let i = 0; i < size; i += step) {
      for (let j = 0; j < size; j += step) {
        // Midpoint of the top edge of the cell, then of its left edge.
        const top = (at(i - half, j + half) + at(i + half, j + half) + at(i, j) + at(i, j + step)) / 4;
        map[i * size + j + half] = top + noise();
        const left = (at(i + half, j - half) + at(i + half, j + half) + at(i, j) + at(i + step, j)) / 4;
        map[(i + half) * size + j] = left + noise();
      }
    }
    step = half;
    wibble /= decay;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of map) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const span = hi - lo || 1;
  for (let k = 0; k < map.length; k++) map[k] = (map[k]! - lo) / span;
  return map;
}

/** A gh×gw crop of the plasma on the smallest power-of-two torus that holds it. */
export function plasmaField(gh: number, gw: number, decay: number, rng: () => number): Float64Array {
  let size = 2;
  while (size < Math.max(gh, gw)) size *= 2;
  const map = plasmaFractal(size, decay, rng);
  const out = new Float64Array(gh * gw);
  for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) out[y * gw + x] = map[y * size + x]!;
  return out;
}

// ---------------------------------------------------------------------------
// Frost texture

/** Max-splats a segment, ~1 grid pixel wide (bilinear footprint every 0.3 px). */
function drawSegment(tex: Float64Array, gh: number, gw: number, x0: number, y0: number, angle: number, length: number, value: number): void {
  const steps = Math.max(1, Math.ceil(length / 0.3));
  const dx = (Math.cos(angle) * length) / steps;
  const dy = (Math.sin(angle) * length) / steps;
  for (let t = 0; t <= steps; t++) {
    const px = x0 + dx * t;
    const py = y0 + dy * t;
    const ix = Math.floor(px);
    const iy = Math.floor(py);
    const fx = px - ix;
    const fy = py - iy;
    for (let a = 0; a < 2; a++) {
      for (let b = 0; b < 2; b++) {
        const y = iy + a;
        const x = ix + b;
        if (y < 0 || y >= gh || x < 0 || x >= gw) continue;
        const wgt = (a ? fy : 1 - fy) * (b ? fx : 1 - fx);
        // sqrt widens the footprint a little so thin lines do not flicker with their phase.
        const v = value * Math.sqrt(wgt);
        const k = y * gw + x;
        if (v > tex[k]!) tex[k] = v;
      }
    }
  }
}

/**
 * Procedural stand-in for the frost photographs of the reference (which crops
 * 32×32 patches out of six frost images shrunk to 0.2): a cloudy plasma base
 * under feathery ice needles (straight arms with side branches at ±60°),
 * lightly blurred. Values in [0, 1], mean about 0.5, in gray; the caller
 * tints it bluish for RGB.
 */
export function frostField(gh: number, gw: number, rng: () => number): Float64Array {
  const base = plasmaField(gh, gw, 2, rng);
  const ice = new Float64Array(gh * gw);
  const seeds = Math.max(2, Math.round((gh * gw) / 60));
  for (let s = 0; s < seeds; s++) {
    const x0 = rng() * gw;
    const y0 = rng() * gh;
    const arms = 1 + randInt(rng, 0, 3);
    const theta0 = rng() * 2 * Math.PI;
    for (let a = 0; a < arms; a++) {
      const theta = theta0 + (a * 2 * Math.PI) / arms + (rng() - 0.5) * 0.6;
      const len = 4 + rng() * 9;
      const v = 0.45 + rng() * 0.45;
      drawSegment(ice, gh, gw, x0, y0, theta, len, v);
      for (let t = 1 + rng(); t < len - 0.5; t += 1.2 + rng() * 1.3) {
        const bx = x0 + Math.cos(theta) * t;
        const by = y0 + Math.sin(theta) * t;
        const blen = (len - t) * (0.25 + rng() * 0.3);
        const both = rng() < 0.5;
        const side = rng() < 0.5 ? 1 : -1;
        drawSegment(ice, gh, gw, bx, by, theta + (side * Math.PI) / 3, blen, v * 0.8);
        if (both) drawSegment(ice, gh, gw, bx, by, theta - (side * Math.PI) / 3, blen, v * 0.8);
      }
    }
  }
  const mixed = new Float64Array(gh * gw);
  for (let k = 0; k < mixed.length; k++) mixed[k] = Math.min(1, 0.15 + 0.3 * base[k]! + 0.75 * ice[k]!);
  return gaussianField(mixed, gh, gw, 0.5);
}

// ---------------------------------------------------------------------------
// Spatter

/** Normal(mean, sd) field. */
export function normalField(n: number, mean: number, sd: number, rng: () => number): Float64Array {
  const next = normalSource(rng);
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) out[k] = mean + sd * next();
  return out;
}

/** 3×3 mean (cv2.blur, border reflect-101). */
export function box3(src: ArrayLike<number>, gh: number, gw: number): Float64Array {
  return filterField(src, gh, gw, [1 / 3, 1 / 3, 1 / 3], 'reflect');
}

/**
 * Exact Euclidean distance from every pixel to the nearest marked pixel
 * (Infinity where nothing is marked), by the separable lower-envelope method
 * of Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled Functions"
 * (Theory of Computing 8, 2012).
 */
export function distanceTransform(marked: Uint8Array, gh: number, gw: number): Float64Array {
  const INF = 1e20;
  const f = new Float64Array(gh * gw);
  for (let k = 0; k < f.length; k++) f[k] = marked[k] ? 0 : INF;
  const line = (get: (i: number) => number, set: (i: number, v: number) => void, n: number) => {
    const v = new Int32Array(n);
    const z = new Float64Array(n + 1);
    const vals = Float64Array.from({ length: n }, (_, i) => get(i));
    let k = 0;
    v[0] = 0;
    z[0] = -Infinity;
    z[1] = Infinity;
    const cut = (q: number, p: number) => (vals[q]! + q * q - (vals[p]! + p * p)) / (2 * q - 2 * p);
    for (let q = 1; q < n; q++) {
      let s = cut(q, v[k]!);
      while (s <= z[k]!) {
        k--;
        s = cut(q, v[k]!);
      }
      k++;
      v[k] = q;
      z[k] = s;
      z[k + 1] = Infinity;
    }
    k = 0;
    for (let q = 0; q < n; q++) {
      while (z[k + 1]! < q) k++;
      const p = v[k]!;
      set(q, (q - p) * (q - p) + vals[p]!);
    }
  };
  for (let x = 0; x < gw; x++)
    line(
      (i) => f[i * gw + x]!,
      (i, val) => (f[i * gw + x] = val),
      gh,
    );
  for (let y = 0; y < gh; y++)
    line(
      (i) => f[y * gw + i]!,
      (i, val) => (f[y * gw + i] = val),
      gw,
    );
  const out = new Float64Array(f.length);
  for (let k = 0; k < f.length; k++) out[k] = f[k]! >= INF / 2 ? Infinity : Math.sqrt(f[k]!);
  return out;
}

/** Histogram equalisation of 8-bit values (OpenCV's equalizeHist rule). */
export function equalizeHist(src: Uint8Array): Uint8Array {
  const hist = new Int32Array(256);
  for (const v of src) hist[v]!++;
  let first = 0;
  while (first < 256 && hist[first] === 0) first++;
  const out = new Uint8Array(src.length);
  if (first === 256) return out;
  if (hist[first] === src.length) return out.fill(first);
  const scale = 255 / (src.length - hist[first]!);
  const lut = new Uint8Array(256);
  let sum = 0;
  for (let i = first + 1; i < 256; i++) {
    sum += hist[i]!;
    lut[i] = Math.min(255, Math.round(sum * scale));
  }
  for (let k = 0; k < src.length; k++) out[k] = lut[src[k]!]!;
  return out;
}

/** The liquid layer of make_cifar_c.py's spatter: normal(mean, sd) noise under a Gaussian of σ (edges repeated). */
export function liquidField(gh: number, gw: number, mean: number, sd: number, sigma: number, rng: () => number): Float64Array {
  return gaussianField(normalField(gh * gw, mean, sd, rng), gh, gw, sigma);
}

/**
 * The shading of make_cifar_c.py's water spatter (severities 1–3) for a
 * liquid layer thresholded at `thr`: the puddles' outlines (standing in for
 * cv2.Canny, which finds exactly these steps), distance to the outline
 * (capped at 20 px), 3×3 mean, histogram equalisation, the reference's 3×3
 * emboss kernel, 3×3 mean. The reference multiplies it by the thresholded
 * liquid and normalises the product to a maximum of 1.
 */
export function waterShade(liquid: Float64Array, gh: number, gw: number, thr: number): Float64Array {
  const n = gh * gw;
  const inside = (k: number) => liquid[k]! >= thr;
  const edge = new Uint8Array(n);
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      const k = y * gw + x;
      if (!inside(k)) continue;
      const out = (yy: number, xx: number) => yy >= 0 && yy < gh && xx >= 0 && xx < gw && !inside(yy * gw + xx);
      if (out(y - 1, x) || out(y + 1, x) || out(y, x - 1) || out(y, x + 1)) edge[k] = 1;
    }
  }
  const dist = distanceTransform(edge, gh, gw);
  for (let k = 0; k < n; k++) dist[k] = Math.min(20, dist[k]!);
  const blurred = box3(dist, gh, gw);
  const d8 = new Uint8Array(n);
  for (let k = 0; k < n; k++) d8[k] = Math.floor(blurred[k]!);
  const eq = equalizeHist(d8);
  // make_cifar_c.py: ker = [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], cv2.filter2D to 8 bits (rounded, saturated).
  const ker = [-2, -1, 0, -1, 1, 1, 0, 1, 2];
  const emb = new Float64Array(n);
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      let s = 0;
      for (let a = -1; a <= 1; a++) {
        for (let b = -1; b <= 1; b++) s += ker[(a + 1) * 3 + b + 1]! * eq[foldIndex(y + a, gh, 'reflect') * gw + foldIndex(x + b, gw, 'reflect')]!;
      }
      emb[y * gw + x] = Math.max(0, Math.min(255, Math.round(s)));
    }
  }
  const shade = box3(emb, gh, gw);
  for (let k = 0; k < n; k++) shade[k] = Math.round(shade[k]!);
  return shade;
}
