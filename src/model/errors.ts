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
 * A value as a message shows it. JSON.stringify writes NaN and ±Infinity as
 * null, which hides exactly what a message about a bad number must say.
 */
export function showValue(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return String(v);
  if (Array.isArray(v)) return `[${v.map(showValue).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    try {
      return `{${Object.entries(v)
        .map(([k, x]) => `${k}: ${showValue(x)}`)
        .join(', ')}}`;
    } catch {
      return Object.prototype.toString.call(v);
    }
  }
  return String(v);
}
