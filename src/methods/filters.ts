/** Per sample: entropy strictly below the margin (the reliable-sample filter of SAR, EATA and DeYO). */
export function entropyBelow(entropies: Float32Array, margin: number): boolean[] {
  return Array.from(entropies, (e) => e < margin);
}
