// Computes a model's source statistics (src/model/source-stats.ts) from clean
// in-distribution images and writes them beside the weights.
//
//   npm run source-stats -- [--model public/models/fmnist-vit] [--data public/data/fashion-mnist] [--per-class 100] [--backend wasm]
//
// For the shipped model the images are the clean pool the benchmark holds
// out of every stream (splitPools: the last 100 test images of each class),
// grouped by their true labels; no stream image is ever used.
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelFolder, loadTestSplit, nodeSetup } from './lib/node-env';
import { grayBatch } from '../src/data/images';
import { splitPools } from '../src/data/streams';
import { computeSourceStats, SOURCE_STATS_FILE, writeSourceStats } from '../src/model/source-stats';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'public/models/fmnist-vit' },
    data: { type: 'string', default: 'public/data/fashion-mnist' },
    'per-class': { type: 'string', default: '100' },
    backend: { type: 'string', default: 'wasm' },
  },
});

await nodeSetup(args.backend);
const model = loadModelFolder(args.model);
const test = loadTestSplit(args.data);
const perClass = Number(args['per-class']);
const { clean } = splitPools(test.labels, model.config.numClasses, perClass);
const images = tf.tidy(() => tf.concat(clean.map((i) => grayBatch(test.images, i, 1, test.height, test.width))) as tf.Tensor4D);
const t0 = performance.now();
const stats = await computeSourceStats(model, images, {
  labels: clean.map((i) => test.labels[i]!),
  provenance: `Fashion-MNIST t10k, the benchmark's clean held-out pool (splitPools: last ${perClass} images of each class, ${clean.length} images), true labels; npm run source-stats`,
});
images.dispose();
const out = join(args.model, SOURCE_STATS_FILE);
const bytes = writeSourceStats(stats);
writeFileSync(out, bytes);
console.log(`wrote ${out}: ${bytes.byteLength} bytes from ${stats.count} images in ${((performance.now() - t0) / 1000).toFixed(1)} s (${tf.getBackend()})`);
model.dispose();
