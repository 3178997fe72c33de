import { resolveViTConfig, type ViTConfig } from './config';
import { ModelFormatError } from './errors';
import { readSafetensors, type DecodedTensor } from './safetensors';
import { ViT, type ViTOptions } from './vit';
import type { Backbone } from './backbone';
import { looksLikeResNet, resolveResNetGnConfig, ResNetGN } from './resnet-gn';

export type WeightsSource = string | URL | Blob | ArrayBuffer | Uint8Array;

export interface LoadProgress {
  loadedBytes: number;
  /** Total bytes when the server says (content-length); otherwise undefined. */
  totalBytes: number | undefined;
}

export interface LoadViTOptions extends ViTOptions {
  /** A config object (ours or timm's) overriding any config.json or file metadata. */
  config?: unknown;
  onProgress?: (p: LoadProgress) => void;
  /** fetch to use (tests, auth); defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** The metadata key under which we embed our config.json in a safetensors file. */
export const CONFIG_METADATA_KEY = 'wildtta.config';

/**
 * Loads a ViT from timm-layout safetensors.
 *
 * `source` is a folder URL (ending in '/': reads model.safetensors and
 * config.json inside it), a URL of a .safetensors file (config.json beside it
 * is read if present), a File/Blob, or the file's bytes. The config comes from,
 * in order: `options.config`, config.json, the file's own metadata, and the
 * tensor shapes (see resolveViTConfig).
 */
export async function loadViT(source: WeightsSource, options: LoadViTOptions = {}): Promise<ViT> {
  const { bytes, configJson } = await readModelSource(source, options);
  return vitFromSafetensors(bytes, configJson);
}

/** Bytes in memory as any family's model (a ViT, or a GroupNorm ResNet: see backboneFromTensors). */
export function backboneFromSafetensors(bytes: Uint8Array, configJson?: unknown): Backbone {
  const { tensors, metadata } = readSafetensors(bytes);
  return backboneFromTensors(tensors, metadata, configJson);
}

/** Like loadViT, for any family the loader knows. */
export async function loadBackbone(source: WeightsSource, options: LoadViTOptions = {}): Promise<Backbone> {
  const { bytes, configJson } = await readModelSource(source, options);
  return backboneFromSafetensors(bytes, configJson);
}

/** The weights' bytes and the config (options.config, else config.json beside a URL model). */
async function readModelSource(source: WeightsSource, options: LoadViTOptions): Promise<{ bytes: Uint8Array; configJson: unknown }> {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  let bytes: Uint8Array;
  let configJson: unknown = options.config;
  if (typeof source === 'string' || source instanceof URL) {
    const text = source.toString();
    const weightsUrl = text.endsWith('.safetensors') ? text : `${text.replace(/\/?$/, '/')}model.safetensors`;
    const configUrl = weightsUrl.replace(/[^/]*$/, 'config.json');
    const [weights, config] = await Promise.all([
      fetchBytes(doFetch, weightsUrl, options.onProgress),
      configJson === undefined ? fetchOptionalJson(doFetch, configUrl) : Promise.resolve(configJson),
    ]);
    bytes = weights;
    configJson = config;
  } else {
    if (source instanceof Uint8Array) bytes = source;
    else if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
    else bytes = new Uint8Array(await source.arrayBuffer());
    // In memory already (or read in one go): a single report, so progress UIs complete either way.
    options.onProgress?.({ loadedBytes: bytes.byteLength, totalBytes: bytes.byteLength });
  }
  return { bytes, configJson };
}

/** Builds a ViT from safetensors bytes and an optional config object. */
export function vitFromSafetensors(bytes: Uint8Array, configJson?: unknown, options: ViTOptions = {}): ViT {
  const { tensors, metadata } = readSafetensors(bytes);
  return vitFromTensors(tensors, metadata, configJson, options);
}

/**
 * Builds a ViT from decoded tensors: the config is `configJson` if given,
 * else the file's own (metadata["wildtta.config"]), else what the tensor
 * shapes say (see resolveViTConfig).
 */
export function vitFromTensors(
  tensors: ReadonlyMap<string, DecodedTensor>,
  metadata: Readonly<Record<string, string>>,
  configJson?: unknown,
  options: ViTOptions = {},
): ViT {
  const config = configJson ?? embeddedConfig(metadata);
  const shapes = new Map([...tensors].map(([k, v]) => [k, v.shape] as const));
  const cfg: ViTConfig = resolveViTConfig(shapes, config ?? {});
  checkFinite(tensors);
  return new ViT(cfg, tensors, options);
}

/**
 * A model of whichever family the tensors are: a timm ResNet (conv1, layer1…,
 * fc) becomes a GroupNorm ResNet (resnet-gn.ts), anything else is read as a
 * ViT (with the ViT's errors when it is not one either).
 */
export function backboneFromTensors(tensors: ReadonlyMap<string, DecodedTensor>, metadata: Readonly<Record<string, string>>, configJson?: unknown): Backbone {
  if (!looksLikeResNet(tensors.keys())) return vitFromTensors(tensors, metadata, configJson);
  const cfg = resolveResNetGnConfig(new Map([...tensors].map(([k, v]) => [k, v.shape] as const)), configJson ?? embeddedConfig(metadata) ?? {});
  checkFinite(tensors);
  return new ResNetGN(cfg, tensors);
}

function embeddedConfig(metadata: Readonly<Record<string, string>>): unknown {
  const text = metadata[CONFIG_METADATA_KEY];
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelFormatError(`__metadata__["${CONFIG_METADATA_KEY}"] is not valid JSON`);
  }
}

