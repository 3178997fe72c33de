import {
  classNamesOf,
  configObject,
  fail,
  inputNormalization,
  modelArgs,
  numberList,
  positiveInt,
  pretrainedCfg,
  shapeOf,
  type ShapeTable,
} from './config-json';
import { showValue } from './errors';

export type { ShapeTable };

/** Everything the forward pass needs to know about a ViT, beyond its weights. */
export interface ViTConfig {
  imageSize: number;
  patchSize: number;
  inChannels: number;
  width: number;
  depth: number;
  heads: number;
  mlpHidden: number;
  numClasses: number;
  normEps: number;
  /** 'token': classify the class token; 'avg': mean of the patch tokens (timm's global_pool). */
  pool: 'token' | 'avg';
  /** Per-channel input normalization applied inside the model: (x - mean) / std, x in [0, 1]. */
  mean: number[];
  std: number[];
  classNames: string[];
}

const TIMM_HEADS: Record<string, number> = { tiny: 3, small: 6, base: 12, large: 16, huge: 16 };

/**
 * Builds the ViT config from the tensor shapes and an optional config.json.
 *
 * Two config flavours are read: ours (`image_size`, `patch_size`, `in_chans`,
 * `embed_dim`, `depth`, `num_heads`, ...) and the one timm publishes beside
 * `model.safetensors` (`architecture`, `num_classes`, `global_pool`,
 * `pretrained_cfg.input_size|mean|std`, and `model_args` where the model was
 * built with other sizes than its name's). Whatever the config leaves out is
 * taken from the shapes (width, depth, MLP size, patch, classes); heads default
 * to width / 64, timm's head size for every standard ViT/DeiT.
 */
export function resolveViTConfig(shapes: ShapeTable, json: unknown = {}): ViTConfig {
  const c = configObject(json);
  const pretrained = pretrainedCfg(c);
  const args = modelArgs(c);

  const patchShape = shapeOf(shapes, 'patch_embed.proj.weight', 4);
  if (patchShape[2] !== patchShape[3]) {
    fail(`expected [width, channels, patch, patch], got [${patchShape.join(', ')}]`, 'patch_embed.proj.weight');
  }
  const [shapeWidth, shapeChannels, shapePatch] = patchShape as [number, number, number, number];

  let depth = 0;
  while (shapes.has(`blocks.${depth}.norm1.weight`)) depth++;
  if (depth === 0) fail('tensor missing from the weights file (a ViT needs at least one block)', 'blocks.0.norm1.weight');
  const fc1 = shapeOf(shapes, 'blocks.0.mlp.fc1.weight', 2);
  const head = shapeOf(shapes, 'head.weight', 2);
  const pos = shapeOf(shapes, 'pos_embed', 3);

  // timm puts the image size and patch in the architecture name (vit_base_patch16_224...).
  const arch = typeof c.architecture === 'string' ? c.architecture : '';
  const archPatch = /patch(\d+)/.exec(arch)?.[1];
  const archSize = /patch\d+_(\d+)/.exec(arch)?.[1];
  const archScale = /^(?:vit|deit\d*)_(tiny|small|base|large|huge)/.exec(arch)?.[1];
  const inputSize = numberList(pretrained.input_size, 'pretrained_cfg.input_size');
  if (inputSize !== undefined && (inputSize.length !== 3 || inputSize[1] !== inputSize[2])) {
    fail(`config pretrained_cfg.input_size must be [channels, size, size], got ${showValue(inputSize)}`);
  }

  // model_args come before pretrained_cfg and the name: they are what the model was built with.
  const patchSize =
    positiveInt(c.patch_size, 'patch_size') ??
    positiveInt(args.patch_size, 'model_args.patch_size') ??
    positiveInt(archPatch === undefined ? undefined : Number(archPatch), 'architecture patch size') ??
    shapePatch;
  const inChannels =
    positiveInt(c.in_chans, 'in_chans') ??
    positiveInt(args.in_chans, 'model_args.in_chans') ??
    positiveInt(inputSize?.[0], 'pretrained_cfg.input_size[0]') ??
    shapeChannels;
  const width = positiveInt(c.embed_dim, 'embed_dim') ?? positiveInt(args.embed_dim, 'model_args.embed_dim') ?? shapeWidth;
  const gridFromPos = Math.round(Math.sqrt((pos[1] ?? 1) - 1));
  const imageSize =
    positiveInt(c.image_size, 'image_size') ??
    positiveInt(squareSide(args.img_size), 'model_args.img_size') ??
    positiveInt(inputSize?.[1], 'pretrained_cfg.input_size[1]') ??
    positiveInt(archSize === undefined ? undefined : Number(archSize), 'architecture image size') ??
    gridFromPos * patchSize;
  const heads =
    positiveInt(c.num_heads, 'num_heads') ??
    positiveInt(args.num_heads, 'model_args.num_heads') ??
    (archScale ? TIMM_HEADS[archScale] : undefined) ??
    Math.max(1, Math.round(width / 64));
  const poolSetting = c.global_pool ?? args.global_pool ?? (shapes.has('fc_norm.weight') ? 'avg' : 'token');
  if (poolSetting !== 'token' && poolSetting !== 'avg') fail(`config global_pool must be "token" or "avg", got ${showValue(poolSetting)}`);
  const globalPool = poolSetting as 'token' | 'avg';
  const numClasses = positiveInt(c.num_classes, 'num_classes') ?? head[0]!;
  // Sizes the config gives that the weights also fix must agree before anything is
  // sized from them (a corrupt config could otherwise ask for a billion class names).
  if (inChannels !== shapeChannels) {
    fail(`config says ${inChannels} input channels, the weights have ${shapeChannels}`, 'patch_embed.proj.weight');
  }
  if (numClasses !== head[0]) fail(`config says ${numClasses} classes, the weights have ${head[0]}`, 'head.weight');
  const configDepth = positiveInt(c.depth, 'depth') ?? positiveInt(args.depth, 'model_args.depth') ?? depth;
  if (configDepth !== depth) fail(`config depth ${configDepth} but the weights have ${depth} blocks`);
  const normEps = c.norm_eps ?? 1e-6;
  if (typeof normEps !== 'number' || !(normEps >= 0) || !Number.isFinite(normEps)) {
    fail(`config norm_eps must be a non-negative number, got ${showValue(c.norm_eps)}`);
  }
  const classNames = classNamesOf(c, numClasses);
  const { mean, std } = inputNormalization(c, inChannels);

  const cfg: ViTConfig = {
    imageSize,
    patchSize,
    inChannels,
    width,
    depth,
    heads,
    mlpHidden: fc1[0]!,
    numClasses,
    normEps: normEps as number,
    pool: globalPool,
    mean,
    std,
    classNames,
  };
  checkConfig(cfg);
  return cfg;
}

