// A GroupNorm ResNet in timm's layout (the names of timm's resnet50_gn and
// its basic-block siblings): stem conv1 7×7/2 + bn1 + max pool 3×3/2, stages
// layer1..layerN of basic (conv1, conv2) or bottleneck (conv1, conv2, conv3)
// blocks with a downsample.0/.1 shortcut where the shape changes, global
// average pooling and fc. Every norm is a GroupNorm (timm keeps the bn*
// names). The forward is written once over three pieces (conv, norm, the
// residual join): on the kernels for adaptation, keeping what its
// hand-written backward reads, and on differentiable ops (resnet-ops.ts) for
// evaluation, statistics and the tests' autodiff reference.
import * as tf from '@tensorflow/tfjs-core';
import {
  HeldTape,
  PlainBackbone,
  type Backbone,
  type BackboneConfig,
  type BackboneTape,
  type GradientLayout,
  type NormSelection,
  type ParamLookup,
} from './backbone';
import { concatByLayout, groupNorm, groupNormGrad, maxPoolGrad } from '../kernels';
import { defineFamily } from './family';
import { classNamesOf, configObject, fail, inputNormalization, numberList, positiveInt, pretrainedCfg, shapeOf } from './config-json';
import type { DecodedTensor } from './safetensors';
import { addRelu, convNoFilterGrad, groupNormOp, type GroupNormFn } from './resnet-ops';
import { convInputGrad, DerivedFilters } from './conv-grad';

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

/** What a norm of ResNetGN.forward keeps: x̂, σ⁻¹, the scale it used (the caller's), and the tensor whose sign masks its dy (its own output after a ReLU, the block's after the residual's). */
interface SavedNorm {
  xhat: tf.Tensor4D;
  inv: tf.Tensor2D;
  scale: tf.Tensor;
  mask?: tf.Tensor4D;
}

/** What ResNetGN.forward keeps for its backward (`ResNetGN.gradient`). */
export class ResNetTape extends HeldTape {
  readonly norms = new Map<string, SavedNorm>();
  /** Each block's output. */
  readonly outs: tf.Tensor4D[] = [];
  /** The max pool's input and output (what its gradient reads). */
  pool?: { input: tf.Tensor4D; output: tf.Tensor4D };
}

/** The forward's three pieces: the walk (`ResNetGN.walk`) is written once over them. */
interface ResNetOps {
  conv(x: tf.Tensor4D, name: string, stride: number, pad: number): tf.Tensor4D;
  /** GroupNorm `name` (then ReLU where `relu`). */
  norm(x: tf.Tensor4D, name: string, relu: boolean): tf.Tensor4D;
  /** relu(y + shortcut): a block's output; `norms`, the GroupNorms whose outputs met there (what masks their dy). */
  join(y: tf.Tensor4D, shortcut: tf.Tensor4D, norms: string[]): tf.Tensor4D;
}

/**
 * A loaded GroupNorm ResNet: convolutions and fc constant, the GroupNorm
 * scale/shift tf.Variables. Adaptation runs its forward on the kernels,
 * keeping x̂ and σ⁻¹ of each GroupNorm, and a backward written out from the
 * logits down to the lowest adapted norm (`gradient`): no tf.grads tape,
 * whose bookkeeping was most of a SAR step at the shipped model's size.
 * Evaluation and source statistics run the same walk on differentiable ops
 * (resnet-ops.ts), which tests differentiate against `gradient`.
 */
export class ResNetGN extends PlainBackbone<ResNetGnConfig> implements Backbone {
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
   * the tape `gradient` reads. `sameImages`: a tape of these very images,
   * whose stem conv output it reuses.
   */
  forward(
    images: tf.Tensor4D,
    norm: ParamLookup,
    save = false,
    sameImages?: BackboneTape,
  ): { logits: tf.Tensor2D; features: tf.Tensor2D; tape?: BackboneTape } {
    this.checked();
    const tape = save ? new ResNetTape(images.shape[0]) : undefined;
    const lent = HeldTape.lends(sameImages, images.shape[0]);
    const attrs = (relu: boolean) => ({ groups: this.config.groups, eps: this.config.normEps, epsTensor: this.eps, relu });
    const ops: ResNetOps = {
      conv: (x, name, stride, pad) => {
        if (name === 'conv1' && lent) return tape ? (tape.stem = lent) : lent;
        const y = tf.conv2d(x, this.filters.get(`${name}.weight`)!, stride, pad);
        if (name === 'conv1' && tape) tape.stem = tape.hold(y);
        return y;
      },
      norm: (x, name, relu) => {
        const scale = norm(`${name}.weight`);
        const { y, xhat, inv } = groupNorm(x, scale, norm(`${name}.bias`), attrs(relu));
        if (tape) tape.norms.set(name, { xhat: tape.hold(xhat), inv: tape.hold(inv), scale, ...(relu ? { mask: tape.hold(y) } : {}) });
        else tf.dispose([xhat, inv]);
        return y;
      },
      join: (y, shortcut, names) => {
        const out = tf.relu(tf.add(y, shortcut)) as tf.Tensor4D;
        if (tape) {
          tape.outs.push(tape.hold(out));
          for (const n of names) tape.norms.get(n)!.mask = out;
        }
        return out;
      },
    };
    const out = this.walk(lent ? images : this.normalize(images), ops, undefined, tape);
    return tape ? { ...out, tape } : out;
  }

