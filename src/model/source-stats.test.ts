// Source statistics (source-stats.ts): computed values against a plain-array
// reference, the file round trip, and every validation error.
//
//   node --import tsx --test src/model/source-stats.test.ts
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ViT } from './vit';
import { randomViTTensors, tinyConfig } from './random-vit';
import { computeSourceStats, readSourceStats, writeSourceStats, SOURCE_STATS_METADATA_KEY, type SourceStats, type StatsShape } from './source-stats';
import { ModelFormatError } from './errors';
import { readSafetensors, writeSafetensors } from './safetensors';
import { backboneFromTensors } from './load';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

const cfg = tinyConfig({ depth: 2, heads: 2, numClasses: 4 });

async function fixture(): Promise<{ model: ViT; stats: SourceStats; pooled: Float32Array; labels: number[] }> {
  const model = new ViT(cfg, randomViTTensors(cfg, 7, 3));
  const x = tf.randomUniform([9, cfg.imageSize, cfg.imageSize, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
  const labels = [0, 1, 2, 0, 1, 2, 0, 1, 2]; // class 3 has no image
  const stats = await computeSourceStats(model, x, { labels, batchSize: 4, provenance: 'test images' });
  const pooled = tf.tidy(() => model.summaries(x).features).dataSync() as Float32Array;
  x.dispose();
  return { model, stats, pooled, labels };
}

test('computed statistics match a plain-array reference (batches of 4 over 9 images)', async () => {
  const { model, stats, pooled, labels } = await fixture();
  const D = cfg.width;
  assert.equal(stats.count, 9);
  assert.equal(stats.labels, 'true');
  for (let d = 0; d < D; d++) {
    const col = labels.map((_, b) => pooled[b * D + d]!);
    const mean = col.reduce((a, v) => a + v, 0) / 9;
    const v = col.reduce((a, x) => a + (x - mean) ** 2, 0) / 9;
    assert.ok(Math.abs(stats.featureMean[d]! - mean) < 1e-5, `mean ${d}`);
    assert.ok(Math.abs(stats.featureVar[d]! - v) < 1e-4, `var ${d}`);
    for (let c = 0; c < 3; c++) {
      const rows = labels.flatMap((l, b) => (l === c ? [pooled[b * D + d]!] : []));
      assert.ok(Math.abs(stats.classMeans[c * D + d]! - rows.reduce((a, x) => a + x, 0) / rows.length) < 1e-5, `class ${c} mean ${d}`);
    }
    // A class without images falls back to the overall mean.
    assert.ok(Math.abs(stats.classMeans[3 * D + d]! - mean) < 1e-6);
  }
  assert.deepEqual([...stats.classCounts], [3, 3, 3, 0]);
  assert.equal(stats.layerMeans.length, cfg.depth * D);
  // Percentiles of the images' own pixel means: 0th the smallest, 100th the largest.
  const px = tf.tidy(() => tf.moments(tf.randomUniform([9, cfg.imageSize, cfg.imageSize, 1], 0, 1, 'float32', 11), [1, 2, 3]).mean.dataSync());
  assert.ok(Math.abs(stats.inputMeanQuantiles[0]! - Math.min(...px)) < 1e-6);
  assert.ok(Math.abs(stats.inputMeanQuantiles[100]! - Math.max(...px)) < 1e-6);
  model.dispose();
});

test('write → read gives the same statistics back', async () => {
  const { model, stats } = await fixture();
  const bytes = writeSourceStats(stats);
  assert.ok(bytes.byteLength < 8192, `${bytes.byteLength} bytes`);
  const back = readSourceStats(bytes, model);
  for (const k of ['featureMean', 'featureVar', 'classMeans', 'classCounts', 'layerMeans', 'layerVars', 'inputMeanQuantiles', 'inputStdQuantiles'] as const)
    assert.deepEqual([...back[k]], [...stats[k]], k);
  assert.equal(back.count, 9);
  assert.equal(back.provenance, 'test images');
  model.dispose();
});

test('validation: every malformed or mismatched file is a ModelFormatError naming what is wrong', async () => {
  const { model, stats } = await fixture();
  const good = writeSourceStats(stats);
  const is = (re: RegExp) => (e: unknown) => e instanceof ModelFormatError && re.test(e.message);
  const other = (o: { classes?: number; width?: number; layers?: number[] }): StatsShape => ({
    config: { numClasses: o.classes ?? cfg.numClasses },
    featureWidth: o.width ?? cfg.width,
    summaryWidths: o.layers ?? model.summaryWidths,
  });
  assert.throws(() => readSourceStats(new Uint8Array([1, 2, 3]), model), is(/source statistics/));
  assert.throws(() => readSourceStats(good, other({ classes: 10 })), is(/class_means.*expected \[10, 16\]/));
  assert.throws(() => readSourceStats(good, other({ width: 32 })), is(/feature_mean/));
  assert.throws(() => readSourceStats(good, other({ layers: [16, 16, 16] })), is(/widths \[16, 16\], the model's are \[16, 16, 16\]/));
  assert.throws(() => readSourceStats(good, other({ layers: [8, 24] })), is(/widths \[16, 16\], the model's are \[8, 24\]/));
  const entries = (over: Record<string, Float32Array | null>, meta: Record<string, unknown> = {}) => {
    const D = cfg.width;
    const base: Record<string, [number[], Float32Array]> = {
      feature_mean: [[D], stats.featureMean],
      feature_var: [[D], stats.featureVar],
      class_means: [[4, D], stats.classMeans],
      class_counts: [[4], stats.classCounts],
      layer_means: [[cfg.depth, D], stats.layerMeans],
      layer_vars: [[cfg.depth, D], stats.layerVars],
      input_mean_quantiles: [[101], stats.inputMeanQuantiles],
      input_std_quantiles: [[101], stats.inputStdQuantiles],
    };
    const list: Array<[string, { shape: number[]; values: Float32Array }]> = [];
    for (const [k, [shape, values]] of Object.entries(base)) {
      if (over[k] === null) continue;
      list.push([k, { shape, values: over[k] ?? values }]);
    }
    return writeSafetensors(list, { [SOURCE_STATS_METADATA_KEY]: JSON.stringify({ format: 'wildtta-source-stats', version: 1, count: 9, ...meta }) });
  };
  assert.throws(() => readSourceStats(entries({ layer_vars: null }), model), is(/layer_vars.*lack/));
  const nan = Float32Array.from(stats.featureMean);
  nan[2] = NaN;
  assert.throws(() => readSourceStats(entries({ feature_mean: nan }), model), is(/feature_mean: value 2 is not finite/));
  const negative = Float32Array.from(stats.featureVar);
  negative[0] = -1;
  assert.throws(() => readSourceStats(entries({ feature_var: negative }), model), is(/feature_var: value 0 is negative/));
  const falling = Float32Array.from(stats.inputMeanQuantiles);
  falling[50] = falling[49]! - 0.1;
  assert.throws(() => readSourceStats(entries({ input_mean_quantiles: falling }), model), is(/input_mean_quantiles: percentiles must not decrease/));
  assert.throws(() => readSourceStats(entries({}, { version: 2 }), model), is(/unsupported version 2/));
  assert.throws(() => readSourceStats(entries({}, { count: 0 }), model), is(/count must be ≥ 1/));
  assert.throws(() => readSourceStats(entries({}, { format: 'other' }), model), is(/not a wildtta-source-stats file/));
  assert.ok(readSourceStats(entries({}), model).count === 9);
  // A file without the widths in its metadata (the first files had none) is checked by shape alone.
  assert.throws(() => readSourceStats(entries({}), other({ layers: [16, 16, 16] })), is(/layer_means: shape \[2, 16\].*expected \[3, 16\]/));
  model.dispose();
});

test("a GroupNorm ResNet: each block's pooled output, the blocks laid end to end (they widen), and the file round trip", async () => {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '../../e2e/fixtures/resnet-gn/basic-gray28');
  const file = readSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))));
  const model = backboneFromTensors(file.tensors, file.metadata, JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  assert.deepEqual(model.summaryWidths, [8, 8, 16, 16, 32]);
  const x = tf.randomUniform([6, 28, 28, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
  const stats = await computeSourceStats(model, x, { batchSize: 4 });
  const { features, layers } = tf.tidy(() => {
    const s = model.summaries(x);
    return { features: s.features.arraySync(), layers: s.layers.map((l) => l.arraySync()) };
  });
  assert.equal(stats.width, 32);
  assert.deepEqual(stats.layerWidths, [8, 8, 16, 16, 32]);
  assert.equal(stats.layerMeans.length, 80);
  // Block 2 (layer2.0, 16 channels) starts at offset 16; its channel 5 averaged over the 6 images.
  const ref = layers[2]!.reduce((a, row) => a + row[5]!, 0) / 6;
  assert.ok(Math.abs(stats.layerMeans[16 + 5]! - ref) < 1e-5, `${stats.layerMeans[21]} vs ${ref}`);
  // The last block's pooled output is the feature the head reads.
  for (let d = 0; d < 32; d++) assert.ok(Math.abs(stats.layerMeans[48 + d]! - stats.featureMean[d]!) < 1e-5);
  assert.ok(Math.abs(stats.featureMean[3]! - features.reduce((a, row) => a + row[3]!, 0) / 6) < 1e-5);
  const back = readSourceStats(writeSourceStats(stats), model);
  assert.deepEqual([...back.layerMeans], [...stats.layerMeans]);
  assert.deepEqual(back.layerWidths, [8, 8, 16, 16, 32]);
  // A ViT's file does not fit this model.
  const vit = await fixture();
  assert.throws(
    () => readSourceStats(writeSourceStats(vit.stats), model),
    (e: unknown) => e instanceof ModelFormatError && /widths \[16, 16\], the model's are \[8, 8, 16, 16, 32\]/.test(e.message),
  );
  vit.model.dispose();
  x.dispose();
  model.dispose();
});
