// Writes a fake-camera video (YUV4MPEG2, 4:2:0) made of Fashion-MNIST test
// images, for Chromium's --use-file-for-fake-video-capture: each image is
// scaled up into the centered square of the frame (where the demo crops) on a
// dim backdrop, and held for a few frames. Chromium loops the file.
//
//   npm run demo:y4m -- [--out e2e/.artifacts/fake-camera.y4m] [--width 640] [--height 480]
//                       [--fps 10] [--hold 5] [--images 20] [--first 0] [--data public/data/fashion-mnist]
import { existsSync, mkdirSync, openSync, closeSync, writeSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadFashionMnist } from './fmnist-node';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface FakeCameraOptions {
  out?: string;
  width?: number;
  height?: number;
  fps?: number;
  /** Frames each image is shown for. */
  hold?: number;
  /** How many test images, starting at `first`. */
  images?: number;
  first?: number;
  dataDir?: string;
}

export interface FakeCameraVideo {
  path: string;
  width: number;
  height: number;
  fps: number;
  frames: number;
  /** Test-split index and label of each image, in playing order. */
  indices: number[];
  labels: number[];
}

/** Writes the video unless a file of the expected size is already there; returns what is in it. */
export function writeFakeCameraY4m(o: FakeCameraOptions = {}): FakeCameraVideo {
  const width = o.width ?? 640;
  const height = o.height ?? 480;
  const fps = o.fps ?? 10;
  const hold = o.hold ?? 5;
  const count = o.images ?? 20;
  const first = o.first ?? 0;
  if (width % 2 || height % 2) throw new RangeError(`4:2:0 needs an even width and height, got ${width}×${height}`);
  const path = resolve(o.out ?? join(ROOT, 'e2e', '.artifacts', `fake-camera-${width}x${height}-${first}-${count}x${hold}.y4m`));
  const data = loadFashionMnist('t10k', o.dataDir ?? join(ROOT, 'public', 'data', 'fashion-mnist'));
  if (first + count > data.count) throw new RangeError(`the split has ${data.count} images, asked for ${first}..${first + count - 1}`);
  const indices = Array.from({ length: count }, (_, i) => first + i);
  const labels = indices.map((i) => data.labels[i]!);
  const header = `YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg\n`;
  const frameBytes = 6 + width * height + 2 * (width / 2) * (height / 2);
  const info: FakeCameraVideo = { path, width, height, fps, frames: count * hold, indices, labels };
  if (existsSync(path) && statSync(path).size === header.length + frameBytes * count * hold) return info;

  mkdirSync(dirname(path), { recursive: true });
  const side = Math.min(width, height);
  const x0 = Math.floor((width - side) / 2);
  const y0 = Math.floor((height - side) / 2);
  const h = data.height;
  const w = data.width;
  const y = new Uint8Array(width * height);
  const chroma = new Uint8Array(2 * (width / 2) * (height / 2)).fill(128);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    for (const index of indices) {
      const img = data.images.subarray(index * h * w, (index + 1) * h * w);
      for (let r = 0; r < height; r++) {
        for (let c = 0; c < width; c++) {
          let v: number;
          if (r >= y0 && r < y0 + side && c >= x0 && c < x0 + side) {
            // Bilinear, pixel centers aligned: the demo's box-filter shrink then gives back about the original.
            const sy = Math.min(Math.max(((r - y0 + 0.5) * h) / side - 0.5, 0), h - 1);
            const sx = Math.min(Math.max(((c - x0 + 0.5) * w) / side - 0.5, 0), w - 1);
            const iy = Math.floor(sy);
            const ix = Math.floor(sx);
            const iy1 = Math.min(iy + 1, h - 1);
            const ix1 = Math.min(ix + 1, w - 1);
            const fy = sy - iy;
            const fx = sx - ix;
            const top = img[iy * w + ix]! * (1 - fx) + img[iy * w + ix1]! * fx;
            const bottom = img[iy1 * w + ix]! * (1 - fx) + img[iy1 * w + ix1]! * fx;
            v = top * (1 - fy) + bottom * fy;
          } else {
            // A dim vertical gradient outside the crop, so the frame reads as a scene and the crop box shows.
            v = 40 + (30 * r) / height;
          }
          y[r * width + c] = Math.round(v);
        }
      }
      for (let k = 0; k < hold; k++) {
        writeSync(fd, 'FRAME\n');
        writeSync(fd, y);
        writeSync(fd, chroma);
      }
    }
  } finally {
    closeSync(fd);
  }
  return info;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values: a } = parseArgs({
    options: {
      out: { type: 'string' },
      width: { type: 'string', default: '640' },
      height: { type: 'string', default: '480' },
      fps: { type: 'string', default: '10' },
      hold: { type: 'string', default: '5' },
      images: { type: 'string', default: '20' },
      first: { type: 'string', default: '0' },
      data: { type: 'string' },
    },
  });
  const info = writeFakeCameraY4m({
    ...(a.out === undefined ? {} : { out: a.out }),
    ...(a.data === undefined ? {} : { dataDir: a.data }),
    width: Number(a.width),
    height: Number(a.height),
    fps: Number(a.fps),
    hold: Number(a.hold),
    images: Number(a.images),
    first: Number(a.first),
  });
  console.log(`${info.path}: ${info.width}×${info.height}, ${info.fps} fps, ${info.frames} frames (test images ${info.indices[0]}..${info.indices.at(-1)})`);
  console.log(`chromium --use-fake-ui-for-media-stream --use-fake-device-for-media-stream --use-file-for-fake-video-capture=${info.path}`);
}
