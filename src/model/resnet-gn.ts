// A GroupNorm ResNet in timm's layout (the names of timm's resnet50_gn and
// its basic-block siblings): stem conv1 7×7/2 + bn1 + max pool 3×3/2, stages
// layer1..layerN of basic (conv1, conv2) or bottleneck (conv1, conv2, conv3)
// blocks with a downsample.0/.1 shortcut where the shape changes, global
// average pooling and fc. Every norm is a GroupNorm (timm keeps the bn*
// names). The forward is plain tfjs ops; there is no hand-written backward:
// methods adapt it through tf.grads (backbone.ts's AutodiffBackbone).
import * as tf from '@tensorflow/tfjs-core';
import { AutodiffBackbone, type BackboneConfig, type NormSelection, type ParamLookup } from './backbone';
import { defineFamily } from './family';
import { classNamesOf, configObject, fail, inputNormalization, numberList, positiveInt, pretrainedCfg, shapeOf } from './config-json';
import type { DecodedTensor } from './safetensors';
import { addRelu, convNoFilterGrad, groupNormOp, type GroupNormFn } from './resnet-ops';
import { DerivedFilters } from './conv-grad';

export interface ResNetGnConfig extends BackboneConfig {
  block: 'basic' | 'bottleneck';
  /** Blocks per stage (timm's `layers`: [3, 4, 6, 3] for resnet50_gn). */
  layers: number[];
  /** Channels out of the stem, and each stage's block width (before a bottleneck's ×4). */
  stemWidth: number;
  widths: number[];
  /** GroupNorm groups (timm's default 32). */
  groups: number;
  normEps: number;
  /** Per-channel input normalization (x − mean) / std, x in [0, 1]. */
  mean: number[];
  std: number[];
}

const isNorm = (name: string) => /(^|\.)(bn\d|downsample\.1)\.(weight|bias)$/.test(name);

/**
 * The config from the tensor shapes and timm's config.json (`num_classes`,
 * `pretrained_cfg.input_size|mean|std`, class names) plus `gn_groups` (timm's
 * GroupNorm default, 32, when absent).
 */
export function resolveResNetGnConfig(shapes: ReadonlyMap<string, readonly number[]>, json: unknown = {}): ResNetGnConfig {
  const c = configObject(json);
  const pre = pretrainedCfg(c);
  const shape = (name: string, rank: number) => shapeOf(shapes, name, rank);
  const stem = shape('conv1.weight', 4);
  if (stem[2] !== 7 || stem[3] !== 7) fail(`expected timm's 7×7 stem, got [${stem.join(', ')}]`, 'conv1.weight');
  const layers: number[] = [];
  const widths: number[] = [];
  for (let s = 1; shapes.has(`layer${s}.0.conv1.weight`); s++) {
    let n = 0;
    while (shapes.has(`layer${s}.${n}.conv1.weight`)) n++;
    layers.push(n);
    widths.push(shape(`layer${s}.0.conv1.weight`, 4)[0]!);
  }
  const block = shapes.has('layer1.0.conv3.weight') ? 'bottleneck' : 'basic';
  const fc = shape('fc.weight', 2);
  const inputSize = numberList(pre.input_size, 'pretrained_cfg.input_size');
  const inChannels = stem[1]!;
  if (inputSize && inputSize[0] !== inChannels) fail(`config says ${inputSize[0]} input channels, the weights have ${inChannels}`, 'conv1.weight');
  const numClasses = positiveInt(c.num_classes, 'num_classes') ?? fc[0]!;
  if (numClasses !== fc[0]) fail(`config says ${numClasses} classes, the weights have ${fc[0]}`, 'fc.weight');
  const classNames = classNamesOf(c, numClasses);
  const { mean, std } = inputNormalization(c, inChannels);
  return {
    imageSize: positiveInt(c.image_size, 'image_size') ?? positiveInt(inputSize?.[1], 'pretrained_cfg.input_size[1]') ?? 224,
    inChannels,
    numClasses,
    classNames,
    block,
    layers,
    stemWidth: stem[0]!,
    widths,
    groups: positiveInt(c.gn_groups ?? c.num_groups, 'gn_groups') ?? 32,
    normEps: typeof c.norm_eps === 'number' ? c.norm_eps : 1e-5,
    mean,
    std,
  };
}

interface BlockPlan {
  name: string;
  cin: number;
  width: number;
  out: number;
  stride: number;
  downsample: boolean;
}

