// The kernels' vocabulary: what each op takes and gives (the `Kernels`
// interface, one member per op), and the shapes of what a forward saves for
// its backward. src/kernels/index.ts is the entry point; the tables behind
// it (host/, webgpu/, ops/) implement these members.
import type * as tf from '@tensorflow/tfjs-core';

/**
 * What a LayerNorm's backward needs. A kernel keeps the input x and its row
 * statistics [R, 2] = (mean, 1/√(var + eps)) and rebuilds x̂ as it goes, so
 * that the adapting forward writes no more than inference does; tfjs ops
 * keep x̂ [R, D] and rstd [R, 1].
 */
export type LnSaved =
  { kind: 'stats'; x: tf.Tensor2D; stats: tf.Tensor2D; gamma: tf.Tensor } | { kind: 'xhat'; xhat: tf.Tensor2D; rstd: tf.Tensor2D; gamma: tf.Tensor };

/**
 * Attention's saved tensors. 'heads': q, k, v [B·H, N, d_head] and P
 * [B·H, N, N], batched over heads. 'perhead' (the host at batch 1): qkv
 * [N, 3D] and each head's P [N, N]; the backward reads each head's q, k
 * and v out of qkv itself.
 */
export type AttnSaved =
  | { kind: 'heads'; q: tf.Tensor3D; k: tf.Tensor3D; v: tf.Tensor3D; p: tf.Tensor3D }
  | { kind: 'perhead'; qkv: tf.Tensor2D; p: tf.Tensor2D[] }
  // qkv [B·N, 3D] as the product left it, and every head's softmax [B·H, N, N] (WebGPU's kernels read q, k and v where they lie).
  | { kind: 'qkv'; qkv: tf.Tensor2D; p: tf.Tensor3D };

/**
 * A frozen Linear as the backend's kernels read it: PyTorch's weight
 * [out, in] and bias [out], plus what the backend keeps beside them (the
 * host also keeps the weight as [1, in, out], the layout of its fast
 * product). Made by `prepareLinear`, freed by `disposeLinear`.
 */
export interface Linear {
  readonly w: tf.Tensor2D;
  readonly b: tf.Tensor1D;
  readonly wT?: tf.Tensor3D;
  /** Tensors a kernel derives from the weight on first use (kept, and freed with it). */
  readonly derived: Map<string, tf.Tensor>;
}

/** A transformer block's frozen Linears (the q part of qkv pre-scaled by 1/√d_head). */
export interface BlockWeights {
  qkv: Linear;
  proj: Linear;
  fc1: Linear;
  fc2: Linear;
}

/** The patch embedding with the input normalization folded into the kernel [P·P·C, D] and the bias into the positions. */
export interface EmbedWeights {
  kernel: tf.Tensor2D;
  /** pos_embed of the patch tokens plus the folded bias, [N−1, D]. */
  patchPos: tf.Tensor2D;
  /** cls_token + pos_embed[0], [1, 1, D]. */
  clsPos: tf.Tensor3D;
  patch: number;
}

/** Batch size, tokens per image and heads of an attention. */
export interface AttentionShape {
  batch: number;
  tokens: number;
  heads: number;
}

/** Adapted tensors laid end to end: each name's offset in a vector of `total` values. */
export interface GradientLayout {
  readonly names: readonly string[];
  readonly offsets: readonly number[];
  readonly total: number;
}

/**
 * What a model's hand-written backward asks of the kernels, on gradients of
 * type T: tfjs tensors, or (on the host, at batch 1) the backend's raw
 * tensor infos inside one engine call. The saved tensors are the forward's
 * (tfjs tensors either way). A norm's scale/shift gradients go straight to
 * the output, by name, where the layout has them.
 */
