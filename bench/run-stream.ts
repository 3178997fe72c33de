// Runs one method over one stream and scores it. Environment-agnostic: the
// benchmark page calls it in the browser, the tuning script in Node.
import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../src/model/backbone';
import type { LabeledImages } from '../src/data/idx';
import { grayBatch } from '../src/data/images';
import type { Stream } from '../src/data/streams';
import { createAdapter, estimateFisher, type AdapterOptions } from '../src/methods';
import { selectNormParams } from '../src/methods/params';
import type { SourceStats } from '../src/model/source-stats';

export type CorruptFn = (x: tf.Tensor4D, name: string, severity: number, seed: number) => tf.Tensor4D;

export interface SegmentScore {
  name: string;
  correct: number;
  total: number;
  accuracy: number;
}

export interface StreamTrace {
  correct: number[];
  entropy: number[];
  reliable: number[];
  /** Gradient norm of the update each step caused (NaN when none). */
  gradNorm: number[];
  reset: number[];
}

export interface StreamScore {
  method: string;
  segments: SegmentScore[];
  /** Accuracy per corruption over the whole stream (in the mixed stream, corruptions share one segment). */
  byCorruption: Record<string, { correct: number; total: number }>;
  correct: number;
  total: number;
  accuracy: number;
  updates: number;
  resets: number;
  ms: number;
  trace?: StreamTrace;
}

export interface RunStreamOptions {
  model: Backbone;
  images: LabeledImages;
  stream: Stream;
  method: AdapterOptions;
  corrupt: CorruptFn;
  /** Clean held-out image indices, for EATA's Fisher. */
  cleanIndices?: number[];
  /** How many clean images EATA's Fisher uses (default 500). */
  fisherCount?: number;
  trace?: boolean;
  /** The model's source statistics, given to every method (those that re-centre or align use them). */
  sourceStats?: SourceStats;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Resets to the source weights at each segment's start (a fresh adapter, as
 * the paper resets per corruption), feeds the items one at a time, and scores
 * the prediction each step returns (made before that step's update).
 */
export async function runStream(o: RunStreamOptions): Promise<StreamScore> {
  const { model, images, stream } = o;
  const t0 = performance.now();
  let fisher: Map<string, tf.Tensor> | undefined;
  if (o.method.method === 'eata' && !o.method.fisher && o.cleanIndices?.length) {
    const count = Math.min(o.fisherCount ?? 500, o.cleanIndices.length);
    const clean = tf.tidy(
      () => tf.concat(o.cleanIndices!.slice(0, count).map((i) => grayBatch(images.images, i, 1, images.height, images.width))) as tf.Tensor4D,
    );
    const params = selectNormParams(model, { skipLastBlocks: o.method.skipLastBlocks ?? 0, includeFinalNorm: o.method.includeFinalNorm ?? true });
    // Per image, as the reference does at the streams' batch size of 1.
    fisher = await estimateFisher(model, params, clean);
    clean.dispose();
  }
  const trace: StreamTrace | undefined = o.trace ? { correct: [], entropy: [], reliable: [], gradNorm: [], reset: [] } : undefined;
  const segments: SegmentScore[] = [];
  const byCorruption: StreamScore['byCorruption'] = {};
  let updates = 0;
  let resets = 0;
  let done = 0;
  const total = stream.items.length;
  for (const seg of stream.segments) {
    const extra = { ...(fisher ? { fisher } : {}), ...(o.sourceStats ? { sourceStats: o.sourceStats } : {}) };
    const adapter = await createAdapter(model, { ...o.method, ...extra } as AdapterOptions);
    const record = (step: number, gradNorm: number, reset: boolean) => {
      if (!trace) return;
      trace.gradNorm[seg.start + step] = gradNorm;
      trace.reset[seg.start + step] = reset ? 1 : 0;
    };
    adapter.onUpdate = (r) => record(r.step, r.gradNorm, r.reset);
    let correct = 0;
    for (let k = seg.start; k < seg.end; k++) {
      const item = stream.items[k]!;
      const x = tf.tidy(() => o.corrupt(grayBatch(images.images, item.index, 1, images.height, images.width), item.corruption, item.severity, item.seed));
      const r = await adapter.step(x);
      x.dispose();
      const ok = r.classes[0] === item.label;
      if (ok) correct++;
      const tally = (byCorruption[item.corruption] ??= { correct: 0, total: 0 });
      tally.total++;
      if (ok) tally.correct++;
      if (trace) {
        trace.correct[k] = ok ? 1 : 0;
        trace.entropy[k] = r.entropies[0]!;
        trace.reliable[k] = r.reliable[0] ? 1 : 0;
        trace.gradNorm[k] ??= NaN;
        trace.reset[k] ??= 0;
      }
      done++;
      if (done % 50 === 0) o.onProgress?.(done, total);
    }
    await adapter.flush();
    updates += adapter.updateCount;
    resets += adapter.resetCount;
    adapter.dispose();
    segments.push({ name: seg.name, correct, total: seg.end - seg.start, accuracy: correct / (seg.end - seg.start) });
  }
  if (fisher) for (const t of fisher.values()) t.dispose();
  o.onProgress?.(total, total);
  const correct = segments.reduce((a, s) => a + s.correct, 0);
  const score: StreamScore = {
    method: o.method.method,
    segments,
    byCorruption,
    correct,
    total,
    accuracy: correct / total,
    updates,
    resets,
    ms: performance.now() - t0,
  };
  if (trace) score.trace = trace;
  return score;
}
