// In-page half of `npm run corruptions:grid`: draws one source image (a
// Fashion-MNIST test image, or a procedurally generated landscape) under every
// corruption × severity on one canvas, for the runner to screenshot as a PNG.
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../src/runtime/backend';
import { WASM_PATHS } from '../src/runtime/wasm-assets';
import { CORRUPTIONS, DEFAULT_REGIME, EXTRA_CORRUPTIONS, SEVERITIES, corrupt, type CorruptionRegime } from '../src/data/corruptions';
import { FASHION_MNIST_CLASSES, fetchLabeledImages } from '../src/data/idx';
import { grayBatch } from '../src/data/images';
import { mulberry32 } from '../src/data/random';

export type GridSource =
  { kind: 'fmnist'; dataUrl: string; index: number; scale: number } | { kind: 'scene'; width: number; height: number; sceneSeed: number; scale: number };

export interface GridOptions {
  backend: BackendName;
  source: GridSource;
  /** Seed passed to corrupt(). */
  seed: number;
  /** Whose constants (default imagenet64, make_imagenet_64_c.py; cifar: make_cifar_c.py). */
  regime?: CorruptionRegime;
  /** Only these corruptions (default all 19). */
  names?: string[];
}

export interface GridResult {
  backend: string;
  width: number;
  height: number;
  /** What the picture shows, as written in its title. */
  title: string;
  /** Milliseconds spent corrupting (all 5 severities) per corruption. */
  ms: Record<string, number>;
  /** Mean |corrupted − clean| per corruption and severity (1..5). */
  meanAbsDiff: Record<string, number[]>;
  /** Values that were NaN or outside [0, 1] per corruption (should be 0). */
  badValues: Record<string, number>;
}

// ---------------------------------------------------------------------------
// The procedural landscape.

const smooth = (t: number) => t * t * (3 - 2 * t);
const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
const smoothstep = (a: number, b: number, v: number) => smooth(clamp01((v - a) / (b - a)));
const mix = (a: number, b: number, t: number) => a + (b - a) * t;

/** Periodic 2-D value noise with fractal sums; values about [0, 1]. */
class Noise {
  private readonly table: Float32Array;
  constructor(
    rng: () => number,
    private readonly n = 128,
  ) {
    this.table = Float32Array.from({ length: n * n }, rng);
  }
  at(x: number, y: number): number {
    const n = this.n;
    const xi = Math.floor(x),
      yi = Math.floor(y);
    const fx = smooth(x - xi),
      fy = smooth(y - yi);
    const x0 = ((xi % n) + n) % n,
      y0 = ((yi % n) + n) % n;
    const x1 = (x0 + 1) % n,
      y1 = (y0 + 1) % n;
    const t = this.table;
    const a = mix(t[y0 * n + x0]!, t[y0 * n + x1]!, fx);
    const b = mix(t[y1 * n + x0]!, t[y1 * n + x1]!, fx);
    return mix(a, b, fy);
  }
  fbm(x: number, y: number, octaves = 5): number {
    let sum = 0,
      amp = 0.5,
      norm = 0;
    for (let o = 0; o < octaves; o++) {
      sum += amp * this.at(x, y);
      norm += amp;
      x *= 2.03;
      y *= 2.03;
      amp *= 0.5;
    }
    return sum / norm;
  }
  /**
   * fbm of (x/sx + ox, y/sy + oy) with the scales in pixels, at least 1.5 px, and only the
   * octaves coarser than that: no texture finer than the pixel grid (it would be noise).
   */
  field(x: number, y: number, sx: number, sy: number, octaves = 5, ox = 0, oy = 0): number {
    sx = Math.max(1.5, sx);
    sy = Math.max(1.5, sy);
    const fit = 1 + Math.floor(Math.log(Math.min(sx, sy) / 1.5) / Math.log(2.03));
    return this.fbm(x / sx + ox, y / sy + oy, Math.max(1, Math.min(octaves, fit)));
  }
}

type RGB = [number, number, number];
const hex = (h: string): RGB => [parseInt(h.slice(1, 3), 16) / 255, parseInt(h.slice(3, 5), 16) / 255, parseInt(h.slice(5, 7), 16) / 255];
const mixRGB = (a: RGB, b: RGB, t: number): RGB => [mix(a[0], b[0], t), mix(a[1], b[1], t), mix(a[2], b[2], t)];

