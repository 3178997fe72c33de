// A ConvNeXt in timm's layout (the names of timm's convnext_atto … _large):
// a patch stem (stem.0, a k×k/k convolution, and stem.1, a LayerNorm2d),
// stages.N of blocks, from the second stage on after a downsample
// (downsample.0, a LayerNorm2d, and downsample.1, a 2×2/2 convolution); each
// block a depthwise convolution (conv_dw), a channels-last LayerNorm (norm),
// an MLP with exact GELU (mlp.fc1, mlp.fc2) and a layer scale (gamma) on the
// residual branch; then global average pooling, a LayerNorm (head.norm) and
// head.fc. timm's conv_mlp variant (convnext_atto … _nano: the MLP as 1×1
// convolutions after a LayerNorm2d) computes the same sums and is read too,
// its [4C, C, 1, 1] weights as [4C, C]. A CNN whose every norm is a LayerNorm: batch-agnostic like the ViT
// and the GroupNorm ResNet. Adaptation runs its forward on the kernels,
// recording its written-out backward (backbone.ts's SteppedBackbone); the same
// network on differentiable ops (convnext-ops.ts) serves evaluation,
// statistics and the tests' autodiff reference. ConvNeXt-V2 (GRN, no layer
// scale) is not implemented.
import * as tf from '@tensorflow/tfjs-core';
import {
  SteppedBackbone,
  SteppedTape,
  type BackboneConfig,
  type BackboneTape,
  type BackStep,
  type GradientLayout,
  type NormSelection,
  type ParamLookup,
  type TapeStep,
} from './backbone';
import { geluGrad, layerNorm, layerNormGrad } from '../kernels';
import { defineFamily } from './family';
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
import type { DecodedTensor } from './safetensors';
import { convNoFilterGrad } from './resnet-ops';
import { convInputGrad, DerivedFilters } from './conv-grad';
import { depthwiseNoFilterGrad, geluExact, layerNormOp, linearNoWeightGrad, type LayerNormFn } from './convnext-ops';

export interface ConvNeXtConfig extends BackboneConfig {
  /** The stem's kernel and stride (timm's patch_size: 4 for its ImageNet models). */
  patch: number;
  /** Blocks per stage (timm's depths: [2, 2, 6, 2] for convnext_atto). */
  depths: number[];
  /** Channels of each stage (timm's dims: [40, 80, 160, 320] for convnext_atto). */
  dims: number[];
  /** Each stage's depthwise kernel (timm's kernel_sizes, 7 unless told). */
  kernels: number[];
  /** The MLP stored as 1×1 convolutions (timm's conv_mlp): the same sums, weights [out, in, 1, 1]. */
  convMlp: boolean;
  normEps: number;
  /** Per-channel input normalization (x − mean) / std, x in [0, 1]. */
  mean: number[];
  std: number[];
}

/** Every LayerNorm's scale and shift: the stem's, each downsample's, each block's and the head's. */
const isNorm = (name: string) => /^(stem\.1|stages\.\d+\.downsample\.0|stages\.\d+\.blocks\.\d+\.norm|head\.norm)\.(weight|bias)$/.test(name);

/** A name only ConvNeXt-V2 has: its Global Response Norm. */
const isGrn = (name: string) => /\.grn\.(weight|bias|gamma|beta)$/.test(name);

/**
 * The config from the tensor shapes and timm's config.json (`num_classes`,
 * `pretrained_cfg.input_size|mean|std`, class names, `model_args`); depths,
 * dims and kernels come from the shapes, and model_args must agree with them
 * where it names them. ε: timm's 1e-6 (ConvNeXt's LayerNorm2d and its
 * blocks' LayerNorm) unless `norm_eps` says otherwise.
 */
