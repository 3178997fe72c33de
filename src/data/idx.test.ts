// IDX parsing, and the Fashion-MNIST test split shipped in public/data/fashion-mnist.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { DataFormatError, FASHION_MNIST_CLASSES, labeledImagesFromIdx, parseIdx } from './idx';

/** An unsigned-byte IDX file of this shape; data 0, 1, 2, ... unless given. */
function idx(shape: number[], data?: number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(4 + 4 * shape.length + count);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x0800 + shape.length);
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data ?? Array.from({ length: count }, (_, i) => i % 256), 4 + 4 * shape.length);
  return out;
}

function throwsData(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataFormatError, `expected DataFormatError, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

test('parseIdx reads shape and data', () => {
  const parsed = parseIdx(idx([2, 3, 2]));
  assert.deepEqual(parsed.shape, [2, 3, 2]);
  assert.deepEqual([...parsed.data], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  // Dimensions are big-endian 32-bit.
  assert.deepEqual(parseIdx(idx([300])).shape, [300]);
  // Works on a view into a larger buffer.
  const host = new Uint8Array(100);
  const file = idx([4], [9, 8, 7, 6]);
  host.set(file, 7);
  assert.deepEqual([...parseIdx(host.subarray(7, 7 + file.length)).data], [9, 8, 7, 6]);
});

test('parseIdx rejects a wrong magic', () => {
  const intFile = idx([2]);
  intFile[2] = 0x0c; // int32 element type
  throwsData(() => parseIdx(intFile, 'labels file'), /^labels file: not an unsigned-byte IDX file \(magic c01\)$/);
  const nonzero = idx([2]);
  nonzero[0] = 0x1f;
  throwsData(() => parseIdx(nonzero), /not an unsigned-byte IDX file \(magic 1f000801\)/);
  // A gzipped file (not decompressed) is the usual way to get here.
  throwsData(() => parseIdx(new Uint8Array([0x1f, 0x8b, 0x08, 0x08, 0, 0, 0, 0])), /not an unsigned-byte IDX file \(magic 1f8b0808\)/);
  throwsData(() => parseIdx(new Uint8Array([0, 0, 8])), /3 bytes is too short for an IDX header/);
});

test('parseIdx rejects a bad rank and a size mismatch', () => {
  throwsData(() => parseIdx(new Uint8Array([0, 0, 8, 0])), /bad rank 0/);
  throwsData(() => parseIdx(new Uint8Array([0, 0, 8, 3, 0, 0, 0, 1])), /bad rank 3/); // header cut short
  const file = idx([2, 3]);
  throwsData(() => parseIdx(file.subarray(0, file.length - 1)), /shape \[2, 3\] needs 18 bytes, file has 17/);
  const longer = new Uint8Array(file.length + 4);
  longer.set(file);
  throwsData(() => parseIdx(longer), /shape \[2, 3\] needs 18 bytes, file has 22/);
  // A huge declared shape is rejected by arithmetic, nothing allocated.
  const huge = idx([1]);
  new DataView(huge.buffer).setUint32(4, 0xffffffff);
  throwsData(() => parseIdx(huge), /shape \[4294967295\] needs 4294967303 bytes, file has 9/);
});

test('labeledImagesFromIdx pairs images with labels', () => {
  const set = labeledImagesFromIdx(idx([3, 2, 2]), idx([3], [0, 9, 4]));
  assert.deepEqual([set.count, set.height, set.width], [3, 2, 2]);
  assert.deepEqual([...set.labels], [0, 9, 4]);
  throwsData(() => labeledImagesFromIdx(idx([3, 2, 2]), idx([2])), /images \[3, 2, 2\] and labels \[2\] do not pair up/);
  throwsData(() => labeledImagesFromIdx(idx([3, 4]), idx([3])), /images \[3, 4\] and labels \[3\] do not pair up/);
  throwsData(() => labeledImagesFromIdx(idx([3, 2, 2]), idx([3, 1])), /do not pair up/);
});

const SHIPPED = new URL('../../public/data/fashion-mnist/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, SHIPPED)));

test('the shipped Fashion-MNIST test split parses: 10,000 images of 28×28, labels 0..9', () => {
  const images = read('t10k-images-idx3-ubyte');
  const labels = read('t10k-labels-idx1-ubyte');
  assert.deepEqual(parseIdx(images).shape, [10000, 28, 28]);
  assert.deepEqual(parseIdx(labels).shape, [10000]);
  const set = labeledImagesFromIdx(images, labels);
  assert.deepEqual([set.count, set.height, set.width], [10000, 28, 28]);
  assert.equal(set.images.length, 10000 * 28 * 28);
  const counts = new Array<number>(FASHION_MNIST_CLASSES.length).fill(0);
  for (const l of set.labels) {
    assert.ok(l < FASHION_MNIST_CLASSES.length, `label ${l}`);
    counts[l]!++;
  }
  assert.deepEqual(counts, new Array(10).fill(1000), 'the test split is balanced: 1,000 per class');
  // The well-known start of the test labels (ankle boot, pullover, trouser, trouser, shirt, ...).
  assert.deepEqual([...set.labels.subarray(0, 10)], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
  // Real images, not blanks: every image has ink and a background.
  for (let i = 0; i < set.count; i++) {
    const img = set.images.subarray(i * 784, (i + 1) * 784);
    let max = 0;
    let zeros = 0;
    for (const p of img) {
      if (p > max) max = p;
      if (p === 0) zeros++;
    }
    assert.ok(max > 0 && zeros > 0, `image ${i}`);
  }
  const license = readFileSync(new URL('LICENSE', SHIPPED), 'utf8');
  assert.match(license, /Copyright \(c\) 2017 Zalando SE/);
  assert.match(license, /Permission is hereby granted, free of charge/);
});

const DEBIAN = '/usr/share/datasets/fashion-mnist';
test('the shipped files are the Debian package files, decompressed', { skip: !existsSync(DEBIAN) && `${DEBIAN} not installed` }, () => {
  for (const name of ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
    const packaged = new Uint8Array(gunzipSync(readFileSync(`${DEBIAN}/${name}.gz`)));
    assert.ok(Buffer.from(read(name)).equals(Buffer.from(packaged)), name);
  }
});
