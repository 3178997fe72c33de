// The host's table (wasm and cpu): which ops run as host kernels, and how a
// tensor-level call becomes a kernel call; installHost registers both.
import * as tf from '@tensorflow/tfjs-core';
import { vitOps } from '../ops/vit';
import { kernelCalls, one, runKernel } from '../calls';
import { registerTable } from '../registry';
import type { BlockWeights, Kernels } from '../types';
import { backwardComposite, runBackwardOnHost } from './backward';
import { convBackwardComposite, runConvBackwardOnHost } from './conv-backward';
import { composites } from './composites';
import { FUSED_LINEAR, HOST_BACKENDS, registerHostKernels } from './glue';
import { updateKernels } from './update-kernels';
import { vitKernels } from './vit-kernels';
import { MAX_STRIDE, normKernels } from './norm-kernels';
import { normOps } from '../ops/norm';
import { packedForward } from './packed';

/** Named packed weights for a composite's inputs: those that exist (gemm.wat runs and the shape fits), the others left out. */
function packs(entries: Record<string, tf.Tensor | undefined>): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(entries).filter((e): e is [string, tf.Tensor] => e[1] !== undefined));
}

/** WildttaAttention's weights: the host's [1, in, out] ones, and packed where gemm.wat runs. */
function attentionWeights(w: BlockWeights): Record<string, tf.Tensor> {
  return { wqkv: w.qkv.wT!, bqkv: w.qkv.b, wo: w.proj.wT!, bo: w.proj.b, ...packs({ pqkv: packedForward(w.qkv), po: packedForward(w.proj) }) };
}

/** One image's attention block with nothing saved: per head, plain 2-D products in one composite kernel. */
function attentionOne(x: tf.Tensor2D, n: tf.Tensor2D, w: BlockWeights, heads: number): tf.Tensor2D {
  return one('WildttaAttention', { x, n, ...attentionWeights(w) }, { heads, save: false }) as tf.Tensor2D;
}

// WebGPU registers the same kernels but headsGrad (the host keeps XNNPACK's batched products, faster than a loop).
const { headsGrad: _gpuOnly, ...sharedCalls } = kernelCalls;

