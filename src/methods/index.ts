import type { Backbone } from '../model/backbone';
import type { Adapter, CommonOptions } from './adapter';
import { DeyoAdapter, type DeyoOptions } from './deyo';
import { EataAdapter, estimateFisher, type EataOptions } from './eata';
import { selectNormParams } from './params';
import { SarAdapter, type SarOptions } from './sar';
import { SarAlignAdapter, type SarAlignOptions } from './sar-align';
import { SourceAdapter } from './source';
import { TentAdapter, type TentOptions } from './tent';
import * as tf from '@tensorflow/tfjs-core';
import { METHOD_DEFAULTS, type Default } from './defaults';

export type AdapterOptions =
  | ({ method: 'sar' } & SarOptions)
  | ({ method: 'sar-align' } & SarAlignOptions)
  | ({ method: 'tent' } & TentOptions)
  | ({ method: 'eata'; fisherImages?: tf.Tensor4D; fisherBatchSize?: number } & EataOptions)
  | ({ method: 'deyo' } & DeyoOptions)
  | ({ method: 'source' } & Pick<CommonOptions, 'recenter' | 'inputAlign' | 'sourceStats'>);

/**
 * One entry point for every method. EATA's Fisher is estimated here from
 * `fisherImages` (clean in-distribution images the caller provides) unless a
 * precomputed `fisher` is given. On WebGPU and WebGL (or with `warmup: true`)
 * the adapter runs its kernels once on a blank image before it is returned
 * (see Adapter.warmup).
 */
export async function createAdapter(model: Backbone, options: AdapterOptions & { warmup?: boolean }): Promise<Adapter> {
  checkNumbers(options);
  const adapter = await construct(model, options);
  // GPU backends compile a pipeline per kernel shape on first use: do it now, not on the first frames.
  if (options.warmup ?? ['webgpu', 'webgl'].includes(tf.getBackend())) await adapter.warmup();
  return adapter;
}

/**
 * Every number-valued option of the method (its table in defaults.ts, SAR's
 * too for sar-align, and the shared lr, momentum and skipLastBlocks) must be a
 * finite number when given: a string or a NaN would otherwise run silently
 * wrong (a NaN learning rate, a SAM radius of "far").
 */
function checkNumbers(options: AdapterOptions): void {
  const tables: Record<string, Record<string, Default<unknown>>> = METHOD_DEFAULTS;
  const own = [tables[options.method] ?? {}, ...(options.method === 'sar-align' ? [tables.sar!] : [])];
  const keys = new Set(['lr', 'momentum', 'skipLastBlocks']);
  for (const table of own)
    for (const [key, d] of Object.entries(table)) if (typeof d.value === 'number' && !(d.option ?? '').includes('.')) keys.add(d.option ?? key);
  const given = options as unknown as Record<string, unknown>;
  for (const key of keys) {
    const v = given[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v)))
      throw new RangeError(`${options.method}: option ${key} must be a finite number, got ${JSON.stringify(v) ?? String(v)}`);
  }
}

async function construct(model: Backbone, options: AdapterOptions): Promise<Adapter> {
  switch (options.method) {
    case 'sar':
      return new SarAdapter(model, options);
    case 'sar-align':
      return new SarAlignAdapter(model, options);
    case 'tent':
      return new TentAdapter(model, options);
    case 'deyo':
      return new DeyoAdapter(model, options);
    case 'source':
      return new SourceAdapter(model, options);
    case 'eata': {
      let fisher = options.fisher;
      let owned: Map<string, tf.Tensor> | undefined;
      if (!fisher && options.fisherImages) {
        const params = selectNormParams(model, { skipLastBlocks: options.skipLastBlocks ?? 0, includeFinalNorm: options.includeFinalNorm ?? true });
        owned = await estimateFisher(model, params, options.fisherImages, options.fisherBatchSize);
        fisher = owned;
      }
      const adapter = new EataAdapter(model, { ...options, fisher });
      if (owned) for (const t of owned.values()) t.dispose();
      return adapter;
    }
    default:
      throw new RangeError(`unknown method ${(options as { method: unknown }).method}`);
  }
}

export { Adapter } from './adapter';
export { SarAdapter, SarAlignAdapter, TentAdapter, EataAdapter, DeyoAdapter, SourceAdapter, estimateFisher };
export { InvalidInputError, StateFormatError } from './errors';
export type { StepResult, UpdateReport, MethodName } from './types';