/** A NaN or infinite weight makes every logit NaN; say which tensor at load rather than on the first frame. */
function checkFinite(tensors: ReadonlyMap<string, DecodedTensor>): void {
  for (const [name, t] of tensors) {
    const v = t.values;
    for (let i = 0; i < v.length; i++)
      if (!Number.isFinite(v[i]!)) throw new ModelFormatError(`value ${i} is ${v[i]}: every weight must be a finite number`, name);
  }
}

async function fetchBytes(doFetch: typeof fetch, url: string, onProgress?: (p: LoadProgress) => void): Promise<Uint8Array> {
  const res = await doFetch(url);
  if (!res.ok) throw new ModelFormatError(`could not fetch ${url}: HTTP ${res.status}`);
  // A missing or malformed content-length (negative, fractional, not a number) is ignored, not trusted.
  const announced = Number(res.headers.get('content-length') ?? NaN);
  const total = Number.isSafeInteger(announced) && announced >= 0 ? announced : undefined;
  if (res.body === null) {
    const buf = new Uint8Array(await res.arrayBuffer());
    onProgress?.({ loadedBytes: buf.byteLength, totalBytes: total });
    return buf;
  }
  // Stream into one buffer of the announced size so a large model is not held twice.
  const reader = res.body.getReader();
  let out = new Uint8Array(total ?? 1 << 20);
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength > out.byteLength) {
      const grown = new Uint8Array(Math.max(out.byteLength * 2, loaded + value.byteLength));
      grown.set(out.subarray(0, loaded));
      out = grown;
    }
    out.set(value, loaded);
    loaded += value.byteLength;
    onProgress?.({ loadedBytes: loaded, totalBytes: total });
  }
  return loaded === out.byteLength ? out : out.subarray(0, loaded);
}

/** A config.json beside the weights: undefined when there is none (404 or no connection). */
export async function fetchOptionalJson(doFetch: typeof fetch, url: string): Promise<unknown> {
  let res: Response;
  try {
    res = await doFetch(url);
  } catch {
    return undefined;
  }
  if (res.status === 404) return undefined;
  if (!res.ok) throw new ModelFormatError(`could not fetch ${url}: HTTP ${res.status}`);
  try {
    return await res.json();
  } catch (e) {
    throw new ModelFormatError(`${url} is not valid JSON (${(e as Error).message})`);
  }
}
