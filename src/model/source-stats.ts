import * as tf from '@tensorflow/tfjs-core';
import type { Backbone, ParamLookup } from './backbone';
import { DownloadError, failureText, ModelFormatError } from './errors';
import { readSafetensors, writeSafetensors } from './safetensors';
import { modelFiles, SOURCE_STATS_FILE } from './files';

export { SOURCE_STATS_FILE };

/**
 * Source statistics: what a model's features look like on clean
 * in-distribution images, the reference that feature alignment pulls the test
 * stream toward (FOA, ICML 2024; NEO, 2025). Small (a few KB) and versioned,
 * it sits beside the weights as `source-stats.safetensors`:
 *
 * - `feature_mean`, `feature_var` [D]: the pooled feature the head reads
 *   (after the final norm), over all images;
 * - `class_means` [C, D], `class_counts` [C]: that feature's mean per class
 *   (the images' labels, or the model's own prediction when none are given);
 * - `layer_means`, `layer_vars`: each block's summary (Backbone.summaries:
 *   a ViT's class token leaving the block, a ResNet block's average-pooled
 *   output), [depth, D] where every block is D wide (a ViT), else the blocks
 *   laid end to end, [Σ widths] (a ResNet, whose stages widen; the widths are
 *   in the metadata);
 * - `input_mean_quantiles`, `input_std_quantiles` [101]: the 0th, 1st, …,
 *   100th percentiles over the images of each image's own pixel mean and
 *   standard deviation (all channels, values in [0, 1]), for input
 *   alignment (methods/input-align.ts);
 * - metadata `wildtta.source_stats`: format, version, the images' count and
 *   where they came from, the model's architecture and sizes.
 */
export interface SourceStats {
  version: 1;
  numClasses: number;
  width: number;
  depth: number;
  /** Each block's summary width (depth entries). */
  layerWidths: number[];
  /** How many images the statistics were computed from. */
  count: number;
  /** Where the images came from, in words (dataset, split, indices). */
  provenance: string;
  /** Whether class means come from true labels or from the model's predictions. */
  labels: 'true' | 'predicted';
  architecture?: string;
  featureMean: Float32Array;
  featureVar: Float32Array;
  classMeans: Float32Array;
  classCounts: Float32Array;
  layerMeans: Float32Array;
  layerVars: Float32Array;
  /** Percentiles 0..100 of the per-image pixel mean. */
  inputMeanQuantiles: Float32Array;
  /** Percentiles 0..100 of the per-image pixel standard deviation. */
  inputStdQuantiles: Float32Array;
}

/** Levels of the stored percentiles: 0, 1, …, 100. */
export const QUANTILE_LEVELS = 101;

/** The provenance of statistics made by computeSourceStats when the caller names none. */
export const givenImagesProvenance = (count: number): string => `${count} images given to computeSourceStats`;

export const SOURCE_STATS_METADATA_KEY = 'wildtta.source_stats';
const FORMAT = 'wildtta-source-stats';

/** Serializes source statistics as a safetensors file. */
export function writeSourceStats(s: SourceStats): Uint8Array {
  const { numClasses: C, width: D, depth: L } = s;
  const layerShape = layerTensorShape(D, s.layerWidths);
  const meta = {
    format: FORMAT,
    version: s.version,
    count: s.count,
    provenance: s.provenance,
    labels: s.labels,
    architecture: s.architecture,
    numClasses: C,
    width: D,
    depth: L,
    layerWidths: s.layerWidths,
  };
  return writeSafetensors(
    [
      ['feature_mean', { shape: [D], values: s.featureMean }],
      ['feature_var', { shape: [D], values: s.featureVar }],
      ['class_means', { shape: [C, D], values: s.classMeans }],
      ['class_counts', { shape: [C], values: s.classCounts }],
      ['layer_means', { shape: layerShape, values: s.layerMeans }],
      ['layer_vars', { shape: layerShape, values: s.layerVars }],
      ['input_mean_quantiles', { shape: [QUANTILE_LEVELS], values: s.inputMeanQuantiles }],
      ['input_std_quantiles', { shape: [QUANTILE_LEVELS], values: s.inputStdQuantiles }],
    ],
    { [SOURCE_STATS_METADATA_KEY]: JSON.stringify(meta) },
  );
}

