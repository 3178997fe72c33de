import { test } from 'node:test';
import assert from 'node:assert/strict';
import { centerCrop, FrameFormatError, preprocessFrame, toRGBA } from './preprocess';
import { FrameGate } from './engine-client';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `index ${i}: ${a[i]} vs ${b[i]}`);
};

test('preprocess: a gray byte frame of the model size only scales to [0, 1]', () => {
  const data = Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 7) % 256);
  const r = preprocessFrame({ data, width: 28, height: 28, channels: 1 }, { size: 28, channels: 1 });
  close(
    r.pixels,
    Array.from(data, (v) => v / 255),
  );
  assert.equal(r.inverted, false);
});

test('preprocess: shrinking averages every source pixel under an output pixel (box filter)', () => {
  // 4×4 → 2×2: each output is the mean of a 2×2 block.
  const data = [0, 4, 8, 8, 4, 0, 8, 8, 100, 100, 0, 0, 100, 100, 0, 40];
  const r = preprocessFrame({ data, width: 4, height: 4, channels: 1, maxValue: 100 }, { size: 2, channels: 1 });
  close(r.pixels, [0.02, 0.08, 1, 0.1]);
  // 3 → 2: fractional coverage, weights 2/3 and 1/3.
  const r3 = preprocessFrame({ data: [0, 30, 90, 0, 30, 90, 0, 30, 90], width: 3, height: 3, channels: 1, maxValue: 90 }, { size: 2, channels: 1 });
  close(r3.pixels, [10 / 90, 70 / 90, 10 / 90, 70 / 90], 1e-5);
});

test('preprocess: center square crop of a landscape frame', () => {
  assert.deepEqual(centerCrop(640, 480), { x: 80, y: 0, side: 480 });
  assert.deepEqual(centerCrop(6, 4, 0.5), { x: 2, y: 1, side: 2 });
  // A 6×2 frame whose middle 2×2 is white: only the crop reaches the output.
  const data = [0, 0, 255, 255, 0, 0, 0, 0, 255, 255, 0, 0];
  const r = preprocessFrame({ data, width: 6, height: 2, channels: 1 }, { size: 1, channels: 1 });
  close(r.pixels, [1]);
  assert.deepEqual(r.crop, { x: 2, y: 0, side: 2 });
});

test('preprocess: RGBA to luma, gray to RGB, and upscaling is bilinear', () => {
  const rgba = [255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255, 255, 7];
  const gray = preprocessFrame({ data: rgba, width: 2, height: 2, channels: 4 }, { size: 2, channels: 1 });
  close(gray.pixels, [0.299, 0.587, 0.114, 1], 1e-6);
  const rgb = preprocessFrame({ data: [51, 102], width: 2, height: 1, channels: 1 }, { size: 1, channels: 3, cropFraction: 1 });
  close(rgb.pixels, [0.2, 0.2, 0.2]);
  const up = preprocessFrame({ data: [0, 100, 100, 0], width: 2, height: 2, channels: 1, maxValue: 100 }, { size: 4, channels: 1 });
  // Output pixel centers fall at source x = −0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
  close(up.pixels.slice(0, 4), [0, 0.25, 0.75, 1]);
});

test('preprocess: invert on, off and auto (bright background → inverted)', () => {
  const frame = { data: [255, 255, 255, 255, 0, 255, 255, 255, 255], width: 3, height: 3, channels: 1 as const };
  const auto = preprocessFrame(frame, { size: 3, channels: 1, invert: 'auto' });
  assert.equal(auto.inverted, true);
  assert.equal(auto.pixels[4], 1);
  assert.equal(preprocessFrame(frame, { size: 3, channels: 1, invert: false }).pixels[4], 0);
  const dark = preprocessFrame({ ...frame, data: frame.data.map((v) => 255 - v) }, { size: 3, channels: 1, invert: 'auto' });
  assert.equal(dark.inverted, false);
});

test('preprocess: malformed frames throw FrameFormatError', () => {
  assert.throws(() => preprocessFrame({ data: new Uint8Array(10), width: 4, height: 4, channels: 1 }, { size: 2, channels: 1 }), FrameFormatError);
  assert.throws(() => preprocessFrame({ data: new Uint8Array(0), width: 0, height: 0, channels: 1 }, { size: 2, channels: 1 }), FrameFormatError);
  assert.throws(() => preprocessFrame({ data: new Uint8Array(8), width: 2, height: 2, channels: 2 as 1 }, { size: 2, channels: 1 }), FrameFormatError);
  assert.throws(() => preprocessFrame({ data: new Uint8Array(4), width: 2, height: 2, channels: 1 }, { size: 0, channels: 1 }), RangeError);
});

test('toRGBA: gray and RGB to opaque bytes, non-finite values magenta', () => {
  assert.deepEqual([...toRGBA([0.5, NaN], 2, 1, 1)], [128, 128, 128, 255, 255, 0, 255, 255]);
  assert.deepEqual([...toRGBA([1, 0, 0.2], 1, 1, 3)], [255, 0, 51, 255]);
});

/** A gate whose frames run until released by hand, in order: `ran` lists the frames started. */
function heldGate(maxInFlight?: number): { gate: FrameGate<number>; ran: number[]; releases: Array<() => void> } {
  const ran: number[] = [];
  const releases: Array<() => void> = [];
  const gate = new FrameGate<number>((n) => {
    ran.push(n);
    return new Promise<void>((r) => releases.push(r));
  }, maxInFlight);
  return { gate, ran, releases };
}

test('FrameGate: one frame in flight, the newest one parked, older parked frames dropped and counted', async () => {
  const { gate, ran, releases } = heldGate();
  assert.equal(gate.offer(1), 'sent');
  assert.equal(gate.offer(2), 'parked');
  assert.equal(gate.offer(3), 'replaced');
  assert.equal(gate.offer(4), 'replaced');
  assert.equal(gate.dropped, 2);
  releases.shift()!();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(ran, [1, 4]);
  releases.shift()!();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(gate.idle, true);
  assert.equal(gate.sent, 2);
});

test('FrameGate with two in flight: the second frame starts at once, the third is parked, a fourth replaces it', async () => {
  const { gate, ran, releases } = heldGate(2);
  assert.equal(gate.offer(1), 'sent');
  assert.equal(gate.offer(2), 'sent');
  assert.equal(gate.offer(3), 'parked');
  assert.equal(gate.offer(4), 'replaced');
  assert.equal(gate.dropped, 1);
  assert.deepEqual(ran, [1, 2]);
  releases.shift()!();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(ran, [1, 2, 4]);
  assert.equal(gate.offer(5), 'parked');
  releases.shift()!();
  releases.shift()!();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(ran, [1, 2, 4, 5]);
  releases.shift()!();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(gate.idle, true);
  assert.equal(gate.sent, 4);
  assert.throws(() => new FrameGate<number>(async () => {}, 0), RangeError);
});

test('FrameGate: a failing frame is reported and the gate goes on', async () => {
  const errors: unknown[] = [];
  const ran: number[] = [];
  const gate = new FrameGate<number>(async (n) => {
    ran.push(n);
    if (n === 1) throw new Error('bad frame');
  });
  gate.onError = (e) => errors.push(e);
  gate.offer(1);
  gate.offer(2);
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(ran, [1, 2]);
  assert.equal(errors.length, 1);
  assert.equal(gate.idle, true);
});
