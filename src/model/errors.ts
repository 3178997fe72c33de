/**
 * Thrown for anything wrong with a model file or its config: a malformed
 * safetensors container, a tensor with the wrong shape, a config that does not
 * describe the weights. `tensor` names the offending tensor when there is one.
 */
export class ModelFormatError extends Error {
  override readonly name: string = 'ModelFormatError';
  constructor(
    message: string,
    readonly tensor?: string,
  ) {
    super(tensor === undefined ? message : `${tensor}: ${message}`);
  }
}

/**
 * A file (the weights, config.json, source statistics) that could not be
 * downloaded: the network failed, the server answered with an HTTP error,
 * or the download stopped part way. `url` is the file's, `cause` what went
 * wrong (the browser's message, or `HTTP <status>`). A ModelFormatError, so
 * code that catches those catches these too.
 */
export class DownloadError extends ModelFormatError {
  override readonly name: string = 'DownloadError';
  constructor(
    message: string,
    readonly url: string,
    override readonly cause: string,
    /** The HTTP status, when the server answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A rejected fetch or read as words: a TypeError's message ("Failed to fetch"), or whatever it was. */
export function failureText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
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
