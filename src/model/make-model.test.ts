// Random-weight test models (make-model.ts): each family's tiny folder loads
// through the loader as a folder URL with its statistics, gives finite,
// varied logits and takes SAR and sar-align steps; ViT-Ti loads too; timm's
// sizes have timm's names, shapes and parameter counts without a weight
// allocated; a seed gives the same bytes; a bad argument says what there is.
//
//   npm test -- make-model
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { createAdapter } from '../methods';
import { checkShapes, resolveViTConfig } from './config';
import { CONFIG_FILE, SOURCE_STATS_FILE, WEIGHTS_FILE } from './files';
import { loadBackbone } from './load';
import { makeTestModel, syntheticImages, testModelSpec, TEST_MODEL_SIZES } from './make-model';
import { expectedResNetTensors, resolveResNetGnConfig } from './resnet-gn';
import { expectedConvNeXtTensors, resolveConvNeXtConfig } from './convnext';
import { fetchSourceStats } from './source-stats';

// wasm, as the tools run: ViT-Ti's forward and the SAR steps take a fraction of the cpu backend's time.
before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

const FOLDER = 'https://models.test/test-model/';

/** A static server over a folder held in memory: the files by name, a 404 for anything else. */
function folderFetch(files: Record<string, Uint8Array>): typeof fetch {
  return (async (input: string | URL | Request) => {
    const url = String(input instanceof Request ? input.url : input);
    const bytes = url.startsWith(FOLDER) ? files[url.slice(FOLDER.length)] : undefined;
    if (bytes === undefined) return new Response('not found', { status: 404 });
    return new Response(new Uint8Array(bytes), { headers: { 'content-length': String(bytes.byteLength) } });
  }) as typeof fetch;
}

const entropy = (row: number[]) => {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return -e.reduce((a, v) => a + (v / z) * Math.log(v / z), 0);
};

for (const family of Object.keys(TEST_MODEL_SIZES) as Array<keyof typeof TEST_MODEL_SIZES>) {
  test(`${family} tiny: the folder loads by URL with its statistics, gives finite and varied logits, and SAR and sar-align adapt it`, async () => {
    // Seed 0: the folder the docs' command writes.
    const { spec, files } = await makeTestModel({ family, size: 'tiny', seed: 0, images: 16 });
    assert.deepEqual(Object.keys(files).sort(), [CONFIG_FILE, SOURCE_STATS_FILE, WEIGHTS_FILE].sort());
    assert.ok(spec.parameters > 200_000 && spec.parameters < 1_000_000, `${spec.parameters} parameters`);
    const doFetch = folderFetch(files);
    const model = await loadBackbone(FOLDER, { fetch: doFetch });
    assert.equal(model.family, family);
    assert.deepEqual([model.config.imageSize, model.config.inChannels, model.config.numClasses], [32, 3, 10]);
    const stats = await fetchSourceStats(model, undefined, FOLDER, doFetch);
    assert.ok(stats, 'source-stats.safetensors beside the weights');
    assert.equal(stats.count, 16);
    assert.equal(stats.labels, 'predicted');
    assert.match(stats.provenance, /16 synthetic images .*not real data/);
    assert.equal(stats.architecture, spec.architecture);
    // The synthetic images differ in brightness, so input alignment has a range to clamp to.
    assert.ok(stats.inputMeanQuantiles[100]! - stats.inputMeanQuantiles[0]! > 0.2, 'pixel means spread');

    const N = 32;
    const frames = tf.tensor4d(syntheticImages(N, 32, 3, 77), [N, 32, 32, 3]);
    const logits = (await model.logits(frames).array()) as number[][];
    assert.ok(logits.flat().every(Number.isFinite), 'finite logits');
    // Not degenerate: the images are told apart, and the predictions range from sure to unsure.
    assert.ok(new Set(logits.map((r) => r.indexOf(Math.max(...r)))).size >= 2, `argmax ${logits.map((r) => r.indexOf(Math.max(...r)))}`);
    const entropies = logits.map(entropy);
    assert.ok(Math.min(...entropies) < 0.4 * Math.log(10), `entropies ${entropies.map((e) => e.toFixed(2))}`);
    assert.ok(Math.max(...entropies) > 0.1, `entropies ${entropies.map((e) => e.toFixed(2))}`);

    for (const method of ['sar', 'sar-align'] as const) {
      const a = await createAdapter(model, { method, sourceStats: stats });
      const before = (await Promise.all([...a.params.values()].map((p) => p.data()))).map((d) => Float32Array.from(d));
      let reliable = 0;
      for (let i = 0; i < N; i++) {
        const x = tf.slice(frames, [i, 0, 0, 0], [1, -1, -1, -1]);
        if ((await a.step(x)).reliable[0]) reliable++;
        x.dispose();
      }
      await a.flush();
      // SAR's defaults, margin included: the head's scale gives its filter frames to take.
      assert.ok(a.updateCount >= 1, `${method}: ${a.updateCount} updates from ${reliable} reliable frames of ${N}`);
      const after = await Promise.all([...a.params.values()].map((p) => p.data()));
      assert.ok(
        after.every((d) => (d as Float32Array).every(Number.isFinite)),
        `${method}: finite norms`,
      );
      assert.ok(
        after.some((d, i) => d.some((v, j) => v !== before[i]![j])),
        `${method}: the norms moved`,
      );
      a.dispose();
    }
    frames.dispose();
    model.dispose();
  });
}

