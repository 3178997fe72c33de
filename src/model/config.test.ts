// ViT config resolution (ours and timm's config.json), shape checks, and loadViT's sources.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { checkShapes, expectedTensors, resolveViTConfig, type ViTConfig } from './config';
import { ModelFormatError } from './errors';
import { CONFIG_METADATA_KEY, loadViT, type LoadProgress } from './load';
import { writeSafetensors } from './safetensors';

before(async () => {
  await tf.setBackend('cpu');
});

interface Dims {
  width: number;
  depth: number;
  mlp: number;
  patch: number;
  image: number;
  channels: number;
  classes: number;
  finalNorm?: 'norm' | 'fc_norm';
}

/** The shape table of a timm ViT with these dimensions (no weights allocated). */
function vitShapes(d: Dims): Map<string, number[]> {
  const cfg: ViTConfig = {
    imageSize: d.image,
    patchSize: d.patch,
    inChannels: d.channels,
    width: d.width,
    depth: d.depth,
    heads: 1,
    mlpHidden: d.mlp,
    numClasses: d.classes,
    normEps: 1e-6,
    pool: 'token',
    mean: [],
    std: [],
    classNames: [],
  };
  return new Map(expectedTensors(cfg, d.finalNorm ?? 'norm'));
}

const TINY_224: Dims = { width: 192, depth: 12, mlp: 768, patch: 16, image: 224, channels: 3, classes: 1000 };
const SMALL_224: Dims = { width: 384, depth: 12, mlp: 1536, patch: 16, image: 224, channels: 3, classes: 1000 };

