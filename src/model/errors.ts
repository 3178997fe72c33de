/**
 * Thrown for anything wrong with a model file or its config: a malformed
 * safetensors container, a tensor with the wrong shape, a config that does not
 * describe the weights. `tensor` names the offending tensor when there is one.
 */
export class ModelFormatError extends Error {
  override readonly name = 'ModelFormatError';
  constructor(
    message: string,
    readonly tensor?: string,
  ) {
    super(tensor === undefined ? message : `${tensor}: ${message}`);
  }
}

/**
 * A value as a message shows it: JSON, except that NaN and ±Infinity are
 * written as such. JSON.stringify writes them as null, which hides exactly
 * what a message about a bad number must say.
 */
export function showValue(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'bigint') return `${v}n`;
  let text: string | undefined;
  try {
    text = JSON.stringify(v, (_key, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? `\u0000${x}\u0000` : x));
  } catch {
    text = undefined;
  }
  return text === undefined ? String(v) : text.replace(/"\\u0000(NaN|-?Infinity)\\u0000"/g, '$1');
}