function plan(cfg: ResNetGnConfig): { blocks: BlockPlan[]; features: number } {
  const expansion = cfg.block === 'bottleneck' ? 4 : 1;
  const blocks: BlockPlan[] = [];
  let cin = cfg.stemWidth;
  cfg.layers.forEach((n, s) => {
    for (let i = 0; i < n; i++) {
      const stride = s > 0 && i === 0 ? 2 : 1;
      const out = cfg.widths[s]! * expansion;
      blocks.push({ name: `layer${s + 1}.${i}`, cin, width: cfg.widths[s]!, out, stride, downsample: stride !== 1 || cin !== out });
      cin = out;
    }
  });
  return { blocks, features: cin };
}

/** Every tensor the forward reads, with its shape, in forward order. */
export function expectedResNetTensors(cfg: ResNetGnConfig): Array<[string, number[]]> {
  const list: Array<[string, number[]]> = [];
  const conv = (name: string, out: number, cin: number, k: number) => list.push([`${name}.weight`, [out, cin, k, k]]);
  const norm = (name: string, ch: number) => list.push([`${name}.weight`, [ch]], [`${name}.bias`, [ch]]);
  conv('conv1', cfg.stemWidth, cfg.inChannels, 7);
  norm('bn1', cfg.stemWidth);
  const { blocks, features } = plan(cfg);
  for (const b of blocks) {
    if (cfg.block === 'basic') {
      conv(`${b.name}.conv1`, b.width, b.cin, 3);
      norm(`${b.name}.bn1`, b.width);
      conv(`${b.name}.conv2`, b.out, b.width, 3);
      norm(`${b.name}.bn2`, b.out);
    } else {
      conv(`${b.name}.conv1`, b.width, b.cin, 1);
      norm(`${b.name}.bn1`, b.width);
      conv(`${b.name}.conv2`, b.width, b.width, 3);
      norm(`${b.name}.bn2`, b.width);
      conv(`${b.name}.conv3`, b.out, b.width, 1);
      norm(`${b.name}.bn3`, b.out);
    }
    if (b.downsample) {
      conv(`${b.name}.downsample.0`, b.out, b.cin, 1);
      norm(`${b.name}.downsample.1`, b.out);
    }
  }
  list.push(['fc.weight', [cfg.numClasses, features]], ['fc.bias', [cfg.numClasses]]);
  return list;
}

/** The tensors a ResNet with this config has, checked against the file's: every one there with its shape, no other. */
function checkResNetTensors(config: ResNetGnConfig, tensors: ReadonlyMap<string, DecodedTensor>): Array<[string, number[]]> {
  const expected = expectedResNetTensors(config);
  for (const [name, want] of expected) {
    const got = tensors.get(name);
    if (got === undefined) fail('tensor missing from the weights file', name);
    else if (got.shape.length !== want.length || got.shape.some((d, i) => d !== want[i]))
      fail(`shape [${got.shape.join(', ')}] does not match the expected [${want.join(', ')}]`, name);
    if (isNorm(name) && want[0]! % config.groups !== 0) fail(`${want[0]} channels do not split into ${config.groups} GroupNorm groups (gn_groups)`, name);
  }
  const known = new Set(expected.map(([n]) => n));
  for (const name of tensors.keys())
    if (!known.has(name))
      fail('this tensor belongs to a ResNet variant wildtta does not implement (timm ResNet with GroupNorm, no stem or attention variants)', name);
  return expected;
}

/** A loaded GroupNorm ResNet: convolutions and fc constant, the GroupNorm scale/shift tf.Variables. */
export class ResNetGN extends AutodiffBackbone<ResNetGnConfig> {
  readonly family = 'resnet-gn';
  readonly headWeightName = 'fc.weight';
  readonly featureWidth: number;
  /** Convolution kernels in tfjs's layout [kh, kw, in, out]. */
  private readonly filters = new Map<string, tf.Tensor4D>();
  /** The convs' filters as their input gradients read them (conv-grad.ts), made at the first backward. */
  private readonly derived = new DerivedFilters();
  private readonly blocks: BlockPlan[];
  private readonly inputMean: tf.Tensor1D;
  private readonly inputStd: tf.Tensor1D;
  /** GroupNorm (and the ReLU after it) as single ops with their backward written out (resnet-ops.ts): most of an adaptation step's kernels went to autodiff of the plain ops. */
  private readonly groupNorm: GroupNormFn;
  private readonly groupNormRelu: GroupNormFn;
  /** The stem's: its input is the image's, never a function of an adapted norm, so its backward stops at the scale/shift. */
  private readonly stemNormRelu: GroupNormFn;
  private readonly eps: tf.Scalar;