/** [depth, D] when every block is D wide, else the blocks end to end. */
function layerTensorShape(width: number, layerWidths: readonly number[]): number[] {
  return layerWidths.every((w) => w === width) ? [layerWidths.length, width] : [layerWidths.reduce((a, w) => a + w, 0)];
}

/** What a statistics file is checked against: the model's classes, feature width and block widths. */
export type StatsShape = Pick<Backbone, 'featureWidth' | 'summaryWidths'> & { config: { numClasses: number } };

/**
 * Reads and validates a source-statistics file against the model it is for.
 * Anything off (not safetensors, another format or version, a missing or
 * mis-shaped tensor, a non-finite value, a negative variance, a count of
 * zero) throws ModelFormatError naming it.
 */
export function readSourceStats(bytes: Uint8Array | ArrayBuffer, model: StatsShape): SourceStats {
  let file: ReturnType<typeof readSafetensors>;
  try {
    file = readSafetensors(bytes);
  } catch (e) {
    if (e instanceof ModelFormatError) throw new ModelFormatError(`source statistics: ${e.message}`, e.tensor);
    throw e;
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(file.metadata[SOURCE_STATS_METADATA_KEY] ?? 'null') ?? {};
  } catch {
    throw new ModelFormatError(`source statistics: metadata ${SOURCE_STATS_METADATA_KEY} is not valid JSON`);
  }
  if (meta.format !== FORMAT)
    throw new ModelFormatError(`source statistics: not a ${FORMAT} file (metadata ${SOURCE_STATS_METADATA_KEY} missing or of another format)`);
  if (meta.version !== 1) throw new ModelFormatError(`source statistics: unsupported version ${String(meta.version)} (this build reads version 1)`);
  const count = meta.count;
  if (typeof count !== 'number' || !(count >= 1)) throw new ModelFormatError(`source statistics: image count must be ≥ 1, got ${String(count)}`);
  const C = model.config.numClasses;
  const D = model.featureWidth;
  const layerWidths = [...model.summaryWidths];
  const L = layerWidths.length;
  const layerShape = layerTensorShape(D, layerWidths);
  if (Array.isArray(meta.layerWidths) && (meta.layerWidths.length !== L || meta.layerWidths.some((w, i) => w !== layerWidths[i]))) {
    throw new ModelFormatError(
      `source statistics: made for blocks of widths [${meta.layerWidths.join(', ')}], the model's are [${layerWidths.join(', ')}]`,
      'layer_means',
    );
  }
  const want: Record<string, number[]> = {
    feature_mean: [D],
    feature_var: [D],
    class_means: [C, D],
    class_counts: [C],
    layer_means: layerShape,
    layer_vars: layerShape,
    input_mean_quantiles: [QUANTILE_LEVELS],
    input_std_quantiles: [QUANTILE_LEVELS],
  };
  const get = (name: string): Float32Array => {
    const t = file.tensors.get(name);
    const shape = want[name]!;
    if (!t) throw new ModelFormatError('source statistics lack this tensor', name);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFormatError(
        `shape [${t.shape.join(', ')}] does not fit the model (expected [${shape.join(', ')}]: ${C} classes, width ${D}, depth ${L}, block widths [${layerWidths.join(', ')}])`,
        name,
      );
    }
    for (let i = 0; i < t.values.length; i++) {
      const v = t.values[i]!;
      if (!Number.isFinite(v)) throw new ModelFormatError(`value ${i} is not finite`, name);
      if ((name.endsWith('_var') || name.endsWith('_vars') || name === 'class_counts' || name === 'input_std_quantiles') && v < 0)
        throw new ModelFormatError(`value ${i} is negative (${v})`, name);
      if (name.endsWith('_quantiles') && i > 0 && v < t.values[i - 1]!)
        throw new ModelFormatError(`percentiles must not decrease (value ${i} is below value ${i - 1})`, name);
    }
    return t.values;
  };
  for (const name of file.tensors.keys()) if (!(name in want)) throw new ModelFormatError('unexpected tensor in source statistics', name);
  return {
    version: 1,
    numClasses: C,
    width: D,
    depth: L,
    layerWidths,
    count,
    provenance: typeof meta.provenance === 'string' ? meta.provenance : '',
    labels: meta.labels === 'true' ? 'true' : 'predicted',
    ...(typeof meta.architecture === 'string' ? { architecture: meta.architecture } : {}),
    featureMean: get('feature_mean'),
    featureVar: get('feature_var'),
    classMeans: get('class_means'),
    classCounts: get('class_counts'),
    layerMeans: get('layer_means'),
    layerVars: get('layer_vars'),
    inputMeanQuantiles: get('input_mean_quantiles'),
    inputStdQuantiles: get('input_std_quantiles'),
  };
}

