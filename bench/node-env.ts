// Node-side loading of the shipped model and test split, for the scripts that run without a browser.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vitFromSafetensors } from '../src/model/load';
import type { ViT } from '../src/model/vit';
import { labeledImagesFromIdx, type LabeledImages } from '../src/data/idx';

export async function nodeSetup(backend = 'wasm'): Promise<void> {
  await tf.setBackend(backend);
  await tf.ready();
}

export function loadModelFolder(dir: string): ViT {
  const weights = new Uint8Array(readFileSync(join(dir, 'model.safetensors')));
  return vitFromSafetensors(weights, JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
}

export function loadTestSplit(dir = 'public/data/fashion-mnist'): LabeledImages {
  return labeledImagesFromIdx(
    new Uint8Array(readFileSync(join(dir, 't10k-images-idx3-ubyte'))),
    new Uint8Array(readFileSync(join(dir, 't10k-labels-idx1-ubyte'))),
  );
}