export function resolveConvNeXtConfig(shapes: ShapeTable, json: unknown = {}): ConvNeXtConfig {
  const c = configObject(json);
  const pre = pretrainedCfg(c);
  const args = modelArgs(c);
  for (const name of shapes.keys())
    if (isGrn(name)) fail("ConvNeXt-V2's Global Response Norm (GRN) is not supported: wildtta implements ConvNeXt V1 (layer scale, no GRN)", name);
  if (args.stem_type !== undefined && args.stem_type !== 'patch')
    fail(`model_args.stem_type ${showValue(args.stem_type)} is not supported: wildtta implements timm's patch stem only`);
  const shape = (name: string, rank: number) => shapeOf(shapes, name, rank);
  const stem = shape('stem.0.weight', 4);
  if (stem[2] !== stem[3]) fail(`expected a square patch stem, got [${stem.join(', ')}]`, 'stem.0.weight');
  const depths: number[] = [];
  const dims: number[] = [];
  const kernels: number[] = [];
  for (let s = 0; shapes.has(`stages.${s}.blocks.0.conv_dw.weight`); s++) {
    let n = 0;
    while (shapes.has(`stages.${s}.blocks.${n}.conv_dw.weight`)) n++;
    const dw = shape(`stages.${s}.blocks.0.conv_dw.weight`, 4);
    // An odd square kernel: timm pads it by k // 2, which keeps the map's size.
    if (dw[1] !== 1 || dw[2] !== dw[3] || dw[2]! % 2 !== 1)
      fail(`expected a depthwise [C, 1, k, k] filter with k odd, got [${dw.join(', ')}]`, `stages.${s}.blocks.0.conv_dw.weight`);
    depths.push(n);
    dims.push(dw[0]!);
    kernels.push(dw[2]!);
  }
  if (depths.length === 0) fail('tensor missing from the weights file', 'stages.0.blocks.0.conv_dw.weight');
  const agree = (key: string, got: number[]) => {
    const want = numberList(args[key], `model_args.${key}`);
    if (want && want.join() !== got.join()) fail(`model_args.${key} is [${want.join(', ')}], the weights have [${got.join(', ')}]`);
  };
  agree('depths', depths);
  agree('dims', dims);
  const fc1 = shapes.get('stages.0.blocks.0.mlp.fc1.weight');
  const convMlp = fc1?.length === 4;
  if (typeof args.conv_mlp === 'boolean' && args.conv_mlp !== convMlp)
    fail(`model_args.conv_mlp is ${args.conv_mlp}, the weights' MLP is ${convMlp ? '1×1 convolutions' : 'Linear layers'}`, 'stages.0.blocks.0.mlp.fc1.weight');
  const fc = shape('head.fc.weight', 2);
  const inputSize = numberList(pre.input_size, 'pretrained_cfg.input_size');
  const inChannels = stem[1]!;
  if (inputSize && inputSize[0] !== inChannels) fail(`config says ${inputSize[0]} input channels, the weights have ${inChannels}`, 'stem.0.weight');
  const numClasses = positiveInt(c.num_classes, 'num_classes') ?? fc[0]!;
  if (numClasses !== fc[0]) fail(`config says ${numClasses} classes, the weights have ${fc[0]}`, 'head.fc.weight');
  const eps = c.norm_eps ?? args.norm_eps;
  if (eps !== undefined && (typeof eps !== 'number' || !(eps > 0))) fail(`config norm_eps must be a positive number, got ${showValue(eps)}`);
  const { mean, std } = inputNormalization(c, inChannels);
  return {
    // 224: timm's ImageNet ConvNeXts' input, where the config names none.
    imageSize: positiveInt(c.image_size, 'image_size') ?? positiveInt(inputSize?.[1], 'pretrained_cfg.input_size[1]') ?? 224,
    inChannels,
    numClasses,
    classNames: classNamesOf(c, numClasses),
    patch: stem[2]!,
    depths,
    dims,
    kernels,
    convMlp,
    normEps: (eps as number | undefined) ?? 1e-6,
    mean,
    std,
  };
}

