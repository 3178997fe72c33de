// Random-weight models in timm's layout, so the loader, the benchmark's
// speed rows and the docs' examples can be tried without PyTorch or a
// download: the three files of a model folder (model.safetensors, timm's
// config.json, source-stats.safetensors), the same bytes for the same seed.
// `npm run make-model` (tools/make-model.ts) writes them to a folder.
import * as tf from '@tensorflow/tfjs-core';
import { mulberry32 } from '../data/random';
import { expectedTensors, type ViTConfig } from './config';
import { CONFIG_FILE, SOURCE_STATS_FILE, WEIGHTS_FILE } from './files';
import { backboneFromTensors } from './load';
import { expectedResNetTensors, type ResNetGnConfig } from './resnet-gn';
import { expectedConvNeXtTensors, type ConvNeXtConfig } from './convnext';
import { writeSafetensors, type DecodedTensor } from './safetensors';
import { computeSourceStats, writeSourceStats } from './source-stats';

/** The families and sizes makeTestModel knows; `tiny` is a few hundred thousand parameters, the others are timm's models. */
export const TEST_MODEL_SIZES = {
  vit: ['tiny', 'ti', 's', 'b'],
  'resnet-gn': ['tiny', '50'],
  convnext: ['tiny', 'atto'],
} as const;

export type TestModelFamily = keyof typeof TEST_MODEL_SIZES;

/** What a test model is, before any weight exists: enough to check its shapes without allocating a ViT-B. */
export interface TestModelSpec {
  family: TestModelFamily;
  size: string;
  /** timm's architecture name (a size no timm name describes says the rest in model_args). */
  architecture: string;
  /** What it is, in words, for the docs. */
  description: string;
  imageSize: number;
  inChannels: number;
  numClasses: number;
  /** Every tensor, timm's name and shape, in forward order. */
  tensors: Array<[string, number[]]>;
  parameters: number;
  /** config.json as timm's save_for_hf writes it (architecture, num_classes, pretrained_cfg…). */
  configJson: Record<string, unknown>;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
// timm's augreg ViTs normalize with 0.5.
const HALF = [0.5, 0.5, 0.5];

interface ViTSize {
  architecture: string;
  description: string;
  modelArgs?: Record<string, unknown>;
  imageSize: number;
  patch: number;
  width: number;
  depth: number;
  heads: number;
  classes: number;
}

const VIT_SIZES: Record<(typeof TEST_MODEL_SIZES)['vit'][number], ViTSize> = {
  // timm's tiny ViT built smaller: the name is the one timm.create_model was given, model_args what it was built with.
  tiny: {
    architecture: 'vit_tiny_patch16_224',
    description: '32×32×3, patch 4, width 96, depth 4, 3 heads, 10 classes',
    modelArgs: { img_size: 32, patch_size: 4, embed_dim: 96, depth: 4, num_heads: 3 },
    imageSize: 32,
    patch: 4,
    width: 96,
    depth: 4,
    heads: 3,
    classes: 10,
  },
  ti: {
    architecture: 'vit_tiny_patch16_224',
    description: 'ViT-Ti/16, 224×224×3, 1,000 classes',
    imageSize: 224,
    patch: 16,
    width: 192,
    depth: 12,
    heads: 3,
    classes: 1000,
  },
  s: {
    architecture: 'vit_small_patch16_224',
    description: 'ViT-S/16, 224×224×3, 1,000 classes',
    imageSize: 224,
    patch: 16,
    width: 384,
    depth: 12,
    heads: 6,
    classes: 1000,
  },
  b: {
    architecture: 'vit_base_patch16_224',
    description: 'ViT-B/16, 224×224×3, 1,000 classes',
    imageSize: 224,
    patch: 16,
    width: 768,
    depth: 12,
    heads: 12,
    classes: 1000,
  },
};

interface ResNetSize {
  architecture: string;
  description: string;
  config: Omit<ResNetGnConfig, 'classNames' | 'normEps'>;
}

const RESNET_SIZES: Record<(typeof TEST_MODEL_SIZES)['resnet-gn'][number], ResNetSize> = {
  // No timm name has basic blocks with GroupNorm; this is the shipped fmnist-resnet-gn's shape in colour at 32 px.
  tiny: {
    architecture: 'resnet_gn_basic1111_w16',
    description: '32×32×3, basic blocks 1-1-1-1 of 16-128 channels, 8 groups, 10 classes',
    config: {
      imageSize: 32,
      inChannels: 3,
      numClasses: 10,
      block: 'basic',
      layers: [1, 1, 1, 1],
      stemWidth: 16,
      widths: [16, 32, 64, 128],
      groups: 8,
      mean: HALF,
      std: HALF,
    },
  },
  '50': {
    architecture: 'resnet50_gn',
    description: 'ResNet-50 with GroupNorm (32 groups), 224×224×3, 1,000 classes',
    config: {
      imageSize: 224,
      inChannels: 3,
      numClasses: 1000,
      block: 'bottleneck',
      layers: [3, 4, 6, 3],
      stemWidth: 64,
      widths: [64, 128, 256, 512],
      groups: 32,
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
    },
  },
};

interface ConvNeXtSize {
  architecture: string;
  description: string;
  modelArgs?: Record<string, unknown>;
  config: Omit<ConvNeXtConfig, 'classNames' | 'normEps'>;
}

const CONVNEXT_SIZES: Record<(typeof TEST_MODEL_SIZES)['convnext'][number], ConvNeXtSize> = {
  // The shipped fmnist-convnext's shape in colour at 32 px; timm's name with the model_args it was built with.
  tiny: {
    architecture: 'convnext_atto',
    description: '32×32×3, 2×2 stem, stages of 1-1-1-1 blocks of 16-128 channels, 10 classes',
    modelArgs: { depths: [1, 1, 1, 1], dims: [16, 32, 64, 128], patch_size: 2 },
    config: {
      imageSize: 32,
      inChannels: 3,
      numClasses: 10,
      patch: 2,
      depths: [1, 1, 1, 1],
      dims: [16, 32, 64, 128],
      kernels: [7, 7, 7, 7],
      convMlp: false,
      mean: HALF,
      std: HALF,
    },
  },
  atto: {
    architecture: 'convnext_atto',
    // timm builds its atto … nano with conv_mlp: the MLP as 1×1 convolutions.
    description: 'ConvNeXt-Atto (timm), 224×224×3, 1,000 classes',
    config: {
      imageSize: 224,
      inChannels: 3,
      numClasses: 1000,
      patch: 4,
      depths: [2, 2, 6, 2],
      dims: [40, 80, 160, 320],
      kernels: [7, 7, 7, 7],
      convMlp: true,
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
    },
  },
};

const count = (tensors: Array<[string, number[]]>) => tensors.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);