export const hostTable = {
  ...sharedCalls,

  finiteFlag: (x) => one('WildttaAllFinite', { x }) as tf.Tensor1D,

  // tfjs-wasm's split copies piece by piece at 25-35 µs a call.
  splitFlat: (flat, sizes) => runKernel('WildttaSplit', { x: flat }, { sizes }),

  softmaxAndEntropy(logits) {
    const [probabilities, entropies] = runKernel('WildttaSoftmaxEntropy', { logits });
    return { probabilities: probabilities as tf.Tensor2D, entropies: entropies as tf.Tensor1D };
  },

  entropyWithGrad(logits) {
    const [, entropies, grad] = runKernel('WildttaSoftmaxEntropy', { logits });
    return { entropies: entropies as tf.Tensor1D, grad: grad as tf.Tensor2D };
  },

  inputAlign: (x, range) => one('WildttaInputAlign', { x }, { ...range }) as tf.Tensor4D,

  recenterObserve(state, source, features, logits, { decay, biasCorrected }) {
    const [means, weights, offset, shift] = runKernel(
      'WildttaRecenter',
      { features, logits, means: state.means, weights: state.weights, srcMeans: source.classMeans, head: source.head },
      { decay, biasCorrected },
    );
    return { means: means as tf.Tensor2D, weights: weights as tf.Tensor1D, offset: offset as tf.Tensor2D, shift: shift as tf.Tensor2D };
  },

  // On wasm only an untransposed 2-D product takes XNNPACK's fast path (7-10× faster here than the same product with
  // a transpose flag), so the host also keeps each frozen weight as [1, in, out]; the backward reads PyTorch's [out, in].
  prepareLinear(w, b) {
    return { ...vitOps.prepareLinear(w, b), wT: tf.keep(tf.expandDims(tf.transpose(w), 0)) as tf.Tensor3D };
  },

  linear(x, l) {
    if (!l.wT) return vitOps.linear(x, l);
    // The kernel itself, skipping tf.fused.matMul's checks and reshapes of the weight: a third of this call's cost at 50×64.
    const [R, K] = x.shape;
    const out = tf.engine().runKernel('_FusedMatMul', { a: tf.reshape(x, [1, R, K]), b: l.wT, bias: l.b }, FUSED_LINEAR) as tf.Tensor;
    return tf.reshape(out, [R, l.wT.shape[2]]) as tf.Tensor2D;
  },

  embed: (images, { kernel, patchPos, clsPos, patch }) => one('WildttaEmbed', { images, kernel, patchPos, clsPos }, { patch }) as tf.Tensor2D,

  attention(x, n, w, shape, save) {
    const { batch: B, tokens: N, heads } = shape;
    if (!w.qkv.wT || !w.proj.wT) return vitOps.attention(x, n, w, shape);
    if (B === 1) {
      if (!save) return { x1: attentionOne(x, n, w, heads) };
      const outs = runKernel('WildttaAttention', { x, n, ...attentionWeights(w) }, { heads, save }) as tf.Tensor2D[];
      return { x1: outs[0]!, saved: { kind: 'perhead', qkv: outs[1]!, p: outs.slice(2) } };
    }
    if (!save) {
      // A forward with nothing to keep (the engine's side-by-side reference, batch evaluation): attention mixes tokens
      // within an image only, so the batch-1 kernel runs per image on its rows. The batched path is several times slower here.
      const D = x.shape[1];
      const rows = (t: tf.Tensor2D, b: number) => tf.slice(t, [b * N, 0], [N, D]);
      const per = Array.from({ length: B }, (_, b) => attentionOne(rows(x, b), rows(n, b), w, heads));
      return { x1: tf.concat(per, 0) as tf.Tensor2D };
    }
    return vitOps.attention(x, n, w, shape);
  },

  mlp(x, n, w, save) {
    if (!w.fc1.wT || !w.fc2.wT) return vitOps.mlp(x, n, w);
    const weights = { w1: w.fc1.wT, b1: w.fc1.b, w2: w.fc2.wT, b2: w.fc2.b, ...packs({ p1: packedForward(w.fc1), p2: packedForward(w.fc2) }) };
    const [x2, a, cdf] = runKernel('WildttaMlp', { x, n, ...weights }, { save }) as tf.Tensor2D[];
    return { x2: x2!, a, cdf };
  },

  mlpGrad: (dy, w, a, cdf) => one('WildttaMlpGrad', { dy, w2: w.fc2.w, a, cdf, w1: w.fc1.w }) as tf.Tensor2D,

  attentionGrad(dy, w, s, shape, classRows) {
    if (s.kind !== 'perhead') return vitOps.attentionGrad(dy, w, s, shape, classRows);
    if (!classRows) {
      const inputs: Record<string, tf.Tensor> = { dy, wo: w.proj.w, wqkv: w.qkv.w, qkv: s.qkv };
      s.p.forEach((p, h) => (inputs[`p${h}`] = p));
      return one('WildttaAttentionGrad', inputs, { heads: shape.heads }) as tf.Tensor2D;
    }
    const dO = tf.matMul(dy, w.proj.w);
    return tf.matMul(one('WildttaClassAttentionGrad', { dO, qkv: s.qkv }, { heads: shape.heads }) as tf.Tensor2D, w.qkv.w);
  },

  classRows: (x, every) => one('WildttaEveryNthRow', { x }, { every }) as tf.Tensor2D,

  runBackward: runBackwardOnHost,

  runConvBackward: runConvBackwardOnHost,

  // tfjs-wasm's MaxPoolGrad took about 100 µs for the shipped ResNet's 14×14×16 stem, and is wrong for some shapes (a batch of 2, non-square inputs).
  maxPoolGrad: (dy, x, _y, { size, stride, pad }) => one('WildttaMaxPoolGrad', { dy, x }, { size, stride, pad }) as tf.Tensor4D,

  // One copy where the tfjs ops take up to three pads, three stacks and a slice (about 10 kernels a strided conv at the shipped ResNet's size).
  interleavePhases: (phases, stride, ...size) => (stride > MAX_STRIDE ? normOps : kernelCalls).interleavePhases(phases, stride, ...size),
} satisfies Partial<Kernels>;

/** Registers the host kernels with tfjs and the table with the registry. */
export function installHost(): void {
  registerHostKernels({ ...vitKernels, ...updateKernels, ...normKernels }, { ...composites, ...backwardComposite, ...convBackwardComposite });
  registerTable(HOST_BACKENDS, hostTable);
}