function throwsFormat(fn: () => unknown, message: RegExp, tensor?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${String(e)}`);
    assert.match(e.message, message);
    assert.equal(e.tensor, tensor);
    return true;
  });
}

async function rejectsFormat(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

test('timm config.json of vit_tiny_patch16_224 resolves against the shapes', () => {
  const shapes = vitShapes(TINY_224);
  const cfg = resolveViTConfig(shapes, {
    architecture: 'vit_tiny_patch16_224.augreg_in21k_ft_in1k',
    num_classes: 1000,
    global_pool: 'token',
    pretrained_cfg: { input_size: [3, 224, 224], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], crop_pct: 0.9 },
  });
  const { classNames, ...rest } = cfg;
  assert.deepEqual(rest, {
    imageSize: 224,
    patchSize: 16,
    inChannels: 3,
    width: 192,
    depth: 12,
    heads: 3,
    mlpHidden: 768,
    numClasses: 1000,
    normEps: 1e-6,
    pool: 'token',
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
  });
  assert.equal(classNames.length, 1000);
  assert.equal(classNames[999], 'class 999');
  assert.equal(checkShapes(cfg, shapes), 'norm');
});

test('timm config.json of deit_small_patch16_224 (ImageNet mean/std, 6 heads)', () => {
  const shapes = vitShapes(SMALL_224);
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const cfg = resolveViTConfig(shapes, {
    architecture: 'deit_small_patch16_224.fb_in1k',
    num_classes: 1000,
    global_pool: 'token',
    pretrained_cfg: { input_size: [3, 224, 224], mean, std, interpolation: 'bicubic' },
  });
  assert.equal(cfg.heads, 6);
  assert.equal(cfg.width, 384);
  assert.equal(cfg.depth, 12);
  assert.equal(cfg.mlpHidden, 1536);
  assert.equal(cfg.patchSize, 16);
  assert.equal(cfg.imageSize, 224);
  assert.deepEqual(cfg.mean, mean);
  assert.deepEqual(cfg.std, std);
  assert.equal(checkShapes(cfg, shapes), 'norm');
});

test('the config tools/train.ts writes resolves to the model it trained', () => {
  const dims: Dims = { width: 64, depth: 4, mlp: 128, patch: 4, image: 28, channels: 1, classes: 10 };
  const names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
  const json = {
    format: 'wildtta-vit',
    architecture: 'vit_fmnist_patch4_w64_d4',
    image_size: 28,
    patch_size: 4,
    in_chans: 1,
    embed_dim: 64,
    depth: 4,
    num_heads: 4,
    mlp_hidden: 128,
    num_classes: 10,
    norm_eps: 1e-6,
    global_pool: 'token',
    mean: [0.5],
    std: [0.5],
    class_names: names,
    training: { dataset: 'Fashion-MNIST train split (60,000 images)', steps: 3752 },
  };
  const cfg = resolveViTConfig(vitShapes(dims), json);
  assert.deepEqual(cfg, {
    imageSize: 28,
    patchSize: 4,
    inChannels: 1,
    width: 64,
    depth: 4,
    heads: 4,
    mlpHidden: 128,
    numClasses: 10,
    normEps: 1e-6,
    pool: 'token',
    mean: [0.5],
    std: [0.5],
    classNames: names,
  });
});

test('sizes come from the architecture name, then the shapes, when the config is silent', () => {
  // No config at all: patch from the kernel, image from the position table (14×14 + 1), heads = width / 64.
  const tiny = resolveViTConfig(vitShapes(TINY_224));
  assert.deepEqual([tiny.imageSize, tiny.patchSize, tiny.heads, tiny.pool], [224, 16, 3, 'token']);
  assert.deepEqual(tiny.mean, [0.5, 0.5, 0.5]);
  // The name gives image size and patch; the scale word gives the heads (base: 12).
  const base384 = vitShapes({ width: 768, depth: 1, mlp: 3072, patch: 16, image: 384, channels: 3, classes: 10 });
  const cfg = resolveViTConfig(base384, { architecture: 'vit_base_patch16_384.augreg_in21k_ft_in1k' });
  assert.deepEqual([cfg.imageSize, cfg.patchSize, cfg.heads, cfg.numClasses], [384, 16, 12, 10]);
  // An explicit num_heads wins over both.
  assert.equal(resolveViTConfig(vitShapes(TINY_224), { num_heads: 4 }).heads, 4);
});

test("timm's model_args (a model built with other sizes than its name's) win over the name and pretrained_cfg", () => {
  // timm.create_model('vit_tiny_patch16_224', img_size=32, patch_size=4, embed_dim=96, depth=4, num_heads=3): the name still says 16 and 224.
  const shapes = vitShapes({ width: 96, depth: 4, mlp: 384, patch: 4, image: 32, channels: 3, classes: 10 });
  const json = {
    architecture: 'vit_tiny_patch16_224',
    num_classes: 10,
    model_args: { img_size: [32, 32], patch_size: 4, embed_dim: 96, depth: 4, num_heads: 3 },
    pretrained_cfg: { input_size: [3, 224, 224] },
  };
  const cfg = resolveViTConfig(shapes, json);
  assert.deepEqual([cfg.imageSize, cfg.patchSize, cfg.width, cfg.depth, cfg.heads], [32, 4, 96, 4, 3]);
  assert.equal(checkShapes(cfg, shapes), 'norm');
  // Without them the name's patch (16) and scale word (tiny: 3 heads) are read, and the patch contradicts the weights.
  assert.equal(resolveViTConfig(shapes, { ...json, model_args: { img_size: 32, num_heads: 2 } }).heads, 2);
  throwsFormat(
    () => checkShapes(resolveViTConfig(shapes, { ...json, model_args: undefined }), shapes),
    /expected \[96, 3, 16, 16\]/,
    'patch_embed.proj.weight',
  );
  throwsFormat(() => resolveViTConfig(shapes, { ...json, model_args: { ...json.model_args, depth: 5 } }), /depth 5 but the weights have 4 blocks/);
});

test('avg pooling with fc_norm', () => {
  const shapes = vitShapes({ ...TINY_224, finalNorm: 'fc_norm' });
  assert.ok(!shapes.has('norm.weight') && shapes.has('fc_norm.weight'));
  // timm avg-pool models ship fc_norm (and no norm): the pool follows from the weights alone.
  const auto = resolveViTConfig(shapes);
  assert.equal(auto.pool, 'avg');
  assert.equal(checkShapes(auto, shapes), 'fc_norm');
  const timm = resolveViTConfig(shapes, { architecture: 'vit_tiny_patch16_224', global_pool: 'avg' });
  assert.equal(checkShapes(timm, shapes), 'fc_norm');
  // Avg pool over a model that kept `norm` (no fc_norm): norm before pooling.
  const plain = vitShapes(TINY_224);
  const avgNorm = resolveViTConfig(plain, { global_pool: 'avg' });
  assert.equal(checkShapes(avgNorm, plain), 'norm');
  // Token pooling needs `norm`, which an fc_norm model does not have.
  throwsFormat(() => checkShapes(resolveViTConfig(shapes, { global_pool: 'token' }), shapes), /tensor missing/, 'norm.weight');
  throwsFormat(() => resolveViTConfig(shapes, { global_pool: 'max' }), /global_pool must be "token" or "avg", got "max"/);
});

test('an fc_norm ViT loads and runs', async () => {
  const model = await loadViT(tinyFile({ finalNorm: 'fc_norm', config: null }));
  assert.equal(model.config.pool, 'avg');
  assert.equal(model.finalNorm, 'fc_norm');
  assert.ok(model.variables.has('fc_norm.weight') && !model.params.has('norm.weight'));
  const logits = tf.tidy(() => model.logits(tf.zeros([2, 8, 8, 1])));
  assert.deepEqual(logits.shape, [2, 3]);
  logits.dispose();
  model.dispose();
});

test('missing tensors are named', () => {
  const shapes = vitShapes(TINY_224);
  const cfg = resolveViTConfig(shapes);
  for (const name of ['blocks.7.attn.qkv.bias', 'cls_token', 'norm.bias', 'head.bias', 'patch_embed.proj.bias']) {
    const less = new Map(shapes);
    less.delete(name);
    throwsFormat(() => checkShapes(cfg, less), /^[\w.]+: tensor missing from the weights file$/, name);
  }
  // Tensors the config is read from are checked while resolving.
  for (const name of ['patch_embed.proj.weight', 'head.weight', 'pos_embed', 'blocks.0.mlp.fc1.weight', 'blocks.0.norm1.weight']) {
    const less = new Map(shapes);
    less.delete(name);
    throwsFormat(() => resolveViTConfig(less), /tensor missing from the weights file/, name);
  }
});

test('wrong shapes name the tensor, what it has and what was expected', () => {
  const shapes = vitShapes(TINY_224);
  const cfg = resolveViTConfig(shapes);
  const bad = new Map(shapes).set('blocks.3.mlp.fc2.weight', [192, 700]);
  throwsFormat(
    () => checkShapes(cfg, bad),
    /^blocks\.3\.mlp\.fc2\.weight: shape \[192, 700\] does not match the expected \[192, 768\]$/,
    'blocks.3.mlp.fc2.weight',
  );
  throwsFormat(
    () => checkShapes(cfg, new Map(shapes).set('pos_embed', [1, 196, 192])),
    /shape \[1, 196, 192\] does not match the expected \[1, 197, 192\]/,
    'pos_embed',
  );
  throwsFormat(() => checkShapes(cfg, new Map(shapes).set('norm.weight', [1, 192])), /shape \[1, 192\] does not match the expected \[192\]/, 'norm.weight');
  throwsFormat(
    () => resolveViTConfig(new Map(shapes).set('patch_embed.proj.weight', [192, 3, 16, 8])),
    /expected \[width, channels, patch, patch\], got \[192, 3, 16, 8\]/,
    'patch_embed.proj.weight',
  );
  throwsFormat(
    () => resolveViTConfig(new Map(shapes).set('patch_embed.proj.weight', [192, 3, 256])),
    /expected 4 non-zero dimensions, got \[192, 3, 256\]/,
    'patch_embed.proj.weight',
  );
});

test('inconsistent configs', () => {
  const shapes = vitShapes(TINY_224);
  throwsFormat(() => resolveViTConfig(shapes, { std: [0.5, 0, 0.5] }), /std must not contain 0/);
  throwsFormat(() => resolveViTConfig(shapes, { pretrained_cfg: { std: [0] } }), /std must not contain 0/);
  throwsFormat(() => resolveViTConfig(shapes, { class_names: ['cat', 'dog'] }), /class_names has 2 names for 1000 classes/);
  throwsFormat(() => resolveViTConfig(shapes, { label_names: ['cat'] }), /class_names has 1 names for 1000 classes/);
  throwsFormat(() => resolveViTConfig(shapes, { class_names: ['cat', 7] }), /class_names must be a list of strings/);
  throwsFormat(() => resolveViTConfig(shapes, { mean: [0.5, 0.5] }), /mean\/std need 3 values \(one per channel\)/);
  throwsFormat(() => resolveViTConfig(shapes, { mean: 'imagenet' }), /config mean must be a list of numbers, got "imagenet"/);
  throwsFormat(() => resolveViTConfig(shapes, { image_size: 225 }), /image_size 225 is not a multiple of patch_size 16/);
  throwsFormat(() => resolveViTConfig(shapes, { num_heads: 5 }), /embed_dim 192 is not divisible by num_heads 5/);
  throwsFormat(() => resolveViTConfig(shapes, { architecture: 'vit_tiny_patch16_224', num_heads: 0 }), /num_heads must be a positive integer, got 0/);
  throwsFormat(() => resolveViTConfig(shapes, { patch_size: 2.5 }), /patch_size must be a positive integer, got 2\.5/);
  for (const json of [null, [], 'vit', 3]) throwsFormat(() => resolveViTConfig(shapes, json), /config\.json is not an object/);
});

test('config sizes that contradict the weights are rejected before anything is sized from them', () => {
  const shapes = vitShapes(TINY_224);
  const quick = (json: unknown, message: RegExp, tensor?: string, s: Map<string, number[]> = shapes) => {
    const t0 = performance.now();
    throwsFormat(() => resolveViTConfig(s, json), message, tensor);
    assert.ok(performance.now() - t0 < 1000, `${JSON.stringify(json)} took ${performance.now() - t0} ms`);
  };
  // Each of these used to build arrays or tensor lists of the configured size (or hang / run out of memory).
  quick({ num_classes: 1e9 }, /config says 1000000000 classes, the weights have 1000/, 'head.weight');
  quick({ num_classes: 2 ** 32 + 1 }, /config says 4294967297 classes/, 'head.weight');
  quick({ in_chans: 1e9 }, /config says 1000000000 input channels, the weights have 3/, 'patch_embed.proj.weight');
  quick({ pretrained_cfg: { input_size: [1, 224, 224] } }, /config says 1 input channels, the weights have 3/, 'patch_embed.proj.weight');
  quick({ depth: 1e9 }, /config depth 1000000000 but the weights have 12 blocks/);
  quick({ depth: 6 }, /config depth 6 but the weights have 12 blocks/);
  // A zero dimension makes a tensor hold no bytes, so its other dimensions escape the file-size check.
  quick({}, /expected 2 non-zero dimensions, got \[4294967297, 0\]/, 'head.weight', new Map(shapes).set('head.weight', [2 ** 32 + 1, 0]));
  quick(
    {},
    /expected 4 non-zero dimensions, got \[0, 1000000000, 16, 16\]/,
    'patch_embed.proj.weight',
    new Map(shapes).set('patch_embed.proj.weight', [0, 1e9, 16, 16]),
  );
  // input_size and the architecture name are validated like the other sizes.
  quick({ pretrained_cfg: { input_size: [3, -224, -224] } }, /pretrained_cfg\.input_size\[1\] must be a positive integer, got -224/);
  quick({ pretrained_cfg: { input_size: [2.5, 224, 224] } }, /pretrained_cfg\.input_size\[0\] must be a positive integer, got 2\.5/);
  quick({ pretrained_cfg: { input_size: [3, 224, 192] } }, /input_size must be \[channels, size, size\], got \[3,224,192\]/);
  quick({ pretrained_cfg: { input_size: [224] } }, /input_size must be \[channels, size, size\]/);
  quick({ architecture: 'vit_tiny_patch0_224' }, /architecture patch size must be a positive integer, got 0/);
  quick({ architecture: 'vit_tiny_patch16_99999999999999999999' }, /architecture image size must be a positive integer, got 100000000000000000000/);
  quick({ norm_eps: -1e-6 }, /norm_eps must be a non-negative number, got -0\.000001/);
  quick({ norm_eps: '1e-6' }, /norm_eps must be a non-negative number, got "1e-6"/);
  assert.equal(resolveViTConfig(shapes, { norm_eps: 1e-5 }).normEps, 1e-5);
});

// --- loadViT -----------------------------------------------------------------

const TINY: Dims = { width: 8, depth: 2, mlp: 16, patch: 4, image: 8, channels: 1, classes: 3 };

/** A small ViT file; `config` is embedded as metadata unless null. */
function tinyFile(opts: { finalNorm?: 'norm' | 'fc_norm'; config?: object | null } = {}): Uint8Array<ArrayBuffer> {
  let seed = 1;
  const weights = [...vitShapes({ ...TINY, finalNorm: opts.finalNorm })].map(([name, shape]) => {
    const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => ((seed = (seed * 48271) % 2147483647) / 2147483647 - 0.5) * 0.2);
    return [name, { shape, values }] as [string, { shape: number[]; values: Float32Array }];
  });
  const config = opts.config === undefined ? { num_heads: 2, class_names: ['meta-a', 'meta-b', 'meta-c'] } : opts.config;
  return new Uint8Array(writeSafetensors(weights, config === null ? {} : { [CONFIG_METADATA_KEY]: JSON.stringify(config) }));
}

interface FakeServer {
  fetch: typeof fetch;
  requested: string[];
}

/** A fetch serving `files` by URL (weights streamed in chunks), 404 for anything else. */
function fakeServer(files: Record<string, Uint8Array | string | number>, opts: { chunk?: number; contentLength?: string | null } = {}): FakeServer {
  const requested: string[] = [];
  const fetchImpl = async (input: RequestInfo | URL): Promise<Response> => {
    const url = input instanceof Request ? input.url : input.toString();
    requested.push(url);
    const body = files[url];
    if (body === undefined) return new Response('not found', { status: 404 });
    if (typeof body === 'number') return new Response('error', { status: body });
    if (typeof body === 'string') return new Response(body, { headers: { 'content-type': 'application/json' } });
    const chunk = opts.chunk ?? 1000;
    let pos = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pos >= body.length) controller.close();
        else {
          controller.enqueue(body.slice(pos, pos + chunk));
          pos += chunk;
        }
      },
    });
    const headers = new Headers();
    const length = opts.contentLength === undefined ? String(body.length) : opts.contentLength;
    if (length !== null) headers.set('content-length', length);
    return new Response(stream, { headers });
  };
  return { fetch: fetchImpl as typeof fetch, requested };
}

function headBias(model: { params: Map<string, tf.Tensor> }): number[] {
  return [...model.params.get('head.bias')!.dataSync()];
}

const TINY_HEAD_BIAS = (() => {
  const file = tinyFile();
  const json = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + new DataView(file.buffer).getUint32(0, true))));
  const [begin, end] = json['head.bias'].data_offsets as [number, number];
  const start = 8 + new DataView(file.buffer).getUint32(0, true);
  return [...new Float32Array(file.slice(start + begin, start + end).buffer)];
})();

test('loadViT from a Blob and from an ArrayBuffer, with progress', async () => {
  const bytes = tinyFile();
  const progress: LoadProgress[] = [];
  const fromBlob = await loadViT(new Blob([bytes]), { onProgress: (p) => progress.push(p) });
  assert.deepEqual(progress, [{ loadedBytes: bytes.length, totalBytes: bytes.length }]);
  assert.deepEqual(fromBlob.config.classNames, ['meta-a', 'meta-b', 'meta-c'], 'config from the file metadata');
  assert.equal(fromBlob.config.heads, 2);
  assert.deepEqual(headBias(fromBlob), TINY_HEAD_BIAS);
  fromBlob.dispose();

  const progress2: LoadProgress[] = [];
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const fromBuffer = await loadViT(buffer, { config: { num_heads: 4, class_names: ['x', 'y', 'z'] }, onProgress: (p) => progress2.push(p) });
  assert.deepEqual(progress2, [{ loadedBytes: bytes.length, totalBytes: bytes.length }]);
  assert.deepEqual(fromBuffer.config.classNames, ['x', 'y', 'z'], 'options.config overrides the metadata');
  assert.equal(fromBuffer.config.heads, 4);
  fromBuffer.dispose();

  const fromBytes = await loadViT(bytes);
  assert.deepEqual(headBias(fromBytes), TINY_HEAD_BIAS);
  fromBytes.dispose();

  // A Blob is streamed: the file ends inside its header.
  await rejectsFormat(loadViT(new Blob([bytes.subarray(0, 100)])), /ended after 100 bytes, inside the safetensors header/);
});

test('loadViT from a folder URL reads model.safetensors and config.json, streaming with progress', async () => {
  const bytes = tinyFile();
  const server = fakeServer({
    'https://models.test/tiny/model.safetensors': bytes,
    'https://models.test/tiny/config.json': JSON.stringify({ num_heads: 2, class_names: ['cfg-a', 'cfg-b', 'cfg-c'] }),
  });
  const progress: LoadProgress[] = [];
  const model = await loadViT('https://models.test/tiny/', { fetch: server.fetch, onProgress: (p) => progress.push(p) });
  assert.deepEqual(server.requested.sort(), ['https://models.test/tiny/config.json', 'https://models.test/tiny/model.safetensors']);
  assert.deepEqual(model.config.classNames, ['cfg-a', 'cfg-b', 'cfg-c'], 'config.json wins over the metadata');
  assert.deepEqual(headBias(model), TINY_HEAD_BIAS, 'chunks reassembled in order');
  model.dispose();
  assert.equal(progress.length, Math.ceil(bytes.length / 1000));
  assert.ok(progress.every((p, i) => p.totalBytes === bytes.length && (i === 0 || p.loadedBytes > progress[i - 1]!.loadedBytes)));
  assert.deepEqual(progress.at(-1), { loadedBytes: bytes.length, totalBytes: bytes.length, fromCache: false });

  // A folder URL without the trailing slash, as a URL object.
  const again = await loadViT(new URL('https://models.test/tiny'), { fetch: server.fetch });
  again.dispose();
  assert.ok(server.requested.includes('https://models.test/tiny/model.safetensors'));
});

test('loadViT from a .safetensors URL whose config.json 404s uses the metadata, then the shapes', async () => {
  const withMeta = fakeServer({ 'https://models.test/a/weights.safetensors': tinyFile() });
  const progress: LoadProgress[] = [];
  const model = await loadViT('https://models.test/a/weights.safetensors', { fetch: withMeta.fetch, onProgress: (p) => progress.push(p) });
  assert.deepEqual(withMeta.requested.sort(), ['https://models.test/a/config.json', 'https://models.test/a/weights.safetensors']);
  assert.deepEqual(model.config.classNames, ['meta-a', 'meta-b', 'meta-c']);
  assert.equal(model.config.heads, 2);
  assert.ok(progress.length > 0);
  model.dispose();

  const bare = fakeServer({ 'https://models.test/b/model.safetensors': tinyFile({ config: null }) });
  const fromShapes = await loadViT('https://models.test/b/model.safetensors', { fetch: bare.fetch });
  const { classNames, ...rest } = fromShapes.config;
  assert.deepEqual(classNames, ['class 0', 'class 1', 'class 2']);
  assert.deepEqual(rest, {
    imageSize: 8,
    patchSize: 4,
    inChannels: 1,
    width: 8,
    depth: 2,
    heads: 1,
    mlpHidden: 16,
    numClasses: 3,
    normEps: 1e-6,
    pool: 'token',
    mean: [0.5],
    std: [0.5],
  });
  fromShapes.dispose();
});

test('loadViT with options.config fetches no config.json', async () => {
  const server = fakeServer({ 'https://models.test/c/model.safetensors': tinyFile() });
  const model = await loadViT('https://models.test/c/', { fetch: server.fetch, config: { num_heads: 8 } });
  assert.deepEqual(server.requested, ['https://models.test/c/model.safetensors']);
  assert.equal(model.config.heads, 8);
  model.dispose();
});

test('loadViT streams whatever the content-length says', async () => {
  const bytes = tinyFile();
  // Absent, too small, too large, negative, or not a number: the body decides.
  for (const contentLength of [null, '10', String(bytes.length + 5000), '-5', 'lots', '1.5']) {
    const server = fakeServer({ 'https://models.test/d/model.safetensors': bytes }, { contentLength, chunk: 333 });
    const progress: LoadProgress[] = [];
    const model = await loadViT('https://models.test/d/', { fetch: server.fetch, onProgress: (p) => progress.push(p) });
    assert.deepEqual(headBias(model), TINY_HEAD_BIAS, `content-length ${contentLength}`);
    model.dispose();
    const last = progress.at(-1)!;
    assert.equal(last.loadedBytes, bytes.length);
    const trusted = contentLength === '10' || contentLength === String(bytes.length + 5000);
    assert.equal(last.totalBytes, trusted ? Number(contentLength) : undefined, `content-length ${contentLength}`);
  }
});

test('loadViT errors: weights missing, config.json broken', async () => {
  const bytes = tinyFile();
  await rejectsFormat(
    loadViT('https://models.test/none/', { fetch: fakeServer({}).fetch }),
    /could not fetch https:\/\/models\.test\/none\/model\.safetensors: HTTP 404/,
  );
  const badJson = fakeServer({ 'https://models.test/e/model.safetensors': bytes, 'https://models.test/e/config.json': '{"num_heads": ' });
  await rejectsFormat(loadViT('https://models.test/e/', { fetch: badJson.fetch }), /config\.json is not valid JSON/);
  const serverError = fakeServer({ 'https://models.test/f/model.safetensors': bytes, 'https://models.test/f/config.json': 500 });
  await rejectsFormat(loadViT('https://models.test/f/', { fetch: serverError.fetch }), /could not fetch https:\/\/models\.test\/f\/config\.json: HTTP 500/);
  const wrongConfig = fakeServer({ 'https://models.test/g/model.safetensors': bytes, 'https://models.test/g/config.json': '{"num_classes": 10}' });
  await rejectsFormat(loadViT('https://models.test/g/', { fetch: wrongConfig.fetch }), /head\.weight: config says 10 classes, the weights have 3/);
});

test('a tensor the forward pass does not use is refused, naming it', async () => {
  const { tinyConfig, randomViTTensors } = await import('./random-vit');
  const { ViT } = await import('./vit');
  const cfg = tinyConfig();
  for (const extra of ['blocks.0.ls1.gamma', 'reg_token', 'norm_pre.weight']) {
    const tensors = randomViTTensors(cfg, 1);
    tensors.set(extra, { shape: [cfg.width], values: new Float32Array(cfg.width) });
    assert.throws(
      () => new ViT(cfg, tensors),
      (e: unknown) => e instanceof ModelFormatError && e.tensor === extra && /variant/.test(e.message),
    );
  }
});

test('weights holding NaN or infinity are refused at load, naming the tensor; the same file with finite values loads', async () => {
  const { readSafetensors } = await import('./safetensors');
  const clean = tinyFile();
  const { tensors, metadata } = readSafetensors(clean);
  for (const [name, bad] of [
    ['blocks.1.attn.qkv.weight', NaN],
    ['head.bias', Infinity],
    ['norm.weight', -Infinity],
  ] as const) {
    const copy = [...tensors].map(([n, t]) => [n, { shape: t.shape, values: t.values.slice() }] as [string, { shape: number[]; values: Float32Array }]);
    const hit = copy.find(([n]) => n === name)!;
    hit[1].values[1] = bad;
    const file = new Uint8Array(writeSafetensors(copy, metadata));
    await assert.rejects(
      loadViT(file),
      (e: unknown) => e instanceof ModelFormatError && e.tensor === name && new RegExp(`value 1 is ${String(bad)}`).test(e.message),
      name,
    );
  }
  (await loadViT(clean)).dispose();
});