/** The spec of a family's size; anything else is a RangeError that lists what there is. */
export function testModelSpec(family: string, size: string): TestModelSpec {
  if (!Object.hasOwn(TEST_MODEL_SIZES, family)) throw new RangeError(`unknown family "${family}": choose one of ${Object.keys(TEST_MODEL_SIZES).join(', ')}`);
  const sizes: readonly string[] = TEST_MODEL_SIZES[family as TestModelFamily];
  if (!sizes.includes(size)) throw new RangeError(`unknown size "${size}" for ${family}: choose one of ${sizes.join(', ')}`);
  if (family === 'vit') return vitSpec(size, VIT_SIZES[size as keyof typeof VIT_SIZES]);
  if (family === 'convnext') return convNeXtSpec(size, CONVNEXT_SIZES[size as keyof typeof CONVNEXT_SIZES]);
  return resnetSpec(size, RESNET_SIZES[size as keyof typeof RESNET_SIZES]);
}

function vitSpec(size: string, s: ViTSize): TestModelSpec {
  const cfg: ViTConfig = {
    imageSize: s.imageSize,
    patchSize: s.patch,
    inChannels: 3,
    width: s.width,
    depth: s.depth,
    heads: s.heads,
    mlpHidden: 4 * s.width,
    numClasses: s.classes,
    normEps: 1e-6,
    pool: 'token',
    mean: HALF,
    std: HALF,
    classNames: [],
  };
  const tensors = expectedTensors(cfg, 'norm');
  const configJson = {
    architecture: s.architecture,
    num_classes: s.classes,
    num_features: s.width,
    global_pool: 'token',
    ...(s.modelArgs ? { model_args: s.modelArgs } : {}),
    pretrained_cfg: {
      input_size: [3, s.imageSize, s.imageSize],
      fixed_input_size: true,
      interpolation: 'bicubic',
      crop_pct: 0.9,
      crop_mode: 'center',
      mean: HALF,
      std: HALF,
      num_classes: s.classes,
      first_conv: 'patch_embed.proj',
      classifier: 'head',
    },
  };
  return {
    family: 'vit',
    size,
    architecture: s.architecture,
    description: s.description,
    imageSize: s.imageSize,
    inChannels: 3,
    numClasses: s.classes,
    tensors,
    parameters: count(tensors),
    configJson,
  };
}

function resnetSpec(size: string, s: ResNetSize): TestModelSpec {
  const c = s.config;
  const tensors = expectedResNetTensors({ ...c, classNames: [], normEps: 1e-5 });
  const features = tensors.find(([n]) => n === 'fc.weight')![1][1]!;
  const top = {
    num_features: features,
    global_pool: 'avg',
    // Not timm's: its GroupNorm count, which the weights cannot tell (timm's default is 32).
    gn_groups: c.groups,
  };
  return convSpec('resnet-gn', size, s, tensors, top, { first_conv: 'conv1', classifier: 'fc' });
}