export interface GradOps<T> {
  /** Whether the last block's backward under token pooling starts from the class tokens' rows alone (cheaper on the host; on a GPU the extra small kernels cost more than they save). */
  readonly classRowsFirst: boolean;
  /** dL/d(pooled feature) = dLogits·W_head (+ dFeatures), from the runner's arguments. */
  headGrad(): T;
  /** A LayerNorm's backward: dγ, dβ to the output under `name`; dL/dx (+ residual) when needInput. With classRows, on the saved rows 0, N, 2N… only. */
  normGrad(dy: T, saved: LnSaved, name: string, needInput: boolean, residual?: T, classRows?: boolean): T | undefined;
  /** dL/d(fc1's input) from dL/d(fc2's output) of block `block`, GELU's input a and Φ(a) as saved (their class rows with classRows). */
  mlpGrad(dy: T, block: number, a: tf.Tensor2D, cdf: tf.Tensor2D, classRows: boolean): T;
  /** dL/d(qkv's input) from dL/d(proj's output) of block `block`; with classRows, dy holds the class tokens' rows only. */
  attentionGrad(dy: T, block: number, saved: AttnSaved, classRows: boolean): T;
  /** [B, D] class-token rows → [B·N, D], zero elsewhere. */
  padClassRows(t: T): T;
  /** The backward of the mean over each image's patch tokens: [B, D] → [B·N, D] (class rows zero). */
  spreadPatchMean(d: T): T;
  /** Frees intermediates the walk is done with (the saved tensors are never passed). */
  free(...ts: Array<T | undefined>): void;
}

/** What runBackward needs beside the walk: the loss's gradient at the logits (and pooled feature), the frozen weights, the sizes, and where each norm's gradients go. */
export interface BackwardArgs {
  dLogits: tf.Tensor2D;
  dFeatures?: tf.Tensor2D;
  head: Linear;
  blocks: readonly BlockWeights[];
  shape: AttentionShape;
  layout: GradientLayout;
}

/** A model's backward written once over GradOps (see model/vit-backward.ts). */
export type BackwardWalk = <T>(ops: GradOps<T>) => void;

/**
 * A stride-1 convolution of x with a kept filter [kh, kw, in, out], padded
 * by `pads` (top, bottom, left, right; a negative one crops x instead): the
 * piece a conv's input gradient is made of (model/conv-grad.ts).
 */
export interface ConvPiece {
  filter: tf.Tensor4D;
  pads: readonly [number, number, number, number];
}

/** What a GroupNorm's backward reads of its forward (groupNorm's x̂ and σ⁻¹, the scale it applied). */
export interface GnSaved {
  xhat: tf.Tensor4D;
  inv: tf.Tensor2D;
  scale: tf.Tensor;
  groups: number;
}

/**
 * What a convolutional network's written-out backward asks of the kernels,
 * on gradients of type T: tfjs tensors, or on the host the backend's raw
 * tensor infos inside one engine call (the ViT's GradOps likewise). Saved
 * tensors are the forward's, tfjs tensors either way. A GroupNorm's
 * scale/shift gradients go straight to the output, by name, where the
 * layout has them.
 */
export interface ConvGradOps<T> {
  /** dL/d(pooled feature) = dLogits·W_head (+ dFeatures), from the runner's arguments. */
  headGrad(): T;
  /**
   * The backward of the mean over positions: dy [B, D] spread evenly over
   * [B, H, W, D]. `scale`: 1/(H·W) as the caller's kept scalar (a number
   * given to a tensor op would be an upload on a GPU every backward).
   */
  spreadMean(dy: T, shape: readonly number[], scale: tf.Scalar): T;
  /** A GroupNorm's backward, dy taken as 0 where `mask` (a ReLU's output) is not positive: its gradients to `name`, and dL/dx when `inputGrad`. */
  groupNormGrad(dy: T, saved: GnSaved, name: string, inputGrad: boolean, mask: tf.Tensor4D | undefined): T | undefined;
  /** dy where `out` > 0, else 0 (a ReLU's backward); NaN where `out` is NaN, as tf.step gives. */
  reluGrad(dy: T, out: tf.Tensor4D): T;
  add(a: T, b: T): T;
  maxPoolGrad(dy: T, x: tf.Tensor4D, y: tf.Tensor4D, o: { size: number; stride: number; pad: number }): T;
  conv(x: T, piece: ConvPiece): T;
  /** interleavePhases on T. */
  interleave(phases: Array<T | undefined>, stride: number, height: number, width: number): T;
  zeros(shape: readonly number[]): T;
  /** Frees intermediates the walk is done with (never a saved tensor). */
  free(...ts: Array<T | undefined>): void;
}