/** Percentiles 0..100 of `values` (nearest rank on the sorted values). */
function percentiles(values: number[]): Float32Array {
  const sorted = [...values].sort((a, b) => a - b);
  return Float32Array.from({ length: QUANTILE_LEVELS }, (_, k) => sorted[Math.min(sorted.length - 1, Math.round((k / 100) * (sorted.length - 1)))]!);
}

export interface ComputeSourceStatsOptions {
  /** True labels of the images (one per image); without them the model's predictions group the class means. */
  labels?: ArrayLike<number>;
  /** Images per forward (default 100). */
  batchSize?: number;
  provenance?: string;
  /** The model's architecture name, recorded in the file. */
  architecture?: string;
  /**
   * The weights to measure, by name (default: the model's own). An engine
   * whose norms are being adapted passes the source values, so the
   * statistics describe the source model, not the adapted one.
   */
  param?: ParamLookup;
}

/**
 * Computes source statistics of `model` from clean in-distribution `images`
 * [B, H, W, C] in [0, 1] (the model's own training distribution: a few
 * hundred to a thousand images are enough). Sums run in float64 on the CPU.
 */
export async function computeSourceStats(model: Backbone, images: tf.Tensor4D, o: ComputeSourceStatsOptions = {}): Promise<SourceStats> {
  const C = model.config.numClasses;
  const D = model.featureWidth;
  const layerWidths = [...model.summaryWidths];
  const L = layerWidths.length;
  const layerTotal = layerWidths.reduce((a, w) => a + w, 0);
  const B = images.shape[0];
  if (B < 1) throw new RangeError('computeSourceStats needs at least one image');
  if (o.labels && o.labels.length !== B) throw new RangeError(`labels has ${o.labels.length} entries for ${B} images`);
  const batch = o.batchSize ?? 100;
  const sum = new Float64Array(D);
  const sq = new Float64Array(D);
  const classSum = new Float64Array(C * D);
  const counts = new Float64Array(C);
  const layerSum = new Float64Array(layerTotal);
  const layerSq = new Float64Array(layerTotal);
  const imageMeans: number[] = [];
  const imageStds: number[] = [];
  for (let start = 0; start < B; start += batch) {
    const n = Math.min(batch, B - start);
    const out = tf.tidy(() => {
      const x = tf.slice(images, [start, 0, 0, 0], [n, -1, -1, -1]);
      const { logits, features, layers } = model.summaries(x, o.param);
      const { mean, variance } = tf.moments(x, [1, 2, 3]);
      // Each block's [n, width] laid end to end per image: [n, Σ widths].
      return [features, tf.argMax(logits, 1), tf.concat(layers, 1), mean, variance];
    });
    const [pooled, predicted, layers, pixelMean, pixelVar] = (await Promise.all(out.map((t) => t.data()))) as [
      Float32Array,
      Int32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    for (let b = 0; b < n; b++) {
      imageMeans.push(pixelMean[b]!);
      imageStds.push(Math.sqrt(Math.max(0, pixelVar[b]!)));
    }
    tf.dispose(out);
    for (let b = 0; b < n; b++) {
      const label = o.labels ? o.labels[start + b]! : predicted[b]!;
      if (!(Number.isInteger(label) && label >= 0 && label < C))
        throw new RangeError(`label ${label} of image ${start + b} is not a class of this model (0..${C - 1})`);
      counts[label]!++;
      for (let d = 0; d < D; d++) {
        const v = pooled[b * D + d]!;
        sum[d]! += v;
        sq[d]! += v * v;
        classSum[label * D + d]! += v;
      }
      for (let j = 0; j < layerTotal; j++) {
        const v = layers[b * layerTotal + j]!;
        layerSum[j]! += v;
        layerSq[j]! += v * v;
      }
    }
  }
  const featureMean = Float32Array.from(sum, (s) => s / B);
  const featureVar = Float32Array.from(sq, (s, d) => Math.max(0, s / B - featureMean[d]! ** 2));
  // A class no image fell into keeps the overall mean, so averaging class means stays defined.
  const classMeans = Float32Array.from(classSum, (s, i) => {
    const c = Math.floor(i / D);
    return counts[c]! > 0 ? s / counts[c]! : featureMean[i % D]!;
  });
  const layerMeans = Float32Array.from(layerSum, (s) => s / B);
  const layerVars = Float32Array.from(layerSq, (s, i) => Math.max(0, s / B - layerMeans[i]! ** 2));
  return {
    version: 1,
    numClasses: C,
    width: D,
    depth: L,
    layerWidths,
    count: B,
    provenance: o.provenance ?? `${B} clean images`,
    labels: o.labels ? 'true' : 'predicted',
    ...(o.architecture ? { architecture: o.architecture } : {}),
    featureMean,
    featureVar,
    classMeans,
    classCounts: Float32Array.from(counts),
    layerMeans,
    layerVars,
    inputMeanQuantiles: percentiles(imageMeans),
    inputStdQuantiles: percentiles(imageStds),
  };
}

/**
 * The source statistics that come with a model: the bytes given, the URL
 * given, else source-stats.safetensors beside a URL model's weights, where
 * none is no error (false: none at all). Validated against the model; a bad
 * file, or a given URL that cannot be read, is a ModelFormatError.
 */
export async function fetchSourceStats(
  model: Backbone,
  given: ArrayBuffer | Uint8Array | string | false | undefined,
  modelUrl: string | undefined,
  doFetch: typeof fetch = globalThis.fetch.bind(globalThis),
): Promise<SourceStats | undefined> {
  if (given === false) return undefined;
  if (given instanceof ArrayBuffer || given instanceof Uint8Array) return readSourceStats(given, model);
  const explicit = typeof given === 'string';
  if (!explicit && modelUrl === undefined) return undefined;
  const url = explicit ? given : modelFiles(modelUrl!).sourceStats;
  let res: Response;
  try {
    res = await doFetch(url);
  } catch (e) {
    if (explicit) throw new DownloadError(`could not fetch source statistics ${url}: ${failureText(e)}`, url, failureText(e));
    return undefined;
  }
  if (!res.ok) {
    if (explicit) throw new DownloadError(`could not fetch source statistics ${url}: HTTP ${res.status}`, url, `HTTP ${res.status}`, res.status);
    return undefined;
  }
  // A host that answers a missing file with a page (an SPA fallback) has no statistics there; a file that is there is checked.
  if (!explicit && /^text\/html/i.test(res.headers.get('content-type') ?? '')) return undefined;
  return readSourceStats(new Uint8Array(await res.arrayBuffer()), model);
}
