// Parity of SAR, Tent, EATA and DeYO with an independent PyTorch reference
// (tools/make_method_fixtures.py, written from the papers' algorithms and our semantics):
// 8 batch-size-1 steps per run on a tiny random ViT, compared at every step.
//
//   node --import tsx --test src/methods/parity.test.ts
//
// Exact: the per-sample reliable flags of the first filter, whether an update
// was queued (a report exists), and the report's updated / kept / reset.
// Adapted tensors after each step: max-abs error over all adapted tensors
// ≤ 1e-4 × max(drift, 1e-2 × |θ|max), where drift is the reference's max-abs
// distance from the source weights over all adapted tensors. The error is thus
// measured against how far adaptation has moved the weights (a wrong lr or
// gradient shows up even when the weights themselves barely change); the floor,
// 1e-6 of the weights' magnitude (≈ 8 float32 ulps), only matters at or near
// the source (first step, just after a reset), where the values must agree to
// float32 resolution. Scalars (loss, lossSecond, gradNorm, ema):
// |a − r| ≤ 1e-4 × max(|r|, 1e-6); NaN where the reference has none.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { vitFromSafetensors } from '../model/load';
import { readSafetensors, type DecodedTensor } from '../model/safetensors';
import type { ViT } from '../model/vit';
import { createAdapter, estimateFisher, type AdapterOptions, type UpdateReport } from './index';
import { selectNormParams } from './params';

const DIR = join(import.meta.dirname, '..', '..', 'e2e', 'fixtures', 'methods');
const TENSOR_TOL = 1e-4;
const SCALAR_TOL = 1e-4;
const FISHER_TOL = 1e-4;

interface StepRecord {
  reliable: boolean[];
  report: boolean;
  updated: boolean;
  kept: number;
  reset: boolean;
  loss: number | null;
  lossSecond: number | null;
  gradNorm: number | null;
  ema: number | null;
  drift: number;
  hasM?: boolean;
  perm?: number[];
}

interface Run {
  name: string;
  method: 'sar' | 'tent' | 'eata' | 'deyo';
  options: Record<string, unknown> & { method: string };
  resolved: Record<string, number>;
  adapted: string[];
  steps: StepRecord[];
}

const runs = (JSON.parse(readFileSync(join(DIR, 'runs.json'), 'utf8')) as { runs: Run[] }).runs;
const modelBytes = new Uint8Array(readFileSync(join(DIR, 'model.safetensors')));
const modelConfig: unknown = JSON.parse(readFileSync(join(DIR, 'config.json'), 'utf8'));
const source = readSafetensors(modelBytes).tensors;
const expected = readSafetensors(new Uint8Array(readFileSync(join(DIR, 'expected.safetensors')))).tensors;

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

function get(key: string): DecodedTensor {
  const t = expected.get(key);
  assert.ok(t, `expected.safetensors has no tensor ${key}`);
  return t;
}

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]!));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Image i of a stored [N, H, W, C] tensor as a [1, H, W, C] tensor. */
function image(t: DecodedTensor, i: number): tf.Tensor4D {
  const [, H, W, C] = t.shape as [number, number, number, number];
  const n = H * W * C;
  return tf.tensor4d(t.values.slice(i * n, (i + 1) * n), [1, H, W, C]);
}

function images(t: DecodedTensor): tf.Tensor4D {
  return tf.tensor4d(t.values, t.shape as [number, number, number, number]);
}

function fisherFromFixture(names: string[]): Map<string, tf.Tensor> {
  return new Map(
    names.map((n) => {
      const t = get(`eata.fisher.${n}`);
      return [n, tf.tensor(t.values, t.shape)] as const;
    }),
  );
}

/** Worst relative errors seen, for the test's diagnostics. */
interface Worst {
  tensor: number;
  scalar: number;
}

function checkScalar(where: string, got: number, want: number | null, worst: Worst): void {
  if (want === null) {
    assert.ok(Number.isNaN(got), `${where}: expected NaN (none), got ${got}`);
    return;
  }
  const rel = Math.abs(got - want) / Math.max(Math.abs(want), 1e-6);
  worst.scalar = Math.max(worst.scalar, Number.isNaN(rel) ? Infinity : rel);
  assert.ok(rel <= SCALAR_TOL, `${where}: got ${got}, reference ${want} (relative error ${rel.toExponential(2)} > ${SCALAR_TOL})`);
}

