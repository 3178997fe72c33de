// A GroupNorm ResNet in timm's layout (the names of timm's resnet50_gn and
// its basic-block siblings): stem conv1 7×7/2 + bn1 + max pool 3×3/2, stages
// layer1..layerN of basic (conv1, conv2) or bottleneck (conv1, conv2, conv3)
// blocks with a downsample.0/.1 shortcut where the shape changes, global
// average pooling and fc. Every norm is a GroupNorm (timm keeps the bn*
// names). The forward is written once over four pieces (conv, norm, the
// stem's max pool, the residual join): on the kernels for adaptation,
// recording its written-out backward (backbone.ts's SteppedBackbone), and on
// differentiable ops (resnet-ops.ts) for evaluation, statistics and the
// tests' autodiff reference.
import * as tf from '@tensorflow/tfjs-core';
import {
  SteppedBackbone,
  SteppedTape,
  type BackboneConfig,
  type BackboneTape,
  type GradientLayout,
  type NormSelection,
  type ParamLookup,
  type TapeStep,
} from './backbone';
import { groupNorm, runConvBackward, type ConvGradOps, type GnSaved } from '../kernels';
import { defineFamily } from './family';
import { classNamesOf, configObject, fail, inputNormalization, numberList, positiveInt, pretrainedCfg, shapeOf } from './config-json';
import type { DecodedTensor } from './safetensors';
import { addRelu, convNoFilterGrad, groupNormOp, type GroupNormFn } from './resnet-ops';
import { convGradPlan, DerivedFilters, runConvGrad, type ConvGradPlan } from './conv-grad';

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

/** The forward's four pieces: the walk (`ResNetGN.walk`) is written once over them. */
interface ResNetOps {
  conv(x: tf.Tensor4D, name: string, stride: number, pad: number): tf.Tensor4D;
  /** GroupNorm `name` (then ReLU where `relu`). */
  norm(x: tf.Tensor4D, name: string, relu: boolean): tf.Tensor4D;
  /** The stem's 3×3/2 max pool. */
  pool(x: tf.Tensor4D): tf.Tensor4D;
  /** relu(y + shortcut): a block's output. */
  join(y: tf.Tensor4D, shortcut: tf.Tensor4D): tf.Tensor4D;
}

/** A conv and the GroupNorm after it, as the adaptation forward saw them: what their backward reads. */
interface Piece {
  /** The conv's input gradient (undefined for the stem's, which nothing needs). */
  conv: ConvGradPlan | undefined;
  norm: string;
  saved: GnSaved;
  relu: boolean;
  /** The GroupNorm's output (after its ReLU, whose mask it is, where `relu`). */
  y: tf.Tensor4D;
}

/**
 * One step of the ResNet's backward: dy at a piece's output to dy at its
 * input (none where `needInput` is false), on tensors or the host's tensor
 * infos (ConvGradOps). It never returns dy itself, which the walk frees.
 */
type ResNetStep = <T>(ops: ConvGradOps<T>, dy: T, needInput: boolean) => T | undefined;

/**
 * A loaded GroupNorm ResNet: convolutions and fc constant, the GroupNorm
 * scale/shift tf.Variables. Adaptation runs its forward on the kernels,
 * keeping x̂ and σ⁻¹ of each GroupNorm, and a backward written out from the
 * logits down to the lowest adapted norm (`gradient`): no tf.grads tape,
 * whose bookkeeping was most of a SAR step at the shipped model's size.
 * Evaluation and source statistics run the same walk on differentiable ops
 * (resnet-ops.ts), which tests differentiate against `gradient`.
 */
export class ResNetGN extends SteppedBackbone<ResNetGnConfig, ResNetStep> {
  readonly family = 'resnet-gn';
  readonly headWeightName = 'fc.weight';
  readonly featureWidth: number;
  /** Convolution kernels in tfjs's layout [kh, kw, in, out]. */
  private readonly filters = new Map<string, tf.Tensor4D>();
  /** The convs' filters as their input gradients read them (conv-grad.ts), made at the first forward that records a backward. */
  private readonly derived = new DerivedFilters();
  /** Each conv's input-gradient plan by name and input shape. */
  private readonly plans = new Map<string, ConvGradPlan>();
  private readonly blocks: BlockPlan[];
  private readonly inputMean: tf.Tensor1D;
  private readonly inputStd: tf.Tensor1D;
  /** GroupNorm (and the ReLU after it) as single differentiable ops (resnet-ops.ts), for `run`. */
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