/** What runConvBackward needs beside the walk: the loss's gradient at the logits (and pooled feature), the head's weight [classes, D], and where each norm's gradients go. */
export interface ConvBackwardArgs {
  dLogits: tf.Tensor2D;
  dFeatures?: tf.Tensor2D | undefined;
  headW: tf.Tensor2D;
  layout: GradientLayout;
}

/** A convolutional network's backward written once over ConvGradOps (see model/resnet-gn.ts). */
export type ConvBackwardWalk = <T>(ops: ConvGradOps<T>) => void;

/** The source-side constants of feature re-centering. */
export interface RecenterSource {
  /** Per-class source feature means [C, D] and their mean [D]. */
  classMeans: tf.Tensor2D;
  mean: tf.Tensor1D;
  /** The head's weight [C, D]. */
  head: tf.Tensor2D;
}

/** Re-centering's running state, and what the logits and features are shifted by. */
export interface RecenterState {
  means: tf.Tensor2D;
  weights: tf.Tensor1D;
  /** W·(μ_src − μ̂) [1, C]. */
  offset: tf.Tensor2D;
  /** μ̂ − μ_src [1, D]. */
  shift: tf.Tensor2D;
}

/** The per-image range input alignment clamps a frame's pixel mean and standard deviation into. */
export interface InputRange {
  meanLo: number;
  meanHi: number;
  stdLo: number;
  stdHi: number;
}

/**
 * Every op, by name. Each backend's table (host/, webgpu/) implements what
 * it does faster; ops/ implements all of them with tfjs ops, which any
 * backend without its own entry (webgl) runs. All of them run inside
 * tf.tidy and return new tensors.
 */
export interface Kernels {
  // The update arithmetic of the methods, on the flat vector of adapted values.
  /** SAM's ascent θ + ρ·g/(‖g‖₂ + 1e-12), and ‖g‖₂. */
  samAscent(theta: tf.Tensor1D, grad: tf.Tensor1D, rho: number): { ascended: tf.Tensor1D; gradNorm: tf.Scalar };
  /** torch.optim.SGD with momentum where the boolean scalar gate holds (buf ← μ·buf + g, θ ← θ − lr·buf); θ and buf unchanged where not. */
  sgdMomentum(
    theta: tf.Tensor1D,
    grad: tf.Tensor1D,
    buffer: tf.Tensor1D,
    gate: tf.Tensor,
    lr: number,
    momentum: number,
  ): { theta: tf.Tensor1D; buffer: tf.Tensor1D };
  /** Where the gate holds: value ← x the first time (has = 0), else decay·value + (1 − decay)·x, and has ← 1; elsewhere both unchanged. */
  movingAverage(value: tf.Tensor, has: tf.Tensor, x: tf.Tensor, gate: tf.Tensor, decay: number): { value: tf.Tensor; has: tf.Tensor };
  /** a where the boolean scalar `when` holds, else b (float tensors of one shape). */
  pick<T extends tf.Tensor>(when: tf.Tensor, a: T, b: T): T;
  /** Scalars (any dtype) as one float vector; an absent one is its entry in `fallback`. */
  packScalars(values: ReadonlyArray<tf.Tensor | undefined>, fallback: readonly number[]): tf.Tensor1D;
  /** x ≠ 0 as a bool tensor of x's shape (tf.cast(x, 'bool')). */
  truthy(x: tf.Tensor): tf.Tensor;
  /** True (boolean scalar) when every given scalar is finite. */
  allFinite(...scalars: tf.Tensor[]): tf.Tensor;
  /** [1] when every value of x is finite, else [0] (float32). */
  finiteFlag(x: tf.Tensor): tf.Tensor1D;
  /** A vector cut into consecutive pieces of the given sizes. */
  splitFlat(flat: tf.Tensor1D, sizes: readonly number[]): tf.Tensor[];