/** Every tensor the forward reads, with its shape, in forward order. */
export function expectedConvNeXtTensors(cfg: ConvNeXtConfig): Array<[string, number[]]> {
  const list: Array<[string, number[]]> = [];
  const norm = (name: string, ch: number) => list.push([`${name}.weight`, [ch]], [`${name}.bias`, [ch]]);
  const { dims } = cfg;
  list.push(['stem.0.weight', [dims[0]!, cfg.inChannels, cfg.patch, cfg.patch]], ['stem.0.bias', [dims[0]!]]);
  norm('stem.1', dims[0]!);
  cfg.depths.forEach((n, s) => {
    const C = dims[s]!;
    if (s > 0) {
      norm(`stages.${s}.downsample.0`, dims[s - 1]!);
      list.push([`stages.${s}.downsample.1.weight`, [C, dims[s - 1]!, 2, 2]], [`stages.${s}.downsample.1.bias`, [C]]);
    }
    const k = cfg.kernels[s]!;
    for (let i = 0; i < n; i++) {
      const b = `stages.${s}.blocks.${i}`;
      list.push([`${b}.conv_dw.weight`, [C, 1, k, k]], [`${b}.conv_dw.bias`, [C]]);
      norm(`${b}.norm`, C);
      const pointwise = cfg.convMlp ? [1, 1] : [];
      list.push([`${b}.mlp.fc1.weight`, [4 * C, C, ...pointwise]], [`${b}.mlp.fc1.bias`, [4 * C]]);
      list.push([`${b}.mlp.fc2.weight`, [C, 4 * C, ...pointwise]], [`${b}.mlp.fc2.bias`, [C]]);
      list.push([`${b}.gamma`, [C]]);
    }
  });
  norm('head.norm', dims.at(-1)!);
  list.push(['head.fc.weight', [cfg.numClasses, dims.at(-1)!]], ['head.fc.bias', [cfg.numClasses]]);
  return list;
}

/** The tensors a ConvNeXt with this config has, checked against the file's: every one there with its shape, no other. */
function checkConvNeXtTensors(config: ConvNeXtConfig, tensors: ReadonlyMap<string, DecodedTensor>): Array<[string, number[]]> {
  const expected = expectedConvNeXtTensors(config);
  for (const [name, want] of expected) {
    const got = tensors.get(name);
    if (got === undefined) fail('tensor missing from the weights file', name);
    else if (got.shape.length !== want.length || got.shape.some((d, i) => d !== want[i]))
      fail(`shape [${got.shape.join(', ')}] does not match the expected [${want.join(', ')}]`, name);
  }
  const known = new Set(expected.map(([n]) => n));
  for (const name of tensors.keys())
    if (!known.has(name))
      fail(
        'this tensor belongs to a ConvNeXt variant wildtta does not implement (timm ConvNeXt V1: patch stem, layer scale, no GRN, no pre-logits layer)',
        name,
      );
  return expected;
}

/** A loaded ConvNeXt: convolutions, Linear layers and layer scales constant, the LayerNorm scale/shift tf.Variables. */
/**
 * A loaded ConvNeXt: convolutions and linears constant, the LayerNorms'
 * scale/shift tf.Variables. Adaptation runs a forward that keeps each
 * LayerNorm's statistics and each GELU's input, and a backward written
 * out from the logits down to the lowest adapted norm: no tf.grads tape.
 */
export class ConvNeXt extends SteppedBackbone<ConvNeXtConfig> {
  readonly family = 'convnext';
  readonly headWeightName = 'head.fc.weight';
  readonly featureWidth: number;
  /** Convolution kernels in tfjs's layouts: [kh, kw, in, out], depthwise [kh, kw, C, 1]. */
  private readonly filters = new Map<string, tf.Tensor4D>();
  /** The MLP's weights as [out, in] (a conv_mlp file's [out, in, 1, 1] reshaped: the same memory). */
  private readonly linears = new Map<string, tf.Tensor2D>();
  /** The same transposed, [in, out]: the forward's layout (linearNoWeightGrad). */
  private readonly linearsT = new Map<string, tf.Tensor2D>();
  /** Filters as the input gradients read them (depthwise ones turned 180°, the downsamples' split by phase: conv-grad.ts), made at the first backward that needs them. */
  private readonly derived = new DerivedFilters();
  private readonly inputMean: tf.Tensor1D;
  private readonly inputStd: tf.Tensor1D;
  private readonly layerNorm: LayerNormFn;
  /** The stem's: its input is the image's convolution, never a function of an adapted norm. */
  private readonly stemNorm: LayerNormFn;

