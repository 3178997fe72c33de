// Issue 25, item 1: a state is checked like weights are. Each case was found
// by an attacker: a NaN first parameter, a finite 3e38 weight, another
// model's state with the same shapes. None may change the adapted state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ViT } from '../model/vit';
import { readSafetensors, writeSafetensors } from '../model/safetensors';
import { randomViTTensors, tinyConfig } from '../model/random-vit';
import { createAdapter, StateFormatError, type Adapter } from './index';

await tf.setBackend('cpu');

const cfg = tinyConfig();

async function adapted(model: ViT): Promise<Adapter> {
  const a = await createAdapter(model, { method: 'sar', lr: 0.05 });
  for (let i = 0; i < 3; i++) {
    const x = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', i) as tf.Tensor4D;
    await a.step(x);
    x.dispose();
  }
  return a;
}

/** `bytes` with its first parameter's first value replaced, and its metadata edited. */
function tampered(bytes: Uint8Array, value?: number, meta?: (m: Record<string, unknown>) => void): Uint8Array {
  const file = readSafetensors(bytes);
  const entries = [...file.tensors].map(([k, t]): [string, { shape: number[]; values: Float32Array }] => [
    k,
    { shape: [...t.shape], values: t.values.slice() },
  ]);
  if (value !== undefined) entries.find(([k]) => k.startsWith('param.'))![1].values[0] = value;
  const m = JSON.parse(file.metadata['wildtta.state']!) as Record<string, unknown>;
  meta?.(m);
  return writeSafetensors(entries, { 'wildtta.state': JSON.stringify(m) });
}

async function refused(a: Adapter, bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const before = await a.exportState();
  assert.throws(
    () => a.importState(bytes),
    (e: unknown) => e instanceof StateFormatError && pattern.test(e.message),
  );
  assert.deepEqual(await a.exportState(), before, 'a refused state changed the adapted one');
}

test('a state with a NaN, an infinite or a huge (3e38) value is refused, naming the tensor, and changes nothing', async () => {
  const model = new ViT(cfg, randomViTTensors(cfg, 7));
  const a = await adapted(model);
  try {
    const good = await a.exportState();
    await refused(a, tampered(good, NaN), /param\..*value 0 is NaN/);
    await refused(a, tampered(good, -Infinity), /value 0 is -Infinity/);
    await refused(a, tampered(good, 3e38), /value 0 is 3\.0*\d*e\+38/);
    await refused(
      a,
      tampered(good, undefined, (m) => (m.steps = -1)),
      /counter steps/,
    );
    a.importState(good);
  } finally {
    a.dispose();
    model.dispose();
  }
});

test("another model's state with the same shapes is refused, saying what differs", async () => {
  const mine = new ViT(cfg, randomViTTensors(cfg, 7));
  const theirs = new ViT(cfg, randomViTTensors(cfg, 8));
  const a = await adapted(mine);
  const b = await adapted(theirs);
  try {
    const foreign = await b.exportState();
    await refused(a, foreign, /other weights/);
    await refused(
      a,
      tampered(foreign, undefined, (m) => ((m.model as { family: string }).family = 'resnet-gn')),
      /resnet-gn/,
    );
    const ours = await a.exportState();
    await refused(
      a,
      tampered(ours, undefined, (m) => ((m.model as { config: { numClasses: number } }).config.numClasses = 11)),
      /config differs: numClasses is 11 there, 10 here/,
    );
  } finally {
    a.dispose();
    b.dispose();
    mine.dispose();
    theirs.dispose();
  }
});

test('the same weights loaded twice have the same fingerprint, whatever the tensor order', () => {
  const w = randomViTTensors(cfg, 7);
  const one = new ViT(cfg, w);
  const two = new ViT(cfg, new Map([...w].reverse()));
  assert.equal(one.weightsHash, two.weightsHash);
  assert.match(one.weightsHash, /^fnv1a32x2:[0-9a-f]{16}$/);
  one.dispose();
  two.dispose();
});

test('a version 1 state (no fingerprint) is still read, with a warning; its values are still checked', async () => {
  const model = new ViT(cfg, randomViTTensors(cfg, 7));
  const a = await adapted(model);
  const warn = console.warn;
  const warnings: unknown[] = [];
  console.warn = (...args: unknown[]) => warnings.push(args);
  try {
    const old = (m: Record<string, unknown>) => {
      m.version = 1;
      delete m.model;
    };
    const good = await a.exportState();
    a.importState(tampered(good, undefined, old));
    assert.equal(warnings.length, 1);
    await refused(a, tampered(good, NaN, old), /NaN/);
  } finally {
    console.warn = warn;
    a.dispose();
    model.dispose();
  }
});