test('ViT-Ti/16 (timm vit_tiny_patch16_224) is made, loads and gives finite logits', async () => {
  const { spec, files } = await makeTestModel({ family: 'vit', size: 'ti', seed: 1, images: 2 });
  const config = JSON.parse(new TextDecoder().decode(files[CONFIG_FILE])) as Record<string, unknown>;
  assert.equal(config.architecture, 'vit_tiny_patch16_224');
  const model = await loadBackbone(FOLDER, { fetch: folderFetch(files) });
  assert.deepEqual([model.config.imageSize, model.config.numClasses, model.featureWidth], [224, 1000, 192]);
  const x = tf.tensor4d(syntheticImages(1, 224, 3, 5), [1, 224, 224, 3]);
  const logits = model.logits(x);
  assert.ok((await logits.data()).every(Number.isFinite));
  assert.equal(spec.parameters, 5_717_416);
  tf.dispose([x, logits]);
  model.dispose();
});

test("timm's sizes have timm's tensor names, shapes and parameter counts (checked from the shapes alone)", () => {
  // timm's own counts for these architectures at 1,000 classes.
  // convnext_atto: timm lists 3.7 M; this is the sum over its tensors' shapes.
  const timm: Record<string, number> = {
    'vit ti': 5_717_416,
    'vit s': 22_050_664,
    'vit b': 86_567_656,
    'resnet-gn 50': 25_557_032,
    'convnext atto': 3_695_520,
  };
  const dims: Record<string, number[]> = { ti: [192, 12, 3, 768], s: [384, 12, 6, 1536], b: [768, 12, 12, 3072] };
  for (const [key, parameters] of Object.entries(timm)) {
    const [family, size] = key.split(' ') as [string, string];
    const spec = testModelSpec(family, size);
    assert.equal(spec.parameters, parameters, key);
    const shapes = new Map(spec.tensors);
    if (family === 'vit') {
      const cfg = resolveViTConfig(shapes, spec.configJson);
      assert.deepEqual([cfg.imageSize, cfg.patchSize, cfg.inChannels, cfg.numClasses, cfg.pool], [224, 16, 3, 1000, 'token'], key);
      assert.deepEqual([cfg.width, cfg.depth, cfg.heads, cfg.mlpHidden], dims[size], key);
      assert.equal(checkShapes(cfg, shapes), 'norm');
      assert.match(spec.architecture, new RegExp(`^vit_${{ ti: 'tiny', s: 'small', b: 'base' }[size]}_patch16_224$`));
    } else if (family === 'convnext') {
      const cfg = resolveConvNeXtConfig(shapes, spec.configJson);
      assert.deepEqual(
        [cfg.depths, cfg.dims, cfg.patch, cfg.kernels, cfg.convMlp, cfg.imageSize],
        [[2, 2, 6, 2], [40, 80, 160, 320], 4, [7, 7, 7, 7], true, 224],
      );
      assert.deepEqual(expectedConvNeXtTensors(cfg), spec.tensors);
      assert.deepEqual(shapes.get('stages.3.blocks.1.mlp.fc2.weight'), [320, 1280, 1, 1]);
    } else {
      const cfg = resolveResNetGnConfig(shapes, spec.configJson);
      assert.deepEqual([cfg.block, cfg.layers, cfg.widths, cfg.groups, cfg.imageSize], ['bottleneck', [3, 4, 6, 3], [64, 128, 256, 512], 32, 224]);
      assert.deepEqual(expectedResNetTensors(cfg), spec.tensors);
      assert.ok(shapes.has('layer4.2.conv3.weight') && shapes.has('layer1.0.downsample.1.bias'));
    }
  }
});

test('the same seed gives the same bytes; another seed other weights', async () => {
  const a = await makeTestModel({ family: 'vit', size: 'tiny', seed: 9, images: 4 });
  const b = await makeTestModel({ family: 'vit', size: 'tiny', seed: 9, images: 4 });
  for (const name of Object.keys(a.files)) assert.ok(Buffer.from(a.files[name]!).equals(b.files[name]!), `${name} differs between two runs`);
  const c = await makeTestModel({ family: 'vit', size: 'tiny', seed: 10, images: 4 });
  assert.equal(a.files[WEIGHTS_FILE]!.byteLength, c.files[WEIGHTS_FILE]!.byteLength);
  assert.ok(!Buffer.from(a.files[WEIGHTS_FILE]!).equals(c.files[WEIGHTS_FILE]!), 'seed 10 made the weights of seed 9');
  assert.ok(!Buffer.from(a.files[SOURCE_STATS_FILE]!).equals(c.files[SOURCE_STATS_FILE]!), 'seed 10 made the statistics of seed 9');
});

test('an unknown family or size, or a bad seed or image count, is refused saying what there is', async () => {
  assert.throws(() => testModelSpec('vgg', 'tiny'), { name: 'RangeError', message: 'unknown family "vgg": choose one of vit, resnet-gn, convnext' });
  assert.throws(() => testModelSpec('vit', 'l'), { name: 'RangeError', message: 'unknown size "l" for vit: choose one of tiny, ti, s, b' });
  assert.throws(() => testModelSpec('resnet-gn', 'b'), /unknown size "b" for resnet-gn: choose one of tiny, 50/);
  // Not an own key of the table.
  assert.throws(() => testModelSpec('toString', 'tiny'), /unknown family "toString"/);
  await assert.rejects(makeTestModel({ family: 'vit', size: 'tiny', seed: -1 }), /seed must be an integer in \[0, 2\^32\), got -1/);
  await assert.rejects(makeTestModel({ family: 'vit', size: 'tiny', seed: 1.5 }), /seed must be an integer/);
  await assert.rejects(makeTestModel({ family: 'vit', size: 'tiny', images: 0 }), /images must be an integer from 1 to 10000, got 0/);
});
