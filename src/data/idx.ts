/** Reader for the IDX files MNIST and Fashion-MNIST ship in (uncompressed bytes). */

export class DataFormatError extends Error {
  override readonly name = 'DataFormatError';
}

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

/** Parses an unsigned-byte IDX file (magic 0x00000801 / 0x00000803). */
export function parseIdx(bytes: Uint8Array, what = 'IDX file'): IdxArray {
  if (bytes.byteLength < 4) throw new DataFormatError(`${what}: ${bytes.byteLength} bytes is too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== 0 || bytes[2] !== 0x08) {
    throw new DataFormatError(`${what}: not an unsigned-byte IDX file (magic ${view.getUint32(0).toString(16)})`);
  }
  const rank = bytes[3]!;
  if (rank < 1 || bytes.byteLength < 4 + 4 * rank) throw new DataFormatError(`${what}: bad rank ${rank}`);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (bytes.byteLength !== start + count) {
    throw new DataFormatError(`${what}: shape [${shape.join(', ')}] needs ${start + count} bytes, file has ${bytes.byteLength}`);
  }
  return { shape, data: bytes.subarray(start) };
}

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Images as uint8 [n, 28, 28] and labels [n]. */
export interface LabeledImages {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

export function labeledImagesFromIdx(images: Uint8Array, labels: Uint8Array): LabeledImages {
  const im = parseIdx(images, 'images file');
  const lb = parseIdx(labels, 'labels file');
  if (im.shape.length !== 3 || lb.shape.length !== 1 || im.shape[0] !== lb.shape[0]) {
    throw new DataFormatError(`images [${im.shape.join(', ')}] and labels [${lb.shape.join(', ')}] do not pair up`);
  }
  return { images: im.data, labels: lb.data, count: lb.shape[0]!, height: im.shape[1]!, width: im.shape[2]! };
}

/** Fetches one split ('t10k' or 'train') of uncompressed IDX files from a folder URL ending in '/'. */
export async function fetchLabeledImages(folderUrl: string, split: 't10k' | 'train' = 't10k'): Promise<LabeledImages> {
  const bytes = async (name: string) => {
    const res = await fetch(`${folderUrl}${name}`);
    if (!res.ok) throw new DataFormatError(`could not fetch ${folderUrl}${name}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  };
  const [images, labels] = await Promise.all([bytes(`${split}-images-idx3-ubyte`), bytes(`${split}-labels-idx1-ubyte`)]);
  return labeledImagesFromIdx(images, labels);
}