  // Entropy.
  /** softmax [B, C] and entropy −Σ p log p [B] of each row (not for tf.grad). */
  softmaxAndEntropy(logits: tf.Tensor2D): { probabilities: tf.Tensor2D; entropies: tf.Tensor1D };
  /** Entropies [B] and dE/dlogits = −p·(log p + E) [B, C]. */
  entropyWithGrad(logits: tf.Tensor2D): { entropies: tf.Tensor1D; grad: tf.Tensor2D };
  /**
   * L = Σ_b w_b·E_b over the rows with E_b < margin (every row without one),
   * w_b the weights or 1, divided by how many rows are below the margin (at
   * least 1) with `mean`; that count; and dL/dlogits.
   */
  entropyLoss(logits: tf.Tensor2D, o: { weights?: tf.Tensor1D; margin?: number; mean?: boolean }): { loss: tf.Scalar; count: tf.Scalar; dLogits: tf.Tensor2D };

  // Alignment to the source (forward only).
  /** Each image's pixel mean m and standard deviation s brought into the range: (x − m)·s′/s + m′, clipped to [0, 1]. */
  inputAlign(x: tf.Tensor4D, range: InputRange): tf.Tensor4D;
  /**
   * Folds features [B, D] into the running mean of the class their logits
   * predict (means and weights moved by `decay` for the classes present;
   * nothing changes when a feature is not finite), and the new shift and
   * logit offset (see recenterShift).
   */
  recenterObserve(
    state: RecenterState,
    source: RecenterSource,
    features: tf.Tensor2D,
    logits: tf.Tensor2D,
    o: { decay: number; biasCorrected: boolean },
  ): RecenterState;

  // A transformer's pieces: forward, what it saves, and its backward.
  /** The Linear x·Wᵀ + b in the layouts this backend's kernels read. Kept (call outside tf.tidy or keep). */
  prepareLinear(w: tf.Tensor, b: tf.Tensor): Linear;
  /** x·Wᵀ + b for x [R, in]. */
  linear(x: tf.Tensor2D, l: Linear): tf.Tensor2D;
  /** The tokens entering block 0, [B·N, D]: per image the class token, then its patch embeddings plus positions. */
  embed(images: tf.Tensor4D, w: EmbedWeights): tf.Tensor2D;
  /** LayerNorm over the last axis of x [R, D], as (x − μ)·rsqrt(σ² + ε)·γ + β; with save, what its backward needs. */
  layerNorm(x: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor, eps: number, save: boolean): { y: tf.Tensor2D; saved?: LnSaved };
  /** dγ, dβ and, with needInput, dL/dx (+ residual) of y = LayerNorm(x). */
  layerNormGrad(dy: tf.Tensor2D, saved: LnSaved, needInput: boolean, residual?: tf.Tensor2D): { dGamma: tf.Tensor1D; dBeta: tf.Tensor1D; dx?: tf.Tensor2D };
  /** x + proj(attention(n·W_qkv)) for the block input x and its norm n, [B·N, D]; with save, what the backward needs. */
  attention(x: tf.Tensor2D, n: tf.Tensor2D, w: BlockWeights, shape: AttentionShape, save: boolean): { x1: tf.Tensor2D; saved?: AttnSaved };
  /** x + fc2(GELU(fc1(n))); with save, GELU's input a and Φ(a) = ½(1 + erf(a/√2)). */
  mlp(x: tf.Tensor2D, n: tf.Tensor2D, w: BlockWeights, save: boolean): { x2: tf.Tensor2D; a?: tf.Tensor2D; cdf?: tf.Tensor2D };
  /** dL/d(fc1's input) = (GELU'(a) ⊙ dy·W₂)·W₁. */
  mlpGrad(dy: tf.Tensor2D, w: BlockWeights, a: tf.Tensor2D, cdf: tf.Tensor2D): tf.Tensor2D;
  /** dy·GELU'(a), GELU'(a) = Φ(a) + a·φ(a). */
  geluGrad(dy: tf.Tensor2D, a: tf.Tensor2D, cdf: tf.Tensor2D): tf.Tensor2D;
  /** dL/d(qkv's input) from dL/d(proj's output); with classRows, dy [B, D] holds the class tokens' rows only (dq is zero elsewhere). */
  attentionGrad(dy: tf.Tensor2D, w: BlockWeights, saved: AttnSaved, shape: AttentionShape, classRows: boolean): tf.Tensor2D;
  /** dL/dqkv [B·N, 3D] from dL/do [B·N, D] through softmax(q·kᵀ)·v with heads batched (the 'qkv' tape: WebGPU's kernel only). */
  headsGrad(dO: tf.Tensor2D, saved: Extract<AttnSaved, { kind: 'heads' | 'qkv' }>, batch: number): tf.Tensor2D;
  /** Softmax backward along the last axis: dS = P ⊙ (dP − Σ dP ⊙ P). */
  softmaxBackward(dP: tf.Tensor, p: tf.Tensor): tf.Tensor;
  /** Per-head dq, dk, dv [B·H, N, d] into the qkv layout [B·N, 3·H·d]. */
  headsMerge(dq: tf.Tensor3D, dk: tf.Tensor3D, dv: tf.Tensor3D, batch: number): tf.Tensor2D;
  /** Rows 0, N, 2N… of x [B·N, C] (each image's class token). */
  classRows(x: tf.Tensor2D, tokens: number): tf.Tensor2D;
  /** Runs a model's backward walk (see GradOps) and returns the adapted norms' gradients laid out as args.layout. */
  runBackward(args: BackwardArgs, walk: BackwardWalk): tf.Tensor1D;