  constructor(config: ResNetGnConfig, tensors: ReadonlyMap<string, DecodedTensor>) {
    const expected = checkResNetTensors(config, tensors);
    super(
      config,
      expected.map(([name]) => [name, tensors.get(name)!] as const),
      isNorm,
    );
    const p = plan(config);
    this.blocks = p.blocks;
    this.featureWidth = p.features;
    for (const [name, t] of this.params)
      if (t.rank === 4)
        this.filters.set(
          name,
          tf.tidy(() => tf.transpose(t, [2, 3, 1, 0]) as tf.Tensor4D),
        );
    this.inputMean = tf.tensor1d(config.mean);
    this.inputStd = tf.tensor1d(config.std);
    this.eps = tf.scalar(config.normEps);
    this.groupNorm = groupNormOp(config.groups, { value: config.normEps, tensor: this.eps }, { relu: false, inputGrad: true });
    this.groupNormRelu = groupNormOp(config.groups, { value: config.normEps, tensor: this.eps }, { relu: true, inputGrad: true });
    this.stemNormRelu = groupNormOp(config.groups, { value: config.normEps, tensor: this.eps }, { relu: true, inputGrad: false });
  }

  /** Stages and the stem: the units skipLastBlocks counts. */
  get normUnits(): number {
    return this.config.layers.length + 1;
  }

  /** The stem's and the stages' GroupNorms below the last `skipLastBlocks` stages (default 1: layer4 of a 4-stage ResNet stays, as SAR's reference skips it). */
  selectNorms(sel: NormSelection): string[] {
    const units = this.normUnits;
    const skip = sel.skipLastBlocks ?? 1;
    if (!Number.isInteger(skip) || skip < 0 || skip > units) throw new RangeError(`skipLastBlocks must be an integer in [0, ${units}], got ${skip}`);
    return [...this.variables.keys()].filter((name) => {
      const stage = /^layer(\d+)\./.exec(name);
      const unit = stage ? Number(stage[1]) : 0;
      return unit < units - skip;
    });
  }

  /** Each residual block's output channels. */
  get summaryWidths(): number[] {
    return this.blocks.map((b) => b.out);
  }

  /** Each residual block's output, average-pooled, is its summary. */
  protected run(images: tf.Tensor4D, norm: ParamLookup, afterBlock?: (summary: tf.Tensor2D) => void): { logits: tf.Tensor2D; features: tf.Tensor2D } {
    const conv = (x: tf.Tensor4D, name: string, stride: number, pad: number) => {
      const filter = this.filters.get(`${name}.weight`)!;
      return convNoFilterGrad(x, filter, stride, pad, { filters: this.derived, key: `${name}.weight` });
    };
    const gn = (x: tf.Tensor4D, name: string) => this.groupNorm(x, norm(`${name}.weight`), norm(`${name}.bias`));
    const gnRelu = (x: tf.Tensor4D, name: string) => this.groupNormRelu(x, norm(`${name}.weight`), norm(`${name}.bias`));
    let x = tf.div(tf.sub(images, this.inputMean), this.inputStd) as tf.Tensor4D;
    x = this.stemNormRelu(conv(x, 'conv1', 2, 3), norm('bn1.weight'), norm('bn1.bias'));
    x = tf.maxPool(x, 3, 2, 1);
    for (const b of this.blocks) {
      let y: tf.Tensor4D;
      if (this.config.block === 'basic') {
        y = gnRelu(conv(x, `${b.name}.conv1`, b.stride, 1), `${b.name}.bn1`);
        y = gn(conv(y, `${b.name}.conv2`, 1, 1), `${b.name}.bn2`);
      } else {
        y = gnRelu(conv(x, `${b.name}.conv1`, 1, 0), `${b.name}.bn1`);
        y = gnRelu(conv(y, `${b.name}.conv2`, b.stride, 1), `${b.name}.bn2`);
        y = gn(conv(y, `${b.name}.conv3`, 1, 0), `${b.name}.bn3`);
      }
      const shortcut = b.downsample ? gn(conv(x, `${b.name}.downsample.0`, b.stride, 0), `${b.name}.downsample.1`) : x;
      x = addRelu(y, shortcut);
      afterBlock?.(tf.mean(x, [1, 2]) as tf.Tensor2D);
    }
    const features = tf.mean(x, [1, 2]) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(features, this.param('fc.weight'), false, true), this.param('fc.bias')) as tf.Tensor2D;
    return { logits, features };
  }

  protected override release(): void {
    for (const t of [...this.filters.values(), this.inputMean, this.inputStd, this.eps]) t.dispose();
    this.filters.clear();
    this.derived.dispose();
  }
}

/** The GroupNorm ResNet's entry in the family registry (families.ts). */
export const resnetGnFamily = defineFamily({
  name: 'resnet-gn',
  detect: (names) => names.has('conv1.weight') && names.has('layer1.0.conv1.weight') && names.has('fc.weight'),
  config: resolveResNetGnConfig,
  build: (config, tensors) => new ResNetGN(config, tensors),
});
