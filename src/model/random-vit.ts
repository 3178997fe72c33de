import { expectedTensors, type ViTConfig } from './config';
import type { DecodedTensor } from './safetensors';
import { mulberry32 } from '../data/random';

/** A small config for tests and benchmarks; override any field. */
export function tinyConfig(over: Partial<ViTConfig> = {}): ViTConfig {
  const numClasses = over.numClasses ?? 10;
  return {
    imageSize: 28,
    patchSize: 7,
    inChannels: 1,
    width: 16,
    depth: 2,
    heads: 2,
    mlpHidden: 32,
    numClasses,
    normEps: 1e-6,
    pool: 'token',
    mean: [0.5],
    std: [0.5],
    classNames: Array.from({ length: numClasses }, (_, i) => `class ${i}`),
    ...over,
  };
}

/**
 * Seeded random weights in the timm layout for `cfg`. LayerNorm scales are
 * near 1 and the head is scaled by `headScale` so predictions range from
 * confident to uncertain (tests need both reliable and unreliable samples).
 */
export function randomViTTensors(cfg: ViTConfig, seed = 0, headScale = 8): Map<string, DecodedTensor> {
  const rand = mulberry32(seed);
  const out = new Map<string, DecodedTensor>();
  for (const [name, shape] of expectedTensors(cfg, cfg.pool === 'avg' ? 'fc_norm' : 'norm')) {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    const isNormScale = /norm\d?\.weight$/.test(name);
    const fanIn = shape.length > 1 ? n / shape[0]! : 1;
    const scale = name.startsWith('head.') ? headScale / Math.sqrt(fanIn) : shape.length > 1 ? 1 / Math.sqrt(fanIn) : 0.1;
    for (let i = 0; i < n; i++) values[i] = (isNormScale ? 1 : 0) + (rand() * 2 - 1) * scale;
    out.set(name, { shape, values });
  }
  return out;
}
