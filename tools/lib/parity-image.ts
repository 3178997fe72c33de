// The one image every engine of the real-size benchmark classifies to show that
// they compute the same function (bench/sizes.ts, tools/sizes-parity.test.ts);
// tools/sizes_torch.py builds the same. Deterministic and free of any random
// generator, so that Node, the page and Python agree on it bit for bit.

/** NHWC in [0, 1]: pixel i of the flattened image is ((37 i + 11) mod 101) / 100. */
export function parityImage(size: number, channels: number): Float32Array {
  const out = new Float32Array(size * size * channels);
  for (let i = 0; i < out.length; i++) out[i] = ((i * 37 + 11) % 101) / 100;
  return out;
}

/** The same image NCHW (ONNX Runtime's input layout). */
export function toNchw(nhwc: Float32Array, size: number, channels: number): Float32Array {
  const out = new Float32Array(nhwc.length);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) for (let c = 0; c < channels; c++) out[(c * size + y) * size + x] = nhwc[(y * size + x) * channels + c]!;
  return out;
}