/**
 * A lake-and-mountains landscape, W×H RGB in [0, 1] (row-major, interleaved),
 * drawn from `seed` alone: sky with sun and clouds, two mountain ranges with
 * snow, green hills with pines and a house, their reflection in a rippled
 * lake, and a grassy shore with rocks.
 */
export function drawScene(W: number, H: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  const noise = new Noise(rng);
  const px = new Float32Array(W * H * 3);
  const set = (x: number, y: number, c: RGB) => {
    const i = (y * W + x) * 3;
    px[i] = c[0];
    px[i + 1] = c[1];
    px[i + 2] = c[2];
  };
  const get = (x: number, y: number): RGB => {
    const i = (y * W + x) * 3;
    return [px[i]!, px[i + 1]!, px[i + 2]!];
  };
  const u = W / 256; // shapes are designed for 256 px wide
  const waterY = Math.round(0.6 * H);
  const sunX = 0.73 * W,
    sunY = 0.19 * H,
    sunR = 0.045 * W;

  // Sky: gradient, sun glow, clouds.
  const skyTop = hex('#2f63ad'),
    skyMid = hex('#78a9dc'),
    skyLow = hex('#f2d7b0');
  for (let y = 0; y < waterY; y++) {
    const t = y / waterY;
    const base = t < 0.6 ? mixRGB(skyTop, skyMid, t / 0.6) : mixRGB(skyMid, skyLow, (t - 0.6) / 0.4);
    for (let x = 0; x < W; x++) {
      const d = Math.hypot(x - sunX, (y - sunY) * 1.1);
      const glow = Math.exp(-d / (0.16 * W)) * 0.75;
      let c = mixRGB(base, [1, 0.95, 0.8], glow);
      if (d < sunR) c = mixRGB([1, 0.98, 0.88], c, smoothstep(sunR - 1.5, sunR, d));
      const cl = noise.field(x, y, 70 * u, 22 * u, 6, 0, 7.3);
      const cloud = smoothstep(0.5, 0.72, cl) * smoothstep(0.72, 0.1, t) * 0.9;
      const shade = 0.82 + 0.18 * smoothstep(0.5, 0.8, noise.field(x, y, 40 * u, 14 * u, 4, 3, 0));
      c = mixRGB(c, [shade, shade, shade * 1.02], cloud);
      set(x, y, c);
    }
  }

  // Mountain ranges, back to front: silhouettes from random peaks with a jagged edge, each
  // peak lit on its sun side (right), streaky rock, snow above a ragged line, haze with distance.
  // Then the hills: a smooth profile with meadow patches.
  const ranges = [
    { peaks: 6, foot: 0.52, top: [0.14, 0.3], half: [0.14, 0.24], rock: hex('#66718f'), haze: 0.5, snow: 0.3, off: 11 },
    { peaks: 7, foot: 0.56, top: [0.3, 0.43], half: [0.08, 0.15], rock: hex('#4a5a5e'), haze: 0.25, snow: 0.35, off: 29 },
  ];
  const horizon = hex('#c9d6e4');
  for (const r of ranges) {
    const peaks = Array.from({ length: r.peaks }, (_, k) => {
      const top = mix(r.top[0]!, r.top[1]!, rng()) * H;
      const half = mix(r.half[0]!, r.half[1]!, rng()) * W;
      return { x: ((k + 0.2 + 0.6 * rng()) / r.peaks) * 1.1 * W - 0.05 * W, top, slope: (r.foot * H - top) / half };
    });
    const jag = (x: number) => (noise.fbm(x / (7 * u) + r.off, r.off, 4) - 0.5) * 0.035 * H;
    const profile = (x: number) => {
      let best = Infinity,
        peak = peaks[0]!;
      for (const p of peaks) {
        const y = p.top + p.slope * Math.abs(x - p.x) ** 0.95 * u ** 0.05;
        if (y < best) [best, peak] = [y, p];
      }
      return { y: best + jag(x), peak };
    };
    for (let x = 0; x < W; x++) {
      const { y: top, peak } = profile(x);
      for (let y = Math.max(0, Math.ceil(top)); y < waterY; y++) {
        const below = (y - peak.top) / H;
        // The ridge line down from the summit wanders; right of it faces the sun.
        const ridge = peak.x + (noise.fbm(y / (10 * u) + r.off, 3.1, 3) - 0.5) * 30 * u * clamp01(below * 6);
        const lit = smoothstep(-1.5 * u, 1.5 * u, x - ridge);
        const streak = noise.field(x, y, 2.5 * u, 14 * u, 4, r.off, 0);
        const tex = noise.field(x, y, 6 * u, 4 * u, 3, 0, r.off);
        let c = mixRGB(r.rock, [r.rock[0] * 1.5, r.rock[1] * 1.45, r.rock[2] * 1.3], lit * 0.75 + (streak - 0.5) * 0.9 + (tex - 0.5) * 0.4);
        const snowLine = (r.snow + 0.09 * (streak - 0.45) + 0.03 * (tex - 0.5)) * H;
        const snowy = smoothstep(snowLine + 1.2 * u, snowLine - 1.2 * u, y);
        c = mixRGB(c, mixRGB([0.7, 0.76, 0.9], [0.98, 0.98, 1], lit), snowy);
        c = mixRGB(c, horizon, r.haze * (1 - 0.5 * clamp01((y - top) / (0.25 * H))));
        set(x, y, mixRGB(get(x, y), c, clamp01(y + 1 - top))); // anti-aliased edge
      }
    }
  }
  const hill = (x: number) => (0.535 - 0.05 * (noise.fbm(x / (45 * u) + 47, 17, 5) - 0.3)) * H;
  for (let x = 0; x < W; x++) {
    const top = hill(x);
    for (let y = Math.max(0, Math.ceil(top)); y < waterY; y++) {
      const tex = noise.field(x, y, 9 * u, 6 * u, 4, 47, 0);
      let c = mixRGB(hex('#3f6b2c'), hex('#6f9a3e'), tex);
      const patch = noise.field(x, y, 25 * u, 10 * u, 4, 5, 9);
      c = mixRGB(c, hex('#8fae46'), smoothstep(0.45, 0.7, patch) * 0.7);
      c = mixRGB(c, hex('#2f4f22'), smoothstep(0.55, 0.35, patch) * 0.5);
      c = mixRGB(c, horizon, 0.12);
      set(x, y, mixRGB(get(x, y), c, clamp01(y + 1 - top)));
    }
  }

  // Pines and a house on the hills, drawn on a canvas and composited.
  const cv = document.createElement('canvas');
  cv.width = W;
  cv.height = H;
  const g = cv.getContext('2d')!;
  const pine = (x: number, base: number, h: number, shade: number) => {
    const w = h * 0.38;
    g.fillStyle = '#3b2a1a';
    g.fillRect(x - 0.6 * u, base - h * 0.18, 1.2 * u, h * 0.18);
    for (let k = 0; k < 3; k++) {
      const y0 = base - h * 0.12 - k * h * 0.26;
      const ww = w * (1 - k * 0.25);
      g.fillStyle = `rgb(${Math.round(30 + 25 * shade)}, ${Math.round(62 + 30 * shade)}, ${Math.round(35 + 15 * shade)})`;
      g.beginPath();
      g.moveTo(x - ww, y0);
      g.lineTo(x + ww, y0);
      g.lineTo(x, y0 - h * 0.48);
      g.closePath();
      g.fill();
    }
  };
  const trees: Array<[number, number, number, number]> = [];
  for (let k = 0; k < 38; k++) {
    const x = rng() * W;
    if (x > 0.56 * W && x < 0.72 * W) continue; // room for the house
    trees.push([x, waterY - rng() * 0.035 * H, (0.05 + rng() * 0.07) * H, rng()]);
  }
  trees.sort((a, b) => a[1] - b[1]);
  for (const [x, b, h, s] of trees) pine(x, b, h, s);
  // House: walls, roof, door, windows, chimney.
  const hx = 0.6 * W,
    hb = waterY - 0.012 * H,
    hw = 0.085 * W,
    hh = 0.055 * H;
  g.fillStyle = '#5a3a2a';
  g.fillRect(hx + hw * 0.62, hb - hh - 0.06 * H, 0.012 * W, 0.04 * H);
  g.fillStyle = '#e8dcc0';
  g.fillRect(hx, hb - hh, hw, hh);
  g.fillStyle = '#b9a98a';
  g.fillRect(hx + hw * 0.7, hb - hh, hw * 0.3, hh);
  g.fillStyle = '#a4372a';
  g.beginPath();
  g.moveTo(hx - hw * 0.1, hb - hh);
  g.lineTo(hx + hw * 1.1, hb - hh);
  g.lineTo(hx + hw * 0.5, hb - hh - 0.05 * H);
  g.closePath();
  g.fill();
  g.fillStyle = '#5b3b22';
  g.fillRect(hx + hw * 0.42, hb - hh * 0.55, hw * 0.16, hh * 0.55);
  g.fillStyle = '#f5d66b';
  g.fillRect(hx + hw * 0.12, hb - hh * 0.7, hw * 0.18, hh * 0.3);
  g.fillRect(hx + hw * 0.7, hb - hh * 0.7, hw * 0.18, hh * 0.3);
  const layer = g.getImageData(0, 0, W, waterY).data;
  for (let y = 0; y < waterY; y++) {
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 4;
      const a = layer[i + 3]! / 255;
      if (a === 0) continue;
      const tex = 0.9 + 0.2 * noise.field(x, y, 1.5 * u, 1.5 * u, 1);
      const c: RGB = [(layer[i]! / 255) * tex, (layer[i + 1]! / 255) * tex, (layer[i + 2]! / 255) * tex];
      set(x, y, mixRGB(get(x, y), c, a));
    }
  }

  // Lake: the scene above, mirrored with ripples, tinted towards deep water, sparkles under the sun.
  const water = hex('#24506e');
  for (let y = waterY; y < H; y++) {
    const t = (y - waterY) / (H - waterY);
    for (let x = 0; x < W; x++) {
      const ripple = Math.sin((y * 1.3) / u + noise.at(x / (20 * u), y / (3 * u)) * 6) * (1 + 3 * t) * u;
      const sx = Math.min(W - 1, Math.max(0, Math.round(x + ripple)));
      const sy = Math.min(waterY - 1, Math.max(0, 2 * waterY - y - 1));
      let c = mixRGB(get(sx, sy), water, 0.3 + 0.35 * t);
      const streak = noise.field(x, y, 6 * u, 0.8 * u, 1, 0, 50);
      const sun = Math.exp(-(((x - sunX) / (0.07 * W)) ** 2));
      c = mixRGB(c, [1, 0.97, 0.85], sun * smoothstep(0.62, 0.8, streak) * 0.8);
      c = mixRGB(c, [0.75, 0.85, 0.95], smoothstep(0.7, 0.85, streak) * 0.25);
      set(x, y, c);
    }
  }

  // Foreground shore: grass with blades, a few rocks.
  const shoreTop = (x: number) => (0.86 + 0.07 * (noise.fbm(x / (50 * u) + 90, 1.7, 4) - 0.5)) * H;
  for (let x = 0; x < W; x++) {
    const top = shoreTop(x);
    for (let y = Math.max(0, Math.floor(top)); y < H; y++) {
      const tex = noise.field(x, y, 4 * u, 2 * u, 4, 60, 60);
      let c = mixRGB(hex('#3e6b25'), hex('#93a94a'), tex);
      c = mixRGB(c, hex('#6b5a3a'), smoothstep(0.55, 0.75, noise.field(x, y, 30 * u, 8 * u, 3, 20, 0)) * 0.6);
      set(x, y, mixRGB(get(x, y), c, clamp01(y + 1 - top)));
    }
  }
  const rocks = [
    [0.18, 0.91, 0.05],
    [0.24, 0.95, 0.03],
    [0.82, 0.93, 0.06],
  ] as const;
  for (const [rx, ry, rr] of rocks) {
    const cx = rx * W,
      cy = ry * H,
      r = rr * W;
    for (let y = Math.floor(cy - r * 0.6); y < Math.min(H, cy + r * 0.6); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(W, cx + r); x++) {
        const d = ((x - cx) / r) ** 2 + ((y - cy) / (r * 0.6)) ** 2;
        if (d > 1) continue;
        const lit = clamp01(0.5 + ((x - cx) / r) * 0.3 - ((y - cy) / r) * 0.6);
        const tex = noise.field(x, y, 2 * u, 2 * u, 3, 33, 33);
        const c = mixRGB(hex('#5c5a57'), hex('#b5b0a6'), clamp01(lit + (tex - 0.5) * 0.6));
        set(x, y, mixRGB(get(x, y), c, clamp01((1 - d) * 6)));
      }
    }
  }
  const blades = Math.round(700 * u * u);
  for (let k = 0; k < blades; k++) {
    const x = Math.floor(rng() * W);
    const y0 = Math.floor(shoreTop(x) + 2 + rng() * (H - shoreTop(x)));
    const len = Math.round((2 + rng() * 5) * u);
    const light = rng() < 0.5;
    const lean = (rng() - 0.5) * 0.8;
    for (let j = 0; j < len; j++) {
      const y = y0 - j,
        x1 = Math.round(x + lean * j);
      if (y < 0 || y >= H || x1 < 0 || x1 >= W) continue;
      set(x1, y, mixRGB(get(x1, y), light ? hex('#b6c46a') : hex('#29491a'), 0.7));
    }
  }

  return px;
}

