// Where this script was loaded from: the worker bundle and the WASM binaries
// are looked up beside it. Read once at load time, because document.currentScript
// is only set while a classic script (the IIFE build) first runs; module
// scripts (the ES build) have import.meta.url instead.
function scriptUrl(): string | undefined {
  if (typeof document !== 'undefined') {
    const s = document.currentScript as HTMLScriptElement | null;
    if (s !== null && typeof s.src === 'string' && s.src !== '') return s.src;
  }
  try {
    const url = import.meta.url;
    return typeof url === 'string' && url !== '' ? url : undefined;
  } catch {
    return undefined;
  }
}

const SCRIPT_URL = scriptUrl();

/** The folder the library's files are served from (ends with '/'), unless the caller names one. */
export function assetsBase(override?: string): string {
  const base = override ?? SCRIPT_URL ?? (typeof location !== 'undefined' ? location.href : undefined);
  if (base === undefined) throw new TypeError('cannot tell where the wildtta files are served from: pass assetsUrl');
  const loc = typeof location !== 'undefined' ? location.href : undefined;
  const abs = new URL(base, loc);
  // A folder as given (ending in '/'), or the folder of a script URL.
  return override !== undefined && !override.endsWith('/') ? new URL(`${abs.href}/`).href : new URL('./', abs).href;
}

export const WORKER_FILE = 'wildtta.worker.js';
