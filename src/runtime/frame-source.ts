// ImageBitmap → pixels, on whichever thread holds the bitmap: an
// OffscreenCanvas where there is one (workers, current browsers), else a
// canvas element. One canvas is kept and resized, so a frame loop does not
// make a canvas per frame.
import { FrameFormatError, type PixelFrame } from './preprocess';

type Ctx = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;
let ctx: Ctx | undefined;

function context(width: number, height: number): Ctx {
  if (ctx === undefined) {
    const canvas =
      typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(width, height) : Object.assign(document.createElement('canvas'), { width, height });
    // Read back every frame: keep the canvas in CPU memory rather than on the GPU.
    const c = canvas.getContext('2d', { willReadFrequently: true }) as Ctx | null;
    if (c === null) throw new FrameFormatError('no 2D canvas context to read the image with');
    ctx = c;
  }
  if (ctx.canvas.width !== width || ctx.canvas.height !== height) {
    ctx.canvas.width = width;
    ctx.canvas.height = height;
  }
  return ctx;
}

/** The bitmap's RGBA bytes as a frame the engine takes. */
export function bitmapToFrame(bitmap: ImageBitmap): PixelFrame {
  const { width, height } = bitmap;
  if (!(width > 0 && height > 0)) throw new FrameFormatError(`the image has no pixels (${width}×${height}; a closed or detached ImageBitmap?)`);
  const c = context(width, height);
  c.clearRect(0, 0, width, height);
  c.drawImage(bitmap, 0, 0);
  return { data: c.getImageData(0, 0, width, height).data, width, height, channels: 4, maxValue: 255 };
}