// ---------------------------------------------------------------------------
// The grid.

const LABEL_W = 168;
const GAP = 2;
const FONT = 'system-ui, "DejaVu Sans", sans-serif';

async function sourceImage(src: GridSource): Promise<{ image: tf.Tensor3D; scale: number; title: string }> {
  if (src.kind === 'fmnist') {
    const data = await fetchLabeledImages(src.dataUrl);
    if (src.index < 0 || src.index >= data.count) throw new RangeError(`index ${src.index} is outside the test split (0..${data.count - 1})`);
    const batch = grayBatch(data.images, src.index, 1, data.height, data.width);
    const image = tf.squeeze(batch, [0]) as tf.Tensor3D;
    batch.dispose();
    const label = FASHION_MNIST_CLASSES[data.labels[src.index]!] ?? '?';
    return {
      image,
      scale: src.scale,
      title: `Fashion-MNIST test image #${src.index} (${label}), ${data.width}×${data.height}, shown ×${src.scale} nearest-neighbour`,
    };
  }
  const px = drawScene(src.width, src.height, src.sceneSeed);
  return {
    image: tf.tensor3d(px, [src.height, src.width, 3]),
    scale: src.scale,
    title: `Procedural landscape (scene seed ${src.sceneSeed}), ${src.width}×${src.height} RGB${src.scale > 1 ? `, shown ×${src.scale} nearest-neighbour` : ''}`,
  };
}