  constructor(config: ConvNeXtConfig, tensors: ReadonlyMap<string, DecodedTensor>) {
    const expected = checkConvNeXtTensors(config, tensors);
    super(
      config,
      expected.map(([name]) => [name, tensors.get(name)!] as const),
      isNorm,
    );
    this.featureWidth = config.dims.at(-1)!;
    for (const [name, t] of this.params)
      if (/\.mlp\.fc\d\.weight$/.test(name)) {
        const w = tf.reshape(t, [t.shape[0]!, t.shape[1]!]) as tf.Tensor2D;
        this.linears.set(name, w);
        this.linearsT.set(name, tf.transpose(w));
      } else if (t.rank === 4)
        this.filters.set(
          name,
          tf.tidy(() => tf.transpose(t, name.endsWith('.conv_dw.weight') ? [2, 3, 0, 1] : [2, 3, 1, 0]) as tf.Tensor4D),
        );
    this.inputMean = tf.tensor1d(config.mean);
    this.inputStd = tf.tensor1d(config.std);
    this.layerNorm = layerNormOp(config.normEps, { inputGrad: true });
    this.stemNorm = layerNormOp(config.normEps, { inputGrad: false });
  }

  /** Stages and the stem: the units skipLastBlocks counts. */
  get normUnits(): number {
    return this.config.depths.length + 1;
  }

  /**
   * The stem's LayerNorm and each stage's (its downsample's and its blocks')
   * below the last `skipLastBlocks` stages (default 1: the last stage stays,
   * as SAR's reference skips a ResNet's layer4 and a ViT's last blocks);
   * head.norm, the final norm, only with includeFinalNorm.
   */
  selectNorms(sel: NormSelection): string[] {
    const units = this.normUnits;
    const skip = sel.skipLastBlocks ?? 1;
    if (!Number.isInteger(skip) || skip < 0 || skip > units) throw new RangeError(`skipLastBlocks must be an integer in [0, ${units}], got ${skip}`);
    return [...this.variables.keys()].filter((name) => {
      if (name.startsWith('head.norm.')) return sel.includeFinalNorm === true;
      const stage = /^stages\.(\d+)\./.exec(name);
      const unit = stage ? Number(stage[1]) + 1 : 0;
      return unit < units - skip;
    });
  }

  /** Each block's output channels. */
  get summaryWidths(): number[] {
    return this.config.depths.flatMap((n, s) => Array<number>(n).fill(this.config.dims[s]!));
  }

