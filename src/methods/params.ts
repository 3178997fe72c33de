import type * as tf from '@tensorflow/tfjs-core';
import type { ViT } from '../model/vit';

export interface ParamSelection {
  /**
   * How many of the last blocks keep their norms frozen. SAR's reference
   * skips blocks 9–11 of a 12-block ViT-B, i.e. the last quarter: the default
   * is floor(depth / 4).
   */
  skipLastBlocks?: number;
  /** Whether the final norm (norm / fc_norm) adapts. SAR: no. Tent/EATA: yes. */
  includeFinalNorm?: boolean;
}

/** The LayerNorm scale/shift variables a method adapts, in forward order. */
export function selectNormParams(model: ViT, sel: ParamSelection = {}): Map<string, tf.Variable> {
  const depth = model.config.depth;
  const skip = sel.skipLastBlocks ?? Math.floor(depth / 4);
  if (!Number.isInteger(skip) || skip < 0 || skip > depth) throw new RangeError(`skipLastBlocks must be an integer in [0, ${depth}], got ${skip}`);
  const out = new Map<string, tf.Variable>();
  for (const [name, v] of model.variables) {
    const block = /^blocks\.(\d+)\.norm[12]\.(weight|bias)$/.exec(name);
    if (block) {
      if (Number(block[1]) < depth - skip) out.set(name, v);
    } else if (/^(norm|fc_norm)\.(weight|bias)$/.test(name)) {
      if (sel.includeFinalNorm) out.set(name, v);
    }
  }
  return out;
}
