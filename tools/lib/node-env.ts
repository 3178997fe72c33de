// Node-side loading of the shipped model and test split, for the scripts that run without a browser.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { backboneFromSafetensors, vitFromSafetensors } from '../../src/model/load';
import type { Backbone } from '../../src/model/backbone';
import type { ViT } from '../../src/model/vit';
import type { LabeledImages } from '../../src/data/idx';
import { loadFashionMnist } from '../fmnist-node';

export async function nodeSetup(backend = 'wasm'): Promise<void> {
  await tf.setBackend(backend);
  await tf.ready();
}

/** The model in `dir` (model.safetensors + config.json), of whichever family it is. */
export function loadModelFolder(dir: string): Backbone {
  const weights = new Uint8Array(readFileSync(join(dir, 'model.safetensors')));
  return backboneFromSafetensors(weights, JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
}

/** The ViT in `dir`, for the scripts that time or probe its fast path. */
export function loadViTFolder(dir: string): ViT {
  const weights = new Uint8Array(readFileSync(join(dir, 'model.safetensors')));
  return vitFromSafetensors(weights, JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
}

/** The shipped test split (uncompressed IDX in public/), or the same files in `dir`. */
export function loadTestSplit(dir = 'public/data/fashion-mnist'): LabeledImages {
  return loadFashionMnist('t10k', dir);
}
