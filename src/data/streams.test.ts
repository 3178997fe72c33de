import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { labeledImagesFromIdx } from './idx';
import { labelShiftStream, mixedStream, perCorruptionStream, splitPools } from './streams';

const split = labeledImagesFromIdx(
  new Uint8Array(readFileSync('public/data/fashion-mnist/t10k-images-idx3-ubyte')),
  new Uint8Array(readFileSync('public/data/fashion-mnist/t10k-labels-idx1-ubyte')),
);
const labels = split.labels;
const pools = splitPools(labels, 10);
const corruptions = ['gaussian_noise', 'fog', 'jpeg_compression'];

test('the clean pool holds 100 images per class and never meets the evaluation pool', () => {
  assert.equal(pools.clean.length, 1000);
  assert.equal(pools.evaluation.length, 9000);
  const counts = new Array(10).fill(0);
  for (const i of pools.clean) counts[labels[i]!]++;
  assert.deepEqual(counts, new Array(10).fill(100));
  const clean = new Set(pools.clean);
  assert.ok(pools.evaluation.every((i) => !clean.has(i)));
});

test('per-corruption stream: N distinct evaluation images per corruption, one segment each, seeded', () => {
  const o = { corruptions, severity: 5, perCorruption: 500, seed: 3 };
  const s = perCorruptionStream(labels, pools.evaluation, o);
  assert.equal(s.items.length, 1500);
  assert.deepEqual(
    s.segments.map((g) => [g.name, g.start, g.end]),
    [
      ['gaussian_noise', 0, 500],
      ['fog', 500, 1000],
      ['jpeg_compression', 1000, 1500],
    ],
  );
  const clean = new Set(pools.clean);
  for (const g of s.segments) {
    const seg = s.items.slice(g.start, g.end);
    assert.ok(seg.every((it) => it.corruption === g.name && it.severity === 5 && !clean.has(it.index) && it.label === labels[it.index]));
    assert.equal(new Set(seg.map((it) => it.index)).size, 500);
  }
  assert.deepEqual(perCorruptionStream(labels, pools.evaluation, o), s);
  assert.notDeepEqual(perCorruptionStream(labels, pools.evaluation, { ...o, seed: 4 }).items, s.items);
});

test('mixed stream: the same items as the per-corruption stream, interleaved, one segment', () => {
  const o = { corruptions, severity: 5, perCorruption: 300, seed: 1 };
  const per = perCorruptionStream(labels, pools.evaluation, o);
  const mixed = mixedStream(labels, pools.evaluation, o);
  assert.equal(mixed.segments.length, 1);
  const key = (it: { index: number; corruption: string; seed: number }) => `${it.corruption}:${it.index}:${it.seed}`;
  assert.deepEqual(mixed.items.map(key).sort(), per.items.map(key).sort());
  // Interleaved: the first 300 items are not all one corruption.
  assert.ok(new Set(mixed.items.slice(0, 300).map((it) => it.corruption)).size === corruptions.length);
});

test('label shift at the paper ratio: blocks of one class each, every class once per corruption', () => {
  const s = labelShiftStream(labels, pools.evaluation, { corruptions, severity: 5, perCorruption: 1000, seed: 2, numClasses: 10 });
  assert.equal(s.items.length, 3000);
  for (const g of s.segments) {
    const blockClasses: number[] = [];
    for (let b = g.start; b < g.end; b += 100) {
      const counts = new Array(10).fill(0);
      for (const it of s.items.slice(b, b + 100)) counts[it.label]++;
      const top = Math.max(...counts);
      assert.ok(top >= 99, `block at ${b} is only ${top}% one class`);
      blockClasses.push(counts.indexOf(top));
    }
    assert.deepEqual(
      [...blockClasses].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  }
});

test('label shift with ratio 1 is close to balanced within every block', () => {
  const s = labelShiftStream(labels, pools.evaluation, { corruptions: ['fog'], severity: 3, perCorruption: 2000, seed: 5, numClasses: 10, imbalanceRatio: 1 });
  for (let b = 0; b < 2000; b += 200) {
    const counts = new Array(10).fill(0);
    for (const it of s.items.slice(b, b + 200)) counts[it.label]++;
    assert.ok(Math.max(...counts) < 45, `block at ${b}: ${counts}`);
  }
});

test('label shift at a moderate ratio puts the expected share on the block class', () => {
  // ratio 90 with 10 classes: the block class has probability 90/99 ≈ 0.909.
  const s = labelShiftStream(labels, pools.evaluation, { corruptions: ['fog'], severity: 3, perCorruption: 5000, seed: 9, numClasses: 10, imbalanceRatio: 90 });
  let onBlockClass = 0;
  for (let b = 0; b < 5000; b += 500) {
    const counts = new Array(10).fill(0);
    for (const it of s.items.slice(b, b + 500)) counts[it.label]++;
    onBlockClass += Math.max(...counts);
  }
  const share = onBlockClass / 5000;
  assert.ok(Math.abs(share - 90 / 99) < 0.02, `share ${share}`);
});