type Variant = 'fisher' | 'fisherImages' | undefined;

async function replay(run: Run, variant: Variant): Promise<Worst> {
  const model: ViT = vitFromSafetensors(modelBytes, modelConfig);
  const owned: tf.Tensor[] = [];
  const worst: Worst = { tensor: 0, scalar: 0 };
  const options = { ...run.options } as AdapterOptions & Record<string, unknown>;
  let current = -1;
  const permCalls: number[] = [];
  if (run.method === 'eata') {
    if (variant === 'fisherImages') {
      const imgs = images(get('eata.fisher_images'));
      owned.push(imgs);
      Object.assign(options, { fisherImages: imgs, fisherBatchSize: run.resolved.fisherBatchSize });
    } else {
      const fisher = fisherFromFixture(run.adapted);
      owned.push(...fisher.values());
      Object.assign(options, { fisher });
    }
  }
  if (run.method === 'deyo') {
    options.patchPermutation = (count: number, patches: number) => {
      assert.equal(count, 1, 'one kept sample per step');
      assert.equal(patches, 16, 'a 4×4 grid');
      permCalls.push(current);
      const perm = run.steps[current]!.perm;
      assert.ok(perm, `no permutation stored for step ${current}`);
      return [perm];
    };
  }
  const adapter = await createAdapter(model, options);
  try {
    assert.deepEqual([...adapter.params.keys()].sort(), [...run.adapted].sort(), 'adapted parameters');
    const inputs = get(`${run.name}.inputs`);
    for (let i = 0; i < run.steps.length; i++) {
      const s = run.steps[i]!;
      const at = `${run.name} step ${i}`;
      current = i;
      const x = image(inputs, i);
      const r = await adapter.step(x);
      x.dispose();
      // Tent reports with its own step; the others with the next step or flush().
      const report: UpdateReport | undefined = r.update ?? (await adapter.flush());

      assert.deepEqual(r.reliable, s.reliable, `${at}: reliable flags`);
      assert.equal(report !== undefined, s.report, `${at}: an update ${s.report ? 'was' : 'was not'} expected`);
      if (report) {
        assert.equal(report.step, i, `${at}: report belongs to step ${report.step}`);
        assert.equal(report.updated, s.updated, `${at}: updated`);
        assert.equal(report.kept, s.kept, `${at}: kept`);
        assert.equal(report.reset, s.reset, `${at}: reset`);
        assert.equal(report.nonFinite, false, `${at}: nonFinite`);
        checkScalar(`${at}: loss`, report.loss, s.loss, worst);
        checkScalar(`${at}: lossSecond`, report.lossSecond, s.lossSecond, worst);
        // With nothing kept our semantics leave the gradient norm undefined (EATA, DeYO).
        if (s.gradNorm !== null) checkScalar(`${at}: gradNorm`, report.gradNorm, s.gradNorm, worst);
        checkScalar(`${at}: ema`, report.ema, s.ema, worst);
      }

      // Adapted tensors after the step, relative to how far the reference has moved from the source.
      let err = 0;
      let magnitude = 0;
      let worstName = '';
      for (const [name, p] of adapter.params) {
        const want = get(`${run.name}.step${i}.${name}`);
        assert.deepEqual(p.shape, want.shape, `${at}: shape of ${name}`);
        const e = maxAbsDiff((await p.data()) as Float32Array, want.values);
        if (e > err || worstName === '') [err, worstName] = [e, name];
        magnitude = Math.max(magnitude, maxAbs(want.values));
      }
      const driftNow = Math.max(...run.adapted.map((n) => maxAbsDiff(get(`${run.name}.step${i}.${n}`).values, source.get(n)!.values)));
      const scale = Math.max(driftNow, 1e-2 * magnitude);
      worst.tensor = Math.max(worst.tensor, err / scale);
      assert.ok(
        err <= TENSOR_TOL * scale,
        `${at}: ${worstName} max-abs error ${err.toExponential(2)} > ${TENSOR_TOL} × ${scale.toExponential(2)} (drift ${driftNow.toExponential(2)})`,
      );

      if (run.method === 'eata') {
        // The moving average of probabilities behind the redundancy filter.
        const state = readSafetensors(await adapter.exportState()).tensors;
        const has = state.get('state.has_probs_ema')!.values[0]! > 0.5;
        assert.equal(has, s.hasM, `${at}: probability average exists`);
        if (has) {
          const want = get(`${run.name}.step${i}.m`).values;
          const e = maxAbsDiff(state.get('state.probs_ema')!.values, want);
          assert.ok(e <= 1e-4 * maxAbs(want), `${at}: probability average max-abs error ${e.toExponential(2)}`);
        }
      }
    }
    if (run.method === 'deyo') {
      assert.deepEqual(
        permCalls,
        run.steps.flatMap((s, i) => (s.report ? [i] : [])),
        'patch permutations drawn exactly on the steps that passed the entropy filter',
      );
    }
  } finally {
    adapter.dispose();
    model.dispose();
    tf.dispose(owned);
  }
  return worst;
}