  /**
   * dLoss/d(adapted norms) laid out as `layout`, from dLoss/dlogits (and
   * dLoss/dfeatures) of the forward that made `tape`, written out: the head
   * and the average pool, then each block from the top, its GroupNorms'
   * backward (groupNormGrad, masked by the ReLU after them) and its convs'
   * input gradients (conv-grad.ts), down to the lowest block with an
   * adapted norm; the stem's max pool and GroupNorm where the stem adapts.
   * Inside tf.tidy.
   */
  gradient(tape: BackboneTape, dLogits: tf.Tensor2D, layout: GradientLayout, dFeatures?: tf.Tensor2D): tf.Tensor1D {
    if (!(tape instanceof ResNetTape)) throw new TypeError('ResNetGN.gradient needs the tape of ResNetGN.forward');
    this.checked();
    if (layout.names.length === 0) return tf.zeros([0]);
    const wanted = new Set(layout.names);
    const grads = new Map<string, tf.Tensor>();
    const blockOf = (name: string) => this.blocks.findIndex((b) => name.startsWith(`${b.name}.`));
    const lowest = Math.min(...layout.names.map(blockOf));
    const G = this.config.groups;
    /** dy through GroupNorm `name`: its scale/shift gradients recorded, dx where `inputGrad`. */
    const normGrad = (dy: tf.Tensor4D, name: string, inputGrad: boolean, masked = true) => {
      const s = tape.norms.get(name)!;
      const g = groupNormGrad(dy, s.xhat, s.inv, s.scale, masked ? s.mask : undefined, { groups: G, inputGrad });
      if (wanted.has(`${name}.weight`)) grads.set(`${name}.weight`, g.dScale);
      if (wanted.has(`${name}.bias`)) grads.set(`${name}.bias`, g.dShift);
      return g.dx!;
    };
    const convGrad = (dy: tf.Tensor4D, name: string, inputShape: readonly number[], stride: number, pad: number) =>
      convInputGrad(dy, this.filters.get(`${name}.weight`)!, inputShape, stride, pad, this.derived, `${name}.weight`);

    let dFeat = tf.matMul(dLogits, this.param('fc.weight')) as tf.Tensor2D;
    if (dFeatures) dFeat = tf.add(dFeat, dFeatures) as tf.Tensor2D;
    const top = tape.outs.at(-1)!;
    const [B, H, W, F] = top.shape;
    let dx = tf.reshape(H * W === 1 ? dFeat : tf.mul(dFeat, this.poolScale(H * W)), [B, 1, 1, F]) as tf.Tensor4D;
    if (H * W !== 1) dx = tf.broadcastTo(dx, [B, H, W, F]);
    for (let i = this.blocks.length - 1; i >= Math.max(lowest, 0); i--) {
      const b = this.blocks[i]!;
      const input = i > 0 ? tape.outs[i - 1]! : tape.pool!.output;
      const more = i > lowest;
      // The identity shortcut takes dy masked by the block's ReLU as it is; a downsample's GroupNorm masks it itself.
      const dOut = b.downsample ? dx : (tf.mul(dx, tf.step(tape.outs[i]!)) as tf.Tensor4D);
      const masked = b.downsample;
      let d: tf.Tensor4D;
      if (this.config.block === 'basic') {
        d = convGrad(
          normGrad(dOut, `${b.name}.bn2`, true, masked),
          `${b.name}.conv2`,
          [B, ...input.shape.slice(1, 3).map((n) => Math.ceil(n / b.stride)), b.width],
          1,
          1,
        );
        d = normGrad(d, `${b.name}.bn1`, more);
        if (!more) {
          if (b.downsample) normGrad(dOut, `${b.name}.downsample.1`, false);
          break;
        }
        d = convGrad(d, `${b.name}.conv1`, input.shape, b.stride, 1);
      } else {
        const mid = [B, ...input.shape.slice(1, 3).map((n) => Math.ceil(n / b.stride)), b.width];
        d = convGrad(normGrad(dOut, `${b.name}.bn3`, true, masked), `${b.name}.conv3`, mid, 1, 0);
        d = convGrad(normGrad(d, `${b.name}.bn2`, true), `${b.name}.conv2`, [B, ...input.shape.slice(1, 3), b.width], b.stride, 1);
        d = normGrad(d, `${b.name}.bn1`, more);
        if (!more) {
          if (b.downsample) normGrad(dOut, `${b.name}.downsample.1`, false);
          break;
        }
        d = convGrad(d, `${b.name}.conv1`, input.shape, 1, 0);
      }
      const shortcut = b.downsample ? convGrad(normGrad(dOut, `${b.name}.downsample.1`, true), `${b.name}.downsample.0`, input.shape, b.stride, 0) : dOut;
      dx = tf.add(d, shortcut) as tf.Tensor4D;
    }
    if (lowest < 0) {
      const pool = tape.pool!;
      normGrad(maxPoolGrad(dx, pool.input, pool.output, { size: 3, stride: 2, pad: 1 }), 'bn1', false);
    }
    return concatByLayout(grads, layout);
  }