function convNeXtSpec(size: string, s: ConvNeXtSize): TestModelSpec {
  const c = s.config;
  const tensors = expectedConvNeXtTensors({ ...c, classNames: [], normEps: 1e-6 });
  const top = {
    num_features: c.dims.at(-1),
    global_pool: 'avg',
    ...(s.modelArgs ? { model_args: s.modelArgs } : {}),
  };
  return convSpec('convnext', size, s, tensors, top, { first_conv: 'stem.0', classifier: 'head.fc' });
}

/**
 * The two convolutional families write timm's config.json alike but for
 * `top` (the keys between num_classes and pretrained_cfg) and the names of
 * their first convolution and classifier; the keys keep timm's order, so a
 * seed still gives the same bytes.
 */
function convSpec(
  family: 'resnet-gn' | 'convnext',
  size: string,
  s: { architecture: string; description: string; config: { imageSize: number; inChannels: number; numClasses: number; mean: number[]; std: number[] } },
  tensors: Array<[string, number[]]>,
  top: Record<string, unknown>,
  layers: { first_conv: string; classifier: string },
): TestModelSpec {
  const c = s.config;
  const configJson = {
    architecture: s.architecture,
    num_classes: c.numClasses,
    ...top,
    pretrained_cfg: {
      input_size: [c.inChannels, c.imageSize, c.imageSize],
      interpolation: 'bicubic',
      crop_pct: 0.95,
      crop_mode: 'center',
      mean: c.mean,
      std: c.std,
      num_classes: c.numClasses,
      ...layers,
    },
  };
  return {
    family,
    size,
    architecture: s.architecture,
    description: s.description,
    imageSize: c.imageSize,
    inChannels: c.inChannels,
    numClasses: c.numClasses,
    tensors,
    parameters: count(tensors),
    configJson,
  };
}

/** Seeded standard normals (Box-Muller over mulberry32). */
function normals(seed: number): () => number {
  const rand = mulberry32(seed);
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const z = spare;
      spare = undefined;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const a = 2 * Math.PI * rand();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
}

/**
 * How a tensor starts, after timm's own initializations: Linear layers
 * truncated normal with std 0.02, every norm's scale 1 and shift 0, biases 0,
 * ResNet convolutions He-normal over their fan-out, ConvNeXt convolutions
 * truncated normal with std 0.02 as its Linear layers. Three exceptions keep a
 * random model's outputs from being degenerate: the ViT's patch embedding
 * has LeCun's 1/√fan-in (timm's 'jax' scheme) so the image, not the position
 * table, dominates the tokens at every size; a ConvNeXt's layer scales are
 * 1, not timm's 1e-6, as a trained model's grow (at 1e-6 each block would
 * pass its input through and its norm get no gradient); and the head is scaled up
 * (HEAD_SCALE) so the predictions range from sure to unsure and the
 * methods' filters find frames to adapt on.
 */
function initStd(family: TestModelFamily, name: string, shape: number[]): number | { constant: number } {
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  if (family === 'convnext') {
    // Its downsample.1 is a convolution, not the ResNet's norm of that name.
    if (/^(stem\.1|stages\.\d+\.downsample\.0|.*\.norm)\.weight$/.test(name) || name.endsWith('.gamma')) return { constant: 1 };
    if (name.endsWith('.bias')) return { constant: 0 };
    return name === 'head.fc.weight' ? HEAD_SCALE / Math.sqrt(fanIn) : 0.02;
  }
  if (/(^|\.)(norm\d?|bn\d|downsample\.1)\.weight$/.test(name)) return { constant: 1 };
  if (name.endsWith('.bias')) return { constant: 0 };
  if (name === 'head.weight' || name === 'fc.weight') return HEAD_SCALE / Math.sqrt(fanIn);
  if (family === 'vit') {
    if (name === 'patch_embed.proj.weight') return 1 / Math.sqrt(fanIn);
    if (name === 'cls_token') return 1e-6;
    return 0.02;
  }
  // A convolution's fan-out: output channels × kernel area.
  return Math.sqrt(2 / (shape[0]! * shape[2]! * shape[3]!));
}

/**
 * The head's weights are this over √fan-in, so its logits spread by about
 * this much on features of unit scale (the ViT's final norm makes them so;
 * a ResNet's pooled activations come out about that size). A random model's pooled
 * features vary little from image to image: at timm's 0.02 every prediction
 * would be near uniform, and at 7 the synthetic images give entropies from
 * well under SAR's margin to near it, at 10 classes and at 1,000.
 */
