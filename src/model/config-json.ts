// Reading a config.json, whoever wrote it (ours, timm's, Hugging Face's):
// what every family's config reader shares. Everything wrong is a
// ModelFormatError naming the key or the tensor.
import { ModelFormatError, showValue } from './errors';

/** Tensor shapes by timm name, as read from a safetensors header. */
export type ShapeTable = ReadonlyMap<string, readonly number[]>;

export const fail = (message: string, tensor?: string): never => {
  throw new ModelFormatError(message, tensor);
};

/** The config as an object (an empty one when there is none). */
export function configObject(json: unknown): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return fail('config.json is not an object');
  return json as Record<string, unknown>;
}

/** timm's pretrained_cfg (input_size, mean, std), or an empty object. */
export function pretrainedCfg(c: Record<string, unknown>): Record<string, unknown> {
  return (typeof c.pretrained_cfg === 'object' && c.pretrained_cfg !== null ? c.pretrained_cfg : {}) as Record<string, unknown>;
}

/**
 * timm's model_args, or an empty object: the keyword arguments a model was
 * built with where they differ from its architecture name's defaults (a
 * vit_tiny_patch16_224 built at 32 px with patch 4 says so only there).
 */
export function modelArgs(c: Record<string, unknown>): Record<string, unknown> {
  return (typeof c.model_args === 'object' && c.model_args !== null && !Array.isArray(c.model_args) ? c.model_args : {}) as Record<string, unknown>;
}

/**
 * The shape of a tensor the config is read from: it must have `rank` dimensions,
 * none of them 0 (a zero-size tensor holds no bytes, so its other dimensions
 * would be unchecked by the file size, and no model has an empty weight).
 */
export function shapeOf(shapes: ShapeTable, name: string, rank: number): readonly number[] {
  const s = shapes.get(name);
  if (s === undefined) return fail('tensor missing from the weights file', name);
  if (s.length !== rank || s.some((d) => d === 0)) fail(`expected ${rank} non-zero dimensions, got [${s.join(', ')}]`, name);
  return s;
}

export function numberList(v: unknown, what: string): number[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    return fail(`config ${what} must be a list of numbers, got ${showValue(v)}`);
  }
  return v as number[];
}

export function positiveInt(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    return fail(`config ${what} must be a positive integer, got ${showValue(v)}`);
  }
  return v;
}

/**
 * The per-channel input normalization (x − mean) / std, x in [0, 1]: ours
 * (`mean`, `std`), else timm's pretrained_cfg, else 0.5; one value stands for
 * every channel.
 */
export function inputNormalization(c: Record<string, unknown>, channels: number): { mean: number[]; std: number[] } {
  const pre = pretrainedCfg(c);
  const mean = numberList(c.mean, 'mean') ?? numberList(pre.mean, 'pretrained_cfg.mean') ?? [0.5];
  const std = numberList(c.std, 'std') ?? numberList(pre.std, 'pretrained_cfg.std') ?? [0.5];
  const out = { mean: mean.length === 1 ? Array<number>(channels).fill(mean[0]!) : mean, std: std.length === 1 ? Array<number>(channels).fill(std[0]!) : std };
  if (out.mean.length !== channels || out.std.length !== channels) fail(`mean/std need ${channels} values (one per channel)`);
  if (out.std.some((s) => s === 0)) fail('std must not contain 0');
  return out;
}

/**
 * The class names: ours or timm's list (`class_names`, `label_names`), else
 * Hugging Face's `id2label` map ({"0": "tench", …}, read when it names every
 * class 0…n−1 once), else "class 0", "class 1"…
 */
export function classNamesOf(c: Record<string, unknown>, numClasses: number): string[] {
  const listed = c.class_names ?? c.label_names;
  if (listed !== undefined && (!Array.isArray(listed) || !listed.every((n) => typeof n === 'string'))) fail('config class_names must be a list of strings');
  const names = (listed as string[] | undefined) ?? fromId2Label(c.id2label) ?? Array.from({ length: numClasses }, (_, i) => `class ${i}`);
  if (names.length !== numClasses) fail(`class_names has ${names.length} names for ${numClasses} classes`);
  return names;
}

function fromId2Label(id2label: unknown): string[] | undefined {
  if (id2label === null || typeof id2label !== 'object' || Array.isArray(id2label)) return undefined;
  const entries = Object.entries(id2label as Record<string, unknown>);
  const names: string[] = [];
  for (const [k, v] of entries) {
    const i = Number(k);
    if (!Number.isInteger(i) || i < 0 || i >= entries.length || typeof v !== 'string') return undefined;
    names[i] = v;
  }
  return names.length === entries.length && !names.includes(undefined as unknown as string) ? names : undefined;
}
