// What classify() accepts, turned into what the engine takes: drawable
// sources become an ImageBitmap of their center square (shrunk by the
// browser to at most 4× the model's input, so a 1080p frame does not cross
// to the worker or get read back at full size), ImageData and tensors become
// pixel frames as they are.
import { centerCrop, type PixelFrame } from '../runtime/preprocess';
import { SourceError } from './errors';

/** Anything with a shape and a data() method: a tf.Tensor from any copy of tfjs. */
export interface TensorLike {
  readonly shape: readonly number[];
  data(): Promise<ArrayLike<number>>;
}

export type ImageSource = HTMLVideoElement | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | ImageBitmap | ImageData | TensorLike;

export type PreparedFrame = { kind: 'bitmap'; bitmap: ImageBitmap } | { kind: 'pixels'; frame: PixelFrame };

const has = (name: string): boolean => typeof (globalThis as Record<string, unknown>)[name] === 'function';

function describe(source: unknown): string {
  if (source === null) return 'null';
  if (typeof source !== 'object') return typeof source;
  return (source as object).constructor?.name ?? 'an object';
}

/** Width and height of a drawable, or a SourceError saying why it has no frame to read. */
function drawableSize(source: unknown): { width: number; height: number } | undefined {
  if (has('HTMLVideoElement') && source instanceof HTMLVideoElement) {
    // HAVE_CURRENT_DATA: there is a frame to draw.
    if (source.readyState < 2 || source.videoWidth === 0)
      throw new SourceError(`the video has no frame yet (readyState ${source.readyState}); wait for 'loadeddata'`);
    return { width: source.videoWidth, height: source.videoHeight };
  }
  if (has('HTMLImageElement') && source instanceof HTMLImageElement) {
    if (!source.complete || source.naturalWidth === 0)
      throw new SourceError(`the image is not loaded (or failed to load): ${source.currentSrc || source.src || 'no src'}`);
    return { width: source.naturalWidth, height: source.naturalHeight };
  }
  if (
    (has('HTMLCanvasElement') && source instanceof HTMLCanvasElement) ||
    (has('OffscreenCanvas') && source instanceof OffscreenCanvas) ||
    (has('ImageBitmap') && source instanceof ImageBitmap)
  ) {
    const { width, height } = source as { width: number; height: number };
    if (!(width > 0 && height > 0)) throw new SourceError(`the ${describe(source)} is empty (${width}×${height})`);
    return { width, height };
  }
  return undefined;
}

export async function prepareFrame(source: ImageSource, modelSize: number, cropFraction: number): Promise<{ prepared: PreparedFrame; cropped: boolean }> {
  const size = drawableSize(source);
  if (size !== undefined) {
    const crop = centerCrop(size.width, size.height, cropFraction);
    const side = Math.min(crop.side, Math.max(4 * modelSize, 64));
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(source as ImageBitmapSource, crop.x, crop.y, crop.side, crop.side, {
        resizeWidth: side,
        resizeHeight: side,
        resizeQuality: 'high',
      });
    } catch (e) {
      throw new SourceError(`could not read the ${describe(source)}: ${(e as Error).message}`);
    }
    return { prepared: { kind: 'bitmap', bitmap }, cropped: true };
  }
  if (has('ImageData') && source instanceof ImageData) {
    // A copy: the frame's buffer is transferred to a worker, which would empty the caller's ImageData.
    const data = new Uint8ClampedArray(source.data);
    return { prepared: { kind: 'pixels', frame: { data, width: source.width, height: source.height, channels: 4, maxValue: 255 } }, cropped: false };
  }
  if (source !== null && typeof source === 'object' && Array.isArray((source as TensorLike).shape) && typeof (source as TensorLike).data === 'function') {
    const shape = (source as TensorLike).shape;
    const hwc = shape.length === 4 && shape[0] === 1 ? shape.slice(1) : shape;
    const [height, width, channels] = hwc as [number, number, number];
    if (hwc.length !== 3 || !(channels === 1 || channels === 3 || channels === 4)) {
      throw new SourceError(`a tensor source must be [H, W, C] or [1, H, W, C] with C = 1, 3 or 4 and values in [0, 1]; got shape [${shape.join(', ')}]`);
    }
    // A copy: data() may hand out the tensor's own storage, which a transfer to the worker would detach.
    const data = Float32Array.from(await (source as TensorLike).data());
    return { prepared: { kind: 'pixels', frame: { data, width, height, channels, maxValue: 1 } }, cropped: false };
  }
  throw new SourceError(
    `cannot classify ${describe(source)}: pass an HTMLVideoElement, HTMLImageElement, HTMLCanvasElement, OffscreenCanvas, ImageBitmap, ImageData or a tensor`,
  );
}
