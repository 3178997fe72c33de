// Prints the shipped model's clean top-1 accuracy on the Fashion-MNIST test split.
//
//   npm run eval:clean -- [--model public/models/fmnist-vit] [--data public/data/fashion-mnist] [--backend wasm|cpu]
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { grayAccuracy } from '../src/model/evaluate';
import { loadModelFolder, loadTestSplit, nodeSetup } from './lib/node-env';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'public/models/fmnist-vit' },
    data: { type: 'string', default: 'public/data/fashion-mnist' },
    backend: { type: 'string', default: 'wasm' },
    count: { type: 'string' },
  },
});

await nodeSetup(args.backend);
const model = loadModelFolder(args.model);
const test = loadTestSplit(args.data);
const count = args.count ? Number(args.count) : test.count;
const t0 = performance.now();
const acc = await grayAccuracy(model, test.images, test.labels, { count, batch: 500 });
const seconds = (performance.now() - t0) / 1000;
let parameters = 0;
for (const t of model.params.values()) parameters += t.size;
console.log(
  JSON.stringify({
    model: args.model,
    backend: tf.getBackend(),
    images: acc.total,
    correct: acc.correct,
    accuracy: acc.accuracy,
    parameters,
    seconds: Number(seconds.toFixed(1)),
  }),
);
console.log(`clean top-1 accuracy: ${(acc.accuracy * 100).toFixed(2)}% on ${acc.total} test images (${tf.getBackend()}, ${parameters} parameters)`);
model.dispose();