test('the fixture mixes every branch', () => {
  const by = (name: string) => runs.find((r) => r.name === name)!;
  const some = (name: string, f: (s: StepRecord) => boolean) => by(name).steps.some(f);
  for (const name of ['sar', 'eata', 'deyo']) {
    assert.ok(
      some(name, (s) => !s.report),
      `${name}: a step with no reliable sample`,
    );
    assert.ok(
      some(name, (s) => s.report && !s.updated),
      `${name}: a step whose later filter keeps nothing`,
    );
    assert.ok(
      some(name, (s) => s.updated),
      `${name}: an update`,
    );
  }
  const resets = by('sar_reset').steps.map((s) => s.reset);
  const first = resets.indexOf(true);
  assert.ok(
    first >= 0 &&
      by('sar_reset')
        .steps.slice(first + 1)
        .some((s) => s.updated && !s.reset),
    'sar_reset: a reset, then a plain update',
  );
  assert.ok(by('tent').steps.every((s) => s.updated));
  assert.ok(
    by('eata').steps.some((s) => s.hasM && s.updated),
    'eata: an update past the redundancy filter',
  );
});

for (const run of runs) {
  const variants: Variant[] = run.method === 'eata' ? ['fisher', 'fisherImages'] : [undefined];
  for (const variant of variants) {
    const label = variant ? ` (${variant})` : '';
    test(`${run.name}${label}: ${run.steps.length} steps match the PyTorch reference`, async (t) => {
      const worst = await replay(run, variant);
      t.diagnostic(`worst relative error: tensors ${worst.tensor.toExponential(2)}, scalars ${worst.scalar.toExponential(2)}`);
    });
  }
}

test('EATA Fisher estimate matches the reference', async () => {
  const run = runs.find((r) => r.method === 'eata')!;
  const model = vitFromSafetensors(modelBytes, modelConfig);
  const imgs = images(get('eata.fisher_images'));
  try {
    const params = selectNormParams(model, { skipLastBlocks: 0, includeFinalNorm: true });
    const fisher = await estimateFisher(model, params, imgs, run.resolved.fisherBatchSize);
    const scale = Math.max(...run.adapted.map((n) => maxAbs(get(`eata.fisher.${n}`).values)));
    assert.ok(scale > 0, 'reference Fisher is all zero');
    for (const n of run.adapted) {
      const f = fisher.get(n);
      assert.ok(f, `no Fisher for ${n}`);
      const e = maxAbsDiff((await f.data()) as Float32Array, get(`eata.fisher.${n}`).values);
      assert.ok(e <= FISHER_TOL * scale, `Fisher ${n}: max-abs error ${e.toExponential(2)} > ${FISHER_TOL} × ${scale.toExponential(2)}`);
    }
    tf.dispose([...fisher.values()]);
  } finally {
    imgs.dispose();
    model.dispose();
  }
});