  /**
   * The adaptation's forward: LayerNorms on the kernels, and with `save` the
   * backward's steps on the tape. `sameImages`: a tape of these very images,
   * whose stem conv output it reuses.
   */
  forward(
    images: tf.Tensor4D,
    norm: ParamLookup,
    save = false,
    sameImages?: BackboneTape,
  ): { logits: tf.Tensor2D; features: tf.Tensor2D; tape?: BackboneTape } {
    this.checked();
    const p = this.param;
    const eps = this.config.normEps;
    const [B] = images.shape;
    const tape = save ? new SteppedTape(B) : undefined;
    const keep = <T extends tf.Tensor>(t: T): T => (tape ? tape.hold(t) : t);
    /** LayerNorm `name` over x's last axis: its output, and dy (same shape) to its input's. */
    const ln = <T extends tf.Tensor>(x: T, name: string) => {
      const D = x.shape[x.rank - 1]!;
      const { y, saved } = layerNorm(tf.reshape(x, [-1, D]) as tf.Tensor2D, norm(`${name}.weight`), norm(`${name}.bias`), eps, tape !== undefined);
      if (saved) for (const t of saved.kind === 'stats' ? [saved.x, saved.stats] : [saved.xhat, saved.rstd]) keep(t);
      const back: BackStep = (dy, needInput, record) => {
        const g = layerNormGrad(tf.reshape(dy, [-1, D]) as tf.Tensor2D, saved!, needInput);
        record(name, g.dGamma, g.dBeta);
        return g.dx && tf.reshape(g.dx, x.shape);
      };
      return { y: tf.reshape(y, x.shape) as T, back };
    };
    const step = (norms: string[], back: BackStep) => tape?.step(norms, back);
    const linear = (x: tf.Tensor2D, name: string) => tf.add(tf.matMul(x, this.linearsT.get(`${name}.weight`)!), p(`${name}.bias`)) as tf.Tensor2D;

    const lent = SteppedTape.lends(sameImages, B);
    let x = lent ?? (tf.add(tf.conv2d(this.normalize(images), this.filters.get('stem.0.weight')!, this.config.patch, 0), p('stem.0.bias')) as tf.Tensor4D);
    if (tape) tape.stem = lent ?? keep(x);
    const stem = ln(x, 'stem.1');
    step(['stem.1'], stem.back);
    x = stem.y;
    this.config.depths.forEach((n, s) => {
      if (s > 0) {
        const name = `stages.${s}.downsample`;
        const normed = ln(x, `${name}.0`);
        const shape = normed.y.shape;
        x = tf.add(tf.conv2d(normed.y, this.filters.get(`${name}.1.weight`)!, 2, 0), p(`${name}.1.bias`)) as tf.Tensor4D;
        step([`${name}.0`], (dy, needInput, record) =>
          normed.back(
            convInputGrad(dy as tf.Tensor4D, this.filters.get(`${name}.1.weight`)!, shape, 2, 0, this.derived, `${name}.1.weight`),
            needInput,
            record,
          ),
        );
      }
      const k = this.config.kernels[s]!;
      for (let i = 0; i < n; i++) {
        const b = `stages.${s}.blocks.${i}`;
        const shape = x.shape;
        const [, H, W, C] = shape;
        const filter = this.filters.get(`${b}.conv_dw.weight`)!;
        const dw = tf.add(tf.depthwiseConv2d(x, filter, 1, (k - 1) / 2), p(`${b}.conv_dw.bias`)) as tf.Tensor4D;
        const normed = ln(tf.reshape(dw, [B * H * W, C]) as tf.Tensor2D, `${b}.norm`);
        const a = keep(linear(normed.y, `${b}.mlp.fc1`));
        // PyTorch's exact GELU a·Φ(a), Φ(a) = ½(1 + erf(a/√2)), kept for geluGrad.
        const cdf = keep(tf.mul(tf.add(tf.erf(tf.mul(a, Math.SQRT1_2)), 1), 0.5) as tf.Tensor2D);
        const gamma = p(`${b}.gamma`);
        const branch = tf.mul(linear(tf.mul(a, cdf) as tf.Tensor2D, `${b}.mlp.fc2`), gamma);
        x = tf.add(x, tf.reshape(branch, shape)) as tf.Tensor4D;
        step([`${b}.norm`], (dy, needInput, record) => {
          const dBranch = tf.mul(tf.reshape(dy, [B * H * W, C]), gamma) as tf.Tensor2D;
          const dA = geluGrad(tf.matMul(dBranch, this.linears.get(`${b}.mlp.fc2.weight`)!), a, cdf);
          const dDw = normed.back(tf.matMul(dA, this.linears.get(`${b}.mlp.fc1.weight`)!), needInput, record);
          if (!dDw) return undefined;
          const flipped = this.derived.get(`${b}.conv_dw.weight:reversed`, () => tf.reverse(filter, [0, 1]));
          return tf.add(dy, tf.depthwiseConv2d(tf.reshape(dDw, shape) as tf.Tensor4D, flipped, 1, k - 1 - (k - 1) / 2));
        });
      }
    });
    step([], this.meanPoolBack(x.shape));
    const head = ln(tf.mean(x, [1, 2]) as tf.Tensor2D, 'head.norm');
    step(['head.norm'], head.back);
    const features = head.y;
    const logits = tf.add(tf.matMul(features, p('head.fc.weight'), false, true), p('head.fc.bias')) as tf.Tensor2D;
    return tape ? { logits, features, tape } : { logits, features };
  }