  /**
   * The adaptation's forward: the GroupNorms on the kernels, and with `save`
   * each piece's backward on the tape: a block's GroupNorms' closed-form
   * backward (masked by the ReLU after them) and its convs' input gradients
   * (conv-grad.ts), the stem's max pool and GroupNorm. `sameImages`: a tape
   * of these very images, whose stem conv output it reuses.
   */
  forward(
    images: tf.Tensor4D,
    norm: ParamLookup,
    save = false,
    sameImages?: BackboneTape,
  ): { logits: tf.Tensor2D; features: tf.Tensor2D; tape?: BackboneTape } {
    this.checked();
    const tape = save ? new SteppedTape<ResNetStep>(images.shape[0]) : undefined;
    const lent = SteppedTape.lends(sameImages, images.shape[0]);
    const attrs = (relu: boolean) => ({ groups: this.config.groups, eps: this.config.normEps, epsTensor: this.eps, relu });
    // The conv just run, and the pieces (conv + GroupNorm) of the block under way.
    let conv: ConvGradPlan | undefined;
    let pieces: Piece[] = [];
    const ops: ResNetOps = {
      conv: (x, name, stride, pad) => {
        if (name === 'conv1' && lent) return tape ? (tape.stem = lent) : lent;
        const y = tf.conv2d(x, this.filters.get(`${name}.weight`)!, stride, pad);
        if (name === 'conv1' && tape) tape.stem = tape.hold(y);
        conv = tape && name !== 'conv1' ? this.plan(name, x.shape, y.shape, stride, pad) : undefined;
        return y;
      },
      norm: (x, name, relu) => {
        const scale = norm(`${name}.weight`);
        const { y, xhat, inv } = groupNorm(x, scale, norm(`${name}.bias`), attrs(relu));
        if (!tape) {
          tf.dispose([xhat, inv]);
          return y;
        }
        tape.hold(xhat);
        tape.hold(inv);
        if (relu) tape.hold(y);
        pieces.push({ conv, norm: name, saved: { xhat, inv, scale, groups: this.config.groups }, relu, y });
        return y;
      },
      pool: (x) => {
        const pooled = tf.maxPool(x, 3, 2, 1);
        if (!tape) return pooled;
        tape.hold(pooled);
        const stem = pieces.pop()!;
        // The stem's input is the image's: its GroupNorm needs no input gradient, and nothing is below it.
        tape.step([stem.norm], (o, dy) => {
          const d = o.maxPoolGrad(dy, x, pooled, { size: 3, stride: 2, pad: 1 });
          o.groupNormGrad(d, stem.saved, stem.norm, false, x);
          o.free(d);
          return undefined;
        });
        return pooled;
      },
      join: (y, shortcut) => {
        const out = tf.relu(tf.add(y, shortcut)) as tf.Tensor4D;
        if (!tape) return out;
        tape.hold(out);
        const block = pieces;
        pieces = [];
        const down = block.find((p) => p.norm.endsWith('.downsample.1'));
        const main = block.filter((p) => p !== down);
        tape.step(
          block.map((p) => p.norm),
          (o, dy, needInput) => {
            // A downsample's GroupNorm and the main path's last mask dy by the block's ReLU themselves; the identity shortcut takes it masked.
            const dOut = down ? dy : o.reluGrad(dy, out);
            let d: typeof dy | undefined = dOut;
            for (let j = main.length - 1; j >= 0 && d; j--) {
              const p = main[j]!;
              const dNorm = o.groupNormGrad(d, p.saved, p.norm, j > 0 || needInput, p.relu ? p.y : down && out);
              if (d !== dOut) o.free(d);
              d = dNorm && runConvGrad(o, dNorm, p.conv!);
              o.free(dNorm);
            }
            const dShort = down && o.groupNormGrad(dOut, down.saved, down.norm, needInput, out);
            const shortIn = dShort && runConvGrad(o, dShort, down!.conv!);
            o.free(dShort);
            const dx = d && o.add(d, shortIn ?? dOut);
            o.free(d, shortIn, dOut === dy ? undefined : dOut);
            return dx;
          },
        );
        return out;
      },
    };
    const out = this.walk(lent ? images : this.normalize(images), ops, undefined, tape);
    return tape ? { ...out, tape } : out;
  }

