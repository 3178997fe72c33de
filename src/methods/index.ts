import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../model/backbone';
import type { Adapter } from './adapter';
import { checkMethodOptions } from './method';
import { methodSpec, type AdapterOptions } from './registry';

/**
 * One entry point for every method (registry.ts): its options checked, its
 * adapter made. On WebGPU and WebGL (or with `warmup: true`) the adapter runs
 * its kernels once on a blank image before it is returned (see
 * Adapter.warmup).
 */
export async function createAdapter(model: Backbone, options: AdapterOptions & { warmup?: boolean }): Promise<Adapter> {
  const spec = methodSpec(options.method);
  checkMethodOptions(spec, options);
  const adapter = await spec.create(model, options);
  // GPU backends compile a pipeline per kernel shape on first use: do it now, not on the first frames.
  if (options.warmup ?? ['webgpu', 'webgl'].includes(tf.getBackend())) await adapter.warmup();
  return adapter;
}

export { Adapter, type CommonOptions } from './adapter';
export { METHODS, METHOD_NAMES, isMethodName, methodSpec, type AdapterOptions, type MethodName } from './registry';
export type { MethodSpec } from './method';
export { SarAdapter } from './sar';
export { SarAlignAdapter } from './sar-align';
export { SarMsamAdapter } from './sar-msam';
export { TentAdapter } from './tent';
export { EataAdapter, estimateFisher } from './eata';
export { DeyoAdapter } from './deyo';
export { SourceAdapter } from './source';
export { InvalidInputError, NonFiniteOutputError, StateFormatError } from './errors';
export type { StepResult, UpdateReport } from './types';
