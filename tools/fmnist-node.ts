// Node-side access to Fashion-MNIST: the Debian dataset files (gzipped IDX) or a folder given on the command line.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { labeledImagesFromIdx, type LabeledImages } from '../src/data/idx';

export const DEBIAN_FMNIST_DIR = '/usr/share/datasets/fashion-mnist';

function readMaybeGz(dir: string, base: string): Uint8Array {
  for (const [name, unzip] of [
    [`${base}.gz`, true],
    [base, false],
  ] as const) {
    const p = join(dir, name);
    if (existsSync(p)) {
      const raw = readFileSync(p);
      return new Uint8Array(unzip ? gunzipSync(raw) : raw);
    }
  }
  throw new Error(`${base}(.gz) not found in ${dir}; install Debian's dataset-fashion-mnist or pass --data DIR`);
}

export function loadFashionMnist(split: 'train' | 't10k', dir = DEBIAN_FMNIST_DIR): LabeledImages {
  return labeledImagesFromIdx(readMaybeGz(dir, `${split}-images-idx3-ubyte`), readMaybeGz(dir, `${split}-labels-idx1-ubyte`));
}
