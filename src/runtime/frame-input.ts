// A frame as the engine receives it (any size, channels and range; a label,
// a synthetic corruption) checked and made into the model's input tensors:
// the clean frame and, with a corruption, the corrupted one.
import * as tf from '@tensorflow/tfjs-core';
import { corrupt, isCorruptionName, isCorruptionRegime, CORRUPTION_REGIMES } from '../data/corruptions';
import type { BackboneConfig } from '../model/backbone';
import type { CorruptionSpec, FrameInput } from './engine-types';
import { checkFrame, FrameFormatError, preprocessFrame, type PixelFrame } from './preprocess';

export interface PreparedFrame {
  clean: tf.Tensor4D;
  /** What the model sees: the clean frame, or its corrupted copy. */
  input: tf.Tensor4D;
  label: number | null;
  corruption: CorruptionSpec | null;
  dispose(): void;
}

/** Checks everything about `input` before any tensor is made; a FrameFormatError names what is wrong. */
export function prepareFrame(input: FrameInput, cfg: BackboneConfig): PreparedFrame {
  const { imageSize: size, inChannels: ch, numClasses } = cfg;
  const label = input.label ?? null;
  if (label !== null && !(Number.isInteger(label) && label >= 0 && label < numClasses)) {
    throw new FrameFormatError(`label must be an integer class in 0..${numClasses - 1}, got ${String(label)}`);
  }
  const corruption = input.corruption ?? null;
  if (corruption !== null) checkCorruption(corruption);
  const f = input.frame;
  if (f === null || typeof f !== 'object') throw new FrameFormatError('frame is missing');
  checkFrame(f);
  checkRange(f);
  const ready = f.width === size && f.height === size && f.channels === ch && f.maxValue === 1 && !input.invert && (input.cropFraction ?? 1) === 1;
  const pixels = ready
    ? Float32Array.from(f.data)
    : preprocessFrame(f, {
        size,
        channels: ch as 1 | 3,
        ...(input.invert === undefined ? {} : { invert: input.invert }),
        ...(input.cropFraction === undefined ? {} : { cropFraction: input.cropFraction }),
      }).pixels;
  const clean = tf.tensor4d(pixels, [1, size, size, ch]);
  let corrupted: tf.Tensor4D | undefined;
  try {
    if (corruption)
      corrupted = corrupt(clean, corruption.name, corruption.severity, corruption.seed, corruption.regime === undefined ? {} : { regime: corruption.regime });
  } catch (e) {
    clean.dispose();
    throw e;
  }
  return {
    clean,
    input: corrupted ?? clean,
    label,
    corruption,
    dispose: () => {
      corrupted?.dispose();
      clean.dispose();
    },
  };
}

/**
 * Values outside [0, maxValue] (a tensor of 0-255 values given as [0, 1], a
 * normalized image with negative values) would run, silently wrong: refused.
 * Bytes cannot be out of range, so only other arrays are read. A rounding
 * error's worth beyond the ends (1e-4 of the range) passes. NaN and
 * infinities are left to the adapter's check (InvalidInputError), which
 * covers every input.
 */
function checkRange(f: PixelFrame): void {
  const data = f.data;
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return;
  const max = f.maxValue ?? 255;
  if (!(Number.isFinite(max) && max > 0)) throw new FrameFormatError(`frame maxValue must be a positive number, got ${max}`);
  const slack = max * 1e-4;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (Number.isFinite(v) && (v < -slack || v > max + slack)) {
      throw new FrameFormatError(
        `pixel value ${i} is ${v}, outside [0, ${max}]: ${max === 1 ? 'tensors and float frames take values in [0, 1] (divide 0-255 values by 255)' : `this frame's values must be in [0, ${max}]`}`,
      );
    }
  }
}

function checkCorruption(c: CorruptionSpec): void {
  if (!isCorruptionName(c.name)) throw new FrameFormatError(`unknown corruption '${c.name}'`);
  if (!Number.isInteger(c.severity) || c.severity < 1 || c.severity > 5) throw new FrameFormatError(`severity must be 1..5, got ${c.severity}`);
  if (!Number.isFinite(c.seed)) throw new FrameFormatError(`corruption seed must be a finite number, got ${c.seed}`);
  if (c.regime !== undefined && !isCorruptionRegime(c.regime)) {
    throw new FrameFormatError(`unknown corruption regime '${String(c.regime)}' (known: ${CORRUPTION_REGIMES.join(', ')})`);
  }
}