const HEAD_SCALE = 7;

/** Seeded weights for a spec: every random tensor normal, truncated at two standard deviations. */
export function testModelTensors(spec: TestModelSpec, seed: number): Map<string, DecodedTensor> {
  const z = normals(seed);
  const out = new Map<string, DecodedTensor>();
  for (const [name, shape] of spec.tensors) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const init = initStd(spec.family, name, shape);
    if (typeof init === 'number') {
      for (let i = 0; i < values.length; i++) {
        let v = z();
        while (Math.abs(v) > 2) v = z();
        values[i] = v * init;
      }
    } else values.fill(init.constant);
    out.set(name, { shape, values });
  }
  return out;
}

/**
 * `count` synthetic images [count, size, size, channels] in [0, 1]: each a
 * few tinted stripes at random angles and frequencies over a random
 * brightness and contrast, plus a little noise, so the images' own means
 * and spreads (what input alignment reads) vary as real photos' do.
 */
export function syntheticImages(count: number, size: number, channels: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const z = normals(seed ^ 0x2545f491);
  const out = new Float32Array(count * size * size * channels);
  const waves = 3;
  for (let i = 0; i < count; i++) {
    const brightness = 0.2 + 0.6 * rand();
    const contrast = 0.05 + 0.3 * rand();
    const w = Array.from({ length: waves }, () => ({
      fx: (rand() * 2 - 1) * 6,
      fy: (rand() * 2 - 1) * 6,
      phase: 2 * Math.PI * rand(),
      tint: Array.from({ length: channels }, () => 0.5 + rand()),
    }));
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const at = ((i * size + y) * size + x) * channels;
        for (let c = 0; c < channels; c++) {
          let v = 0;
          for (const k of w) v += k.tint[c]! * Math.sin((2 * Math.PI * (k.fx * x + k.fy * y)) / size + k.phase);
          out[at + c] = Math.min(1, Math.max(0, brightness + (contrast * v) / Math.sqrt(waves) + 0.03 * z()));
        }
      }
  }
  return out;
}

/** How many synthetic images makeTestModel's statistics see unless told. */
export const defaultImages = (spec: TestModelSpec): number => (spec.imageSize > 64 ? 8 : 32);

export interface MakeTestModelOptions {
  family: string;
  size: string;
  /** Seeds the weights and the statistics' images (default 0); an integer in [0, 2³²). */
  seed?: number;
  /**
   * How many synthetic images the source statistics are computed from
   * (default 32 for the tiny sizes, 8 at 224 px, where tfjs's plain forward
   * that computeSourceStats runs takes seconds an image on wasm).
   */
  images?: number;
}

export interface TestModel {
  spec: TestModelSpec;
  /** The folder's files by name: model.safetensors, config.json, source-stats.safetensors. */
  files: Record<string, Uint8Array>;
}

/**
 * A random-weight model folder's files. The statistics run the model on the
 * active tfjs backend, so the same seed gives the same bytes on the same
 * backend (their last bits can differ between backends).
 */
export async function makeTestModel(o: MakeTestModelOptions): Promise<TestModel> {
  const spec = testModelSpec(o.family, o.size);
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
  const n = o.images ?? defaultImages(spec);
  if (!Number.isInteger(n) || n < 1 || n > 10000) throw new RangeError(`images must be an integer from 1 to 10000, got ${n}`);
  const configJson = {
    ...spec.configJson,
    wildtta_test_model: {
      weights: `random (seeded), not trained: npm run make-model -- --family ${spec.family} --size ${spec.size} --seed ${seed}`,
      seed,
    },
  };
  const tensors = testModelTensors(spec, seed);
  const weights = writeSafetensors(tensors);
  // Through the loader's own path (family detection, the config against the shapes, finite weights).
  const model = backboneFromTensors(tensors, {}, configJson);
  tensors.clear();
  let statsBytes: Uint8Array;
  try {
    const S = spec.imageSize;
    const images = tf.tensor4d(syntheticImages(n, S, spec.inChannels, (seed + 1) >>> 0), [n, S, S, spec.inChannels]);
    const stats = await computeSourceStats(model, images, {
      batchSize: S > 64 ? 8 : 64,
      architecture: spec.architecture,
      provenance: `${n} synthetic images (seeded stripes of random brightness and contrast, seed ${seed}), not real data: statistics of a random-weight test model (npm run make-model)`,
    });
    images.dispose();
    statsBytes = writeSourceStats(stats);
  } finally {
    model.dispose();
  }
  return {
    spec,
    files: {
      [WEIGHTS_FILE]: weights,
      [CONFIG_FILE]: new TextEncoder().encode(`${JSON.stringify(configJson, null, 2)}\n`),
      [SOURCE_STATS_FILE]: statsBytes,
    },
  };
}