/** timm takes img_size as one side or as [height, width]; a square pair is its side. */
function squareSide(v: unknown): unknown {
  return Array.isArray(v) && v.length === 2 && v[0] === v[1] ? v[0] : v;
}

function checkConfig(cfg: ViTConfig): void {
  if (cfg.imageSize % cfg.patchSize !== 0) fail(`image_size ${cfg.imageSize} is not a multiple of patch_size ${cfg.patchSize}`);
  if (cfg.width % cfg.heads !== 0) fail(`embed_dim ${cfg.width} is not divisible by num_heads ${cfg.heads}`);
}

/** The name and shape of every tensor a ViT with this config must have, in forward order. */
export function expectedTensors(cfg: ViTConfig, finalNorm: 'norm' | 'fc_norm'): Array<[string, number[]]> {
  const D = cfg.width;
  const tokens = (cfg.imageSize / cfg.patchSize) ** 2 + 1;
  const list: Array<[string, number[]]> = [
    ['patch_embed.proj.weight', [D, cfg.inChannels, cfg.patchSize, cfg.patchSize]],
    ['patch_embed.proj.bias', [D]],
    ['cls_token', [1, 1, D]],
    ['pos_embed', [1, tokens, D]],
  ];
  for (let i = 0; i < cfg.depth; i++) {
    const b = `blocks.${i}`;
    list.push(
      [`${b}.norm1.weight`, [D]],
      [`${b}.norm1.bias`, [D]],
      [`${b}.attn.qkv.weight`, [3 * D, D]],
      [`${b}.attn.qkv.bias`, [3 * D]],
      [`${b}.attn.proj.weight`, [D, D]],
      [`${b}.attn.proj.bias`, [D]],
      [`${b}.norm2.weight`, [D]],
      [`${b}.norm2.bias`, [D]],
      [`${b}.mlp.fc1.weight`, [cfg.mlpHidden, D]],
      [`${b}.mlp.fc1.bias`, [cfg.mlpHidden]],
      [`${b}.mlp.fc2.weight`, [D, cfg.mlpHidden]],
      [`${b}.mlp.fc2.bias`, [D]],
    );
  }
  list.push([`${finalNorm}.weight`, [D]], [`${finalNorm}.bias`, [D]], ['head.weight', [cfg.numClasses, D]], ['head.bias', [cfg.numClasses]]);
  return list;
}

/** Checks every expected tensor is present with its shape; throws naming the first that is not. */
export function checkShapes(cfg: ViTConfig, shapes: ShapeTable): 'norm' | 'fc_norm' {
  const finalNorm = cfg.pool === 'avg' && shapes.has('fc_norm.weight') ? 'fc_norm' : 'norm';
  const expected = expectedTensors(cfg, finalNorm);
  for (const [name, want] of expected) {
    const got = shapes.get(name);
    if (got === undefined) fail('tensor missing from the weights file', name);
    else if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
      fail(`shape [${got.join(', ')}] does not match the expected [${want.join(', ')}]`, name);
    }
  }
  // A tensor the forward pass does not use means a ViT variant it does not implement
  // (layer scale, register or distillation tokens, pre-norm...): running without it would be silently wrong.
  const known = new Set(expected.map(([name]) => name));
  for (const name of shapes.keys()) {
    if (!known.has(name)) fail('this tensor belongs to a ViT variant wildtta does not implement (only the plain timm VisionTransformer is supported)', name);
  }
  return finalNorm;
}

/** Our config.json for a config (the inverse of resolveViTConfig for our own keys). */
export function viTConfigJson(cfg: ViTConfig): Record<string, unknown> {
  return {
    format: 'wildtta-vit',
    architecture: `vit_patch${cfg.patchSize}_w${cfg.width}_d${cfg.depth}_${cfg.imageSize}`,
    image_size: cfg.imageSize,
    patch_size: cfg.patchSize,
    in_chans: cfg.inChannels,
    embed_dim: cfg.width,
    depth: cfg.depth,
    num_heads: cfg.heads,
    mlp_hidden: cfg.mlpHidden,
    num_classes: cfg.numClasses,
    norm_eps: cfg.normEps,
    global_pool: cfg.pool,
    mean: cfg.mean,
    std: cfg.std,
    class_names: cfg.classNames,
  };
}