  // A convolutional network's norm (the GroupNorm ResNet's, through autodiff: model/resnet-ops.ts).
  /**
   * GroupNorm of x [B, H, W, C] in `groups` groups, then scale and shift [C]
   * (then ReLU where `relu`): y, x̂ and each group's inverse deviation
   * [B, groups], what groupNormGrad takes. `eps` as a number and as the
   * caller's kept scalar (a backend that adds it as a tensor uses that one).
   */
  groupNorm(x: tf.Tensor4D, scale: tf.Tensor, shift: tf.Tensor, o: GroupNormAttrs): { y: tf.Tensor4D; xhat: tf.Tensor4D; inv: tf.Tensor2D };
  /** dscale, dshift and, with inputGrad, dL/dx of groupNorm, from its x̂, inverse deviations and (with relu) its output y. */
  groupNormGrad(
    dy: tf.Tensor4D,
    xhat: tf.Tensor4D,
    inv: tf.Tensor2D,
    scale: tf.Tensor,
    y: tf.Tensor4D | undefined,
    o: { groups: number; inputGrad: boolean },
  ): { dScale: tf.Tensor1D; dShift: tf.Tensor1D; dx?: tf.Tensor4D };
  /**
   * dL/dx of y = tf.maxPool(x, size, stride, pad) from dy: each output's dy
   * to the first largest input of its window (tfjs's rule; ties between
   * equal values, such as a ReLU's zeros, go to the first).
   */
  maxPoolGrad(dy: tf.Tensor4D, x: tf.Tensor4D, y: tf.Tensor4D, o: { size: number; stride: number; pad: number }): tf.Tensor4D;
  /**
   * The s² phases of a grid [B, H, W, C] woven into it: phase i = a_h·s + a_w
   * [B, ⌈(H − a_h)/s⌉, ⌈(W − a_w)/s⌉, C] holds the positions (s·t + a_h,
   * s·u + a_w). A strided conv's input gradient, computed phase by phase
   * (model/conv-grad.ts). An absent phase (undefined) is zeros; phase 0
   * must be there.
   */
  interleavePhases(phases: Array<tf.Tensor4D | undefined>, stride: number, height: number, width: number): tf.Tensor4D;
  /** Runs a convolutional network's backward walk (see ConvGradOps) and returns the adapted norms' gradients laid out as args.layout. */
  runConvBackward(args: ConvBackwardArgs, walk: ConvBackwardWalk): tf.Tensor1D;
}

/** groupNorm's settings. */
export interface GroupNormAttrs {
  groups: number;
  eps: number;
  epsTensor: tf.Scalar;
  relu: boolean;
}

export type OpName = keyof Kernels;