  /** Each residual block's output, average-pooled, is its summary. Differentiable ops (resnet-ops.ts): evaluation, statistics, and the reference the tests differentiate. */
  protected run(images: tf.Tensor4D, norm: ParamLookup, afterBlock?: (summary: tf.Tensor2D) => void): { logits: tf.Tensor2D; features: tf.Tensor2D } {
    const ops: ResNetOps = {
      conv: (x, name, stride, pad) => convNoFilterGrad(x, this.filters.get(`${name}.weight`)!, stride, pad, { filters: this.derived, key: `${name}.weight` }),
      norm: (x, name, relu) =>
        (name === 'bn1' ? this.stemNormRelu : relu ? this.groupNormRelu : this.groupNorm)(x, norm(`${name}.weight`), norm(`${name}.bias`)),
      join: (y, shortcut) => addRelu(y, shortcut),
    };
    return this.walk(this.normalize(images), ops, afterBlock);
  }

  private normalize(images: tf.Tensor4D): tf.Tensor4D {
    return tf.div(tf.sub(images, this.inputMean), this.inputStd) as tf.Tensor4D;
  }

  /** The network over `ops`, from normalized images (or, with a tape that has it, the stem conv's output). */
  private walk(x: tf.Tensor4D, ops: ResNetOps, afterBlock?: (summary: tf.Tensor2D) => void, tape?: ResNetTape) {
    x = ops.norm(ops.conv(x, 'conv1', 2, 3), 'bn1', true);
    const pooled = tf.maxPool(x, 3, 2, 1);
    if (tape) tape.pool = { input: x, output: tape.hold(pooled) };
    x = pooled;
    for (const b of this.blocks) {
      let y: tf.Tensor4D;
      const last = this.config.block === 'basic' ? 'bn2' : 'bn3';
      if (this.config.block === 'basic') {
        y = ops.norm(ops.conv(x, `${b.name}.conv1`, b.stride, 1), `${b.name}.bn1`, true);
        y = ops.norm(ops.conv(y, `${b.name}.conv2`, 1, 1), `${b.name}.bn2`, false);
      } else {
        y = ops.norm(ops.conv(x, `${b.name}.conv1`, 1, 0), `${b.name}.bn1`, true);
        y = ops.norm(ops.conv(y, `${b.name}.conv2`, b.stride, 1), `${b.name}.bn2`, true);
        y = ops.norm(ops.conv(y, `${b.name}.conv3`, 1, 0), `${b.name}.bn3`, false);
      }
      const shortcut = b.downsample ? ops.norm(ops.conv(x, `${b.name}.downsample.0`, b.stride, 0), `${b.name}.downsample.1`, false) : x;
      x = ops.join(y, shortcut, b.downsample ? [`${b.name}.${last}`, `${b.name}.downsample.1`] : [`${b.name}.${last}`]);
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