  protected backward(steps: Array<TapeStep<BackStep>>, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D {
    return this.tensorBackward(steps, dLogits, layout, dFeatures);
  }

  /** Each block's output, average-pooled, is its summary; the features are the pooled map after head.norm, what head.fc reads. */
  protected run(images: tf.Tensor4D, norm: ParamLookup, afterBlock?: (summary: tf.Tensor2D) => void): { logits: tf.Tensor2D; features: tf.Tensor2D } {
    const p = this.param;
    const conv = (x: tf.Tensor4D, name: string, stride: number) => {
      const filter = this.filters.get(`${name}.weight`)!;
      return tf.add(convNoFilterGrad(x, filter, stride, 0, { filters: this.derived, key: `${name}.weight` }), p(`${name}.bias`)) as tf.Tensor4D;
    };
    const ln = <T extends tf.Tensor>(x: T, name: string, op = this.layerNorm) => op(x, norm(`${name}.weight`), norm(`${name}.bias`));
    const linear = (x: tf.Tensor2D, name: string) => {
      const w = this.linears.get(`${name}.weight`);
      // The MLP's products without the transpose flag; the head's (one row) as it is.
      if (w) return linearNoWeightGrad(x, w, this.linearsT.get(`${name}.weight`)!, p(`${name}.bias`));
      return tf.add(tf.matMul(x, p(`${name}.weight`), false, true), p(`${name}.bias`)) as tf.Tensor2D;
    };
    let x = ln(conv(this.normalize(images), 'stem.0', this.config.patch), 'stem.1', this.stemNorm);
    this.config.depths.forEach((n, s) => {
      if (s > 0) x = conv(ln(x, `stages.${s}.downsample.0`), `stages.${s}.downsample.1`, 2);
      const k = this.config.kernels[s]!;
      for (let i = 0; i < n; i++) {
        const b = `stages.${s}.blocks.${i}`;
        const [B, H, W, C] = x.shape;
        const dw = depthwiseNoFilterGrad(x, this.filters.get(`${b}.conv_dw.weight`)!, p(`${b}.conv_dw.bias`), (k - 1) / 2, () =>
          this.derived.get(`${b}.conv_dw.weight:reversed`, () => tf.reverse(this.filters.get(`${b}.conv_dw.weight`)!, [0, 1])),
        );
        const rows = tf.reshape(ln(dw, `${b}.norm`), [B * H * W, C]) as tf.Tensor2D;
        const branch = tf.mul(linear(geluExact(linear(rows, `${b}.mlp.fc1`)), `${b}.mlp.fc2`), p(`${b}.gamma`));
        x = tf.add(x, tf.reshape(branch, [B, H, W, C])) as tf.Tensor4D;
        afterBlock?.(tf.mean(x, [1, 2]) as tf.Tensor2D);
      }
    });
    const features = ln(tf.mean(x, [1, 2]) as tf.Tensor2D, 'head.norm');
    return { logits: linear(features, 'head.fc'), features };
  }

  private normalize(images: tf.Tensor4D): tf.Tensor4D {
    return tf.div(tf.sub(images, this.inputMean), this.inputStd) as tf.Tensor4D;
  }

  protected override release(): void {
    for (const t of [...this.filters.values(), ...this.linears.values(), ...this.linearsT.values(), this.inputMean, this.inputStd]) t.dispose();
    this.filters.clear();
    this.derived.dispose();
    this.linears.clear();
    this.linearsT.clear();
  }
}

/** The ConvNeXt's entry in the family registry (families.ts). */
export const convNeXtFamily = defineFamily({
  name: 'convnext',
  detect: (names) => names.has('stem.0.weight') && names.has('stages.0.blocks.0.conv_dw.weight'),
  config: resolveConvNeXtConfig,
  build: (config, tensors) => new ConvNeXt(config, tensors),
});
