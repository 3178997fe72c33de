// Where a model's files are, resolved once for every loader: the weights,
// the config beside them, and the source statistics beside them.

export const WEIGHTS_FILE = 'model.safetensors';
export const CONFIG_FILE = 'config.json';
/** The source statistics' file name beside a model's weights. */
export const SOURCE_STATS_FILE = 'source-stats.safetensors';

export interface ModelFiles {
  weights: string;
  config: string;
  sourceStats: string;
}

/** A folder URL (model.safetensors and config.json inside) or the URL of a .safetensors file (config.json beside it). */
export function modelFiles(url: string | URL): ModelFiles {
  const text = url.toString();
  const weights = text.endsWith('.safetensors') ? text : `${text.replace(/\/?$/, '/')}${WEIGHTS_FILE}`;
  const folder = weights.replace(/[^/]*$/, '');
  return { weights, config: `${folder}${CONFIG_FILE}`, sourceStats: `${folder}${SOURCE_STATS_FILE}` };
}