/** Draws [h, w, c] values in [0, 1] at (x, y), each pixel as a scale×scale block. */
function blit(
  g: CanvasRenderingContext2D,
  values: Float32Array | Int32Array | Uint8Array,
  h: number,
  w: number,
  c: number,
  x: number,
  y: number,
  scale: number,
): void {
  const img = new ImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) img.data[i * 4 + k] = Math.round(clamp01(values[i * c + (c === 1 ? 0 : k)]!) * 255);
    img.data[i * 4 + 3] = 255;
  }
  if (scale === 1) {
    g.putImageData(img, x, y);
    return;
  }
  const tmp = document.createElement('canvas');
  tmp.width = w;
  tmp.height = h;
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, x, y, w * scale, h * scale);
}

async function renderGrid(o: GridOptions): Promise<GridResult> {
  const report = await initBackend(o.backend, { wasmPaths: WASM_PATHS });
  const { image, scale, title } = await sourceImage(o.source);
  const [h, w, c] = image.shape;
  const tileW = w * scale,
    tileH = h * scale;
  const clean = (await image.data()) as Float32Array;

  const keep = (names: readonly string[]) => names.filter((n) => o.names === undefined || o.names.includes(n));
  const groups = [
    { heading: `Test corruptions (${CORRUPTIONS.length})`, names: keep(CORRUPTIONS), extra: false },
    {
      heading: `Extra corruptions (${EXTRA_CORRUPTIONS.length}) — validation only: for choosing hyperparameters, never in the test streams`,
      names: keep(EXTRA_CORRUPTIONS),
      extra: true,
    },
  ].filter((gr) => gr.names.length > 0);
  const TITLE_H = 38,
    HEAD_H = 20,
    GROUP_H = 18;
  const cols = 1 + SEVERITIES.length;
  const width = LABEL_W + cols * (tileW + GAP);
  const rows = groups.reduce((n, gr) => n + gr.names.length, 0);
  const height = TITLE_H + HEAD_H + groups.length * GROUP_H + rows * (tileH + GAP) + 4;

  const canvas = document.getElementById('grid') as HTMLCanvasElement;
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext('2d')!;
  g.fillStyle = '#fff';
  g.fillRect(0, 0, width, height);
  g.textBaseline = 'middle';

  // Title (two lines) and column headers.
  g.fillStyle = '#111';
  g.textAlign = 'left';
  g.font = `bold 13px ${FONT}`;
  const regime = o.regime ?? DEFAULT_REGIME;
  const script = regime === 'cifar' ? 'make_cifar_c.py' : 'make_imagenet_64_c.py';
  g.fillText(`ImageNet-C corruptions (src/data/corruptions), severities 1–5, regime ${regime}`, 6, 11);
  g.font = `12px ${FONT}`;
  g.fillStyle = '#333';
  g.fillText(`${title}; constants of ${script}; seed ${o.seed}; tfjs ${report.backend} backend`, 6, 28);
  const colX = (j: number) => LABEL_W + j * (tileW + GAP);
  const headY = TITLE_H + HEAD_H / 2;
  g.font = `bold 12px ${FONT}`;
  g.textAlign = 'center';
  g.fillStyle = '#111';
  g.fillText('clean', colX(0) + tileW / 2, headY);
  SEVERITIES.forEach((s, j) => g.fillText(String(s), colX(j + 1) + tileW / 2, headY));
  g.textAlign = 'right';
  g.font = `12px ${FONT}`;
  g.fillStyle = '#555';
  g.fillText('severity →', LABEL_W - 8, headY);

  const ms: Record<string, number> = {};
  const meanAbsDiff: Record<string, number[]> = {};
  const badValues: Record<string, number> = {};
  let y = TITLE_H + HEAD_H;
  for (const group of groups) {
    // Group heading with a rule.
    g.fillStyle = group.extra ? '#b45309' : '#1e3a8a';
    g.fillRect(4, y + GROUP_H - 3, width - 8, 1);
    g.font = `bold 11px ${FONT}`;
    g.textAlign = 'left';
    g.fillText(group.heading, 6, y + GROUP_H / 2 - 1);
    y += GROUP_H;
    for (const name of group.names) {
      // Row label.
      const mid = y + tileH / 2;
      g.textAlign = 'right';
      g.fillStyle = group.extra ? '#b45309' : '#111';
      g.font = `${tileH >= 40 ? 13 : 11}px ${FONT}`;
      if (group.extra) {
        g.fillText(name, LABEL_W - 8, mid - 7);
        g.font = `italic 10px ${FONT}`;
        g.fillText('validation only', LABEL_W - 8, mid + 7);
      } else {
        g.fillText(name, LABEL_W - 8, mid);
      }
      blit(g, clean, h, w, c, colX(0), y, scale);
      const t0 = performance.now();
      const diffs: number[] = [];
      let bad = 0;
      for (const s of SEVERITIES) {
        const out = corrupt(image, name, s, o.seed, { regime });
        const v = (await out.data()) as Float32Array;
        out.dispose();
        let sum = 0;
        for (let i = 0; i < v.length; i++) {
          const x = v[i]!;
          if (!(x >= 0 && x <= 1)) bad++;
          sum += Math.abs(x - clean[i]!);
        }
        diffs.push(sum / v.length);
        blit(g, v, h, w, c, colX(s), y, scale);
      }
      ms[name] = performance.now() - t0;
      meanAbsDiff[name] = diffs;
      badValues[name] = bad;
      y += tileH + GAP;
    }
  }
  image.dispose();
  return { backend: report.backend, width, height, title, ms, meanAbsDiff, badValues };
}

(window as unknown as { wildttaCorruptionGrid: { render: (o: GridOptions) => Promise<GridResult> } }).wildttaCorruptionGrid = { render: renderGrid };