  /** The steps' backward in one walk over the kernels' ConvGradOps: on the host, one engine call. Inside tf.tidy. */
  protected backward(steps: Array<TapeStep<ResNetStep>>, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D {
    const walk = <T>(ops: ConvGradOps<T>) => {
      let dy: T | undefined = ops.headGrad();
      for (let i = steps.length - 1; i >= 0 && dy !== undefined; i--) {
        const next: T | undefined = steps[i]!.back(ops, dy, i > 0);
        ops.free(dy);
        dy = next;
      }
      ops.free(dy);
    };
    return runConvBackward({ dLogits, dFeatures, headW: this.param('fc.weight') as tf.Tensor2D, layout }, walk);
  }

  /** The input-gradient plan of conv `name` at this input shape, made once. */
  private plan(name: string, inShape: number[], outShape: number[], stride: number, pad: number): ConvGradPlan {
    const key = `${name}:${inShape.join('x')}`;
    let p = this.plans.get(key);
    if (!p) this.plans.set(key, (p = convGradPlan(this.filters.get(`${name}.weight`)!, inShape, outShape, stride, pad, this.derived, `${name}.weight`)));
    return p;
  }

  /** Each residual block's output, average-pooled, is its summary. Differentiable ops (resnet-ops.ts): evaluation, statistics, and the reference the tests differentiate. */
  protected run(images: tf.Tensor4D, norm: ParamLookup, afterBlock?: (summary: tf.Tensor2D) => void): { logits: tf.Tensor2D; features: tf.Tensor2D } {
    const ops: ResNetOps = {
      conv: (x, name, stride, pad) => convNoFilterGrad(x, this.filters.get(`${name}.weight`)!, stride, pad, { filters: this.derived, key: `${name}.weight` }),
      norm: (x, name, relu) =>
        (name === 'bn1' ? this.stemNormRelu : relu ? this.groupNormRelu : this.groupNorm)(x, norm(`${name}.weight`), norm(`${name}.bias`)),
      pool: (x) => tf.maxPool(x, 3, 2, 1),
      join: (y, shortcut) => addRelu(y, shortcut),
    };
    return this.walk(this.normalize(images), ops, afterBlock);
  }

  private normalize(images: tf.Tensor4D): tf.Tensor4D {
    return tf.div(tf.sub(images, this.inputMean), this.inputStd) as tf.Tensor4D;
  }

  /** The network over `ops`, from normalized images (or, with a tape that has it, the stem conv's output). */
  private walk(x: tf.Tensor4D, ops: ResNetOps, afterBlock?: (summary: tf.Tensor2D) => void, tape?: SteppedTape<ResNetStep>) {
    x = ops.pool(ops.norm(ops.conv(x, 'conv1', 2, 3), 'bn1', true));
    for (const b of this.blocks) {
      let y: tf.Tensor4D;
      if (this.config.block === 'basic') {
        y = ops.norm(ops.conv(x, `${b.name}.conv1`, b.stride, 1), `${b.name}.bn1`, true);
        y = ops.norm(ops.conv(y, `${b.name}.conv2`, 1, 1), `${b.name}.bn2`, false);
      } else {
        y = ops.norm(ops.conv(x, `${b.name}.conv1`, 1, 0), `${b.name}.bn1`, true);
        y = ops.norm(ops.conv(y, `${b.name}.conv2`, b.stride, 1), `${b.name}.bn2`, true);
        y = ops.norm(ops.conv(y, `${b.name}.conv3`, 1, 0), `${b.name}.bn3`, false);
      }
      const shortcut = b.downsample ? ops.norm(ops.conv(x, `${b.name}.downsample.0`, b.stride, 0), `${b.name}.downsample.1`, false) : x;
      x = ops.join(y, shortcut);
      afterBlock?.(tf.mean(x, [1, 2]) as tf.Tensor2D);
    }
    const shape = x.shape;
    const scale = tape && this.poolScale(shape[1] * shape[2]);
    tape?.step([], (o, dy) => o.spreadMean(dy, shape, scale!));
    const features = tf.mean(x, [1, 2]) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(features, this.param('fc.weight'), false, true), this.param('fc.bias')) as tf.Tensor2D;
    return { logits, features };
  }

  protected override release(): void {
    for (const t of [...this.filters.values(), this.inputMean, this.inputStd, this.eps]) t.dispose();
    this.filters.clear();
    this.derived.dispose();
    this.plans.clear();
  }
}

/** The GroupNorm ResNet's entry in the family registry (families.ts). */
export const resnetGnFamily = defineFamily({
  name: 'resnet-gn',
  detect: (names) => names.has('conv1.weight') && names.has('layer1.0.conv1.weight') && names.has('fc.weight'),
  config: resolveResNetGnConfig,
  build: (config, tensors) => new ResNetGN(config, tensors),
});
