// Loading a model: from a URL or a Blob (streamed, safetensors-stream.ts) or
// from bytes in memory, into whichever family its tensors are
// (families.ts), with the config from, in order: the caller's, config.json
// beside a URL model, the file's own metadata, and the tensor shapes.
import { familyOf } from './families';
import { DownloadError, failureText, ModelFormatError } from './errors';
import { modelFiles } from './files';
import { downloadCache, readThroughCache, type CachePolicy } from './download-cache';
import { readSafetensors, type DecodedTensor } from './safetensors';
import { streamSafetensors, type LoadProgress } from './safetensors-stream';
import { ViT, vitFamily, type ViTOptions } from './vit';
import { resolveViTConfig } from './config';
import type { Backbone } from './backbone';

export type { LoadProgress };

export type WeightsSource = string | URL | Blob | ArrayBuffer | Uint8Array;

export interface LoadOptions {
  /** A config object (ours, timm's or Hugging Face's) overriding any config.json or file metadata. */
  config?: unknown;
  onProgress?: (p: LoadProgress) => void;
  /** fetch to use (tests, auth); defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Keep a URL model's files in Cache Storage (download-cache.ts): how a cached copy is trusted. Default false (no cache). */
  cache?: CachePolicy;
}

/** The metadata key under which we embed our config.json in a safetensors file. */
export const CONFIG_METADATA_KEY = 'wildtta.config';

/**
 * A model of any family the loader knows. `source`: a folder URL (ending in
 * '/': model.safetensors and config.json inside), the URL of a
 * .safetensors file (config.json beside it is read if present), a
 * File/Blob, or the file's bytes. URLs and Blobs are streamed into the
 * model's tensors.
 */
export async function loadBackbone(source: WeightsSource, options: LoadOptions = {}): Promise<Backbone> {
  return backboneFromFile(await readModelFile(source, options));
}

/** A model file read and decoded, not yet on any backend: what backboneFromFile builds, as often as asked. */
export interface ModelFile {
  tensors: ReadonlyMap<string, DecodedTensor>;
  metadata: Readonly<Record<string, string>>;
  /** The config given or found beside the weights (else the file's own, or the shapes', at build). */
  config: unknown;
}

/** Reads `source` (as loadBackbone takes it) into memory, decoded, with its config. */
export async function readModelFile(source: WeightsSource, options: LoadOptions = {}): Promise<ModelFile> {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    const bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
    // In memory already: a single report, so progress UIs complete either way.
    options.onProgress?.({ loadedBytes: bytes.byteLength, totalBytes: bytes.byteLength });
    return { ...readSafetensors(bytes), config: options.config };
  }
  if (source instanceof Blob) return { ...(await streamSafetensors({ blob: source }, options.onProgress)), config: options.config };
  const rawFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  // A network failure is a bare TypeError with no URL: every fetch here names what it was fetching.
  const doFetch = ((input: RequestInfo | URL, init?: RequestInit) =>
    rawFetch(input, init).catch((e: unknown) => {
      const url = input instanceof Request ? input.url : String(input);
      throw new DownloadError(`could not fetch ${url}: ${failureText(e)}`, url, failureText(e));
    })) as typeof fetch;
  const cache = downloadCache(options.cache ?? false, doFetch);
  const files = modelFiles(source);
  // Both requests go out together; the config's answer is in before the weights' is read (or refused).
  const [weights, config] = await Promise.all([
    readThroughCache(cache, files.weights, async ({ response, fromCache }) => {
      const onProgress = options.onProgress;
      const file = await streamSafetensors({ url: files.weights, response }, onProgress && ((p) => onProgress({ ...p, fromCache })));
      // A cached copy is checked here, not only at build, so one with a damaged value is fetched again rather than kept.
      if (fromCache) checkFinite(file.tensors);
      return file;
    }),
    options.config === undefined ? fetchOptionalJson(cache.fetchFn, files.config) : Promise.resolve(options.config),
  ]);
  await cache.settleAll();
  return { ...weights, config };
}

/** The model in `file`, its tensors on the backend running now. */
export function backboneFromFile(file: ModelFile): Backbone {
  return backboneFromTensors(file.tensors, file.metadata, file.config);
}

/** loadBackbone for a ViT (a ModelFormatError for any other family). */
export async function loadViT(source: WeightsSource, options: LoadOptions = {}): Promise<ViT> {
  return asViT(await loadBackbone(source, options));
}

/** Bytes in memory as a model of whichever family its tensors are. */
export function backboneFromSafetensors(bytes: Uint8Array, configJson?: unknown): Backbone {
  const { tensors, metadata } = readSafetensors(bytes);
  return backboneFromTensors(tensors, metadata, configJson);
}

/**
 * Decoded tensors as a model of the family that claims them (families.ts):
 * the config is `configJson` if given, else the file's own
 * (metadata["wildtta.config"]), else what the shapes say. Every weight must
 * be finite.
 */
export function backboneFromTensors(tensors: ReadonlyMap<string, DecodedTensor>, metadata: Readonly<Record<string, string>>, configJson?: unknown): Backbone {
  const family = familyOf(new Set(tensors.keys()));
  const config = family.config(shapesOf(tensors), configJson ?? embeddedConfig(metadata) ?? {});
  checkFinite(tensors);
  return family.build(config, tensors);
}

/** A ViT from safetensors bytes; `options.trainable: 'all'` makes every weight a variable (training). */
export function vitFromSafetensors(bytes: Uint8Array, configJson?: unknown, options: ViTOptions = {}): ViT {
  const { tensors, metadata } = readSafetensors(bytes);
  if (options.trainable !== 'all') return asViT(backboneFromTensors(tensors, metadata, configJson));
  const config = resolveViTConfig(shapesOf(tensors), configJson ?? embeddedConfig(metadata) ?? {});
  checkFinite(tensors);
  return new ViT(config, tensors, options);
}

function asViT(model: Backbone): ViT {
  if (model.family === vitFamily.name) return model as ViT;
  model.dispose();
  throw new ModelFormatError(`expected a ViT, the file is a ${model.family} model`);
}

const shapesOf = (tensors: ReadonlyMap<string, DecodedTensor>) => new Map([...tensors].map(([k, v]) => [k, v.shape] as const));

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

/** A config.json beside the weights: undefined when there is none (404 or no connection). */
export async function fetchOptionalJson(doFetch: typeof fetch, url: string): Promise<unknown> {
  let res: Response;
  try {
    res = await doFetch(url);
  } catch {
    return undefined;
  }
  if (res.status === 404) return undefined;
  if (!res.ok) throw new DownloadError(`could not fetch ${url}: HTTP ${res.status}`, url, `HTTP ${res.status}`, res.status);
  try {
    return await res.json();
  } catch (e) {
    throw new ModelFormatError(`${url} is not valid JSON (${(e as Error).message})`);
  }
}
