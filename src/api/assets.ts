// Where the library's other files (the worker bundle and the tfjs WASM
// binaries) are fetched from.
//
// - The ES build (dist/wildtta.js) names each file as
//   `new URL('./file', import.meta.url)`, written out literally by
//   vite.lib.config.ts. That is the pattern app bundlers (Vite, webpack 5,
//   Parcel) recognise: they copy the file into the app's build and rewrite the
//   URL, so an app that installs the package finds them with no setup.
// - The IIFE (dist/wildtta.iife.js) looks beside its own script, which
//   document.currentScript names only while a classic script first runs, so it
//   is read once at load time.
// - `assetsUrl` (a folder) overrides both.

/**
 * File name → URL, from the literal `new URL(...)` expressions of the ES build;
 * undefined in the IIFE, the worker bundle and the sources.
 */
declare const __WILDTTA_ES_ASSETS__: Record<string, string> | undefined;
const ES_ASSETS: Record<string, string> | undefined = typeof __WILDTTA_ES_ASSETS__ === 'undefined' ? undefined : __WILDTTA_ES_ASSETS__;

export const WORKER_FILE = 'wildtta.worker.js';
export const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'] as const;

function scriptUrl(): string | undefined {
  if (typeof document === 'undefined') return undefined;
  const s = document.currentScript as HTMLScriptElement | null;
  return s !== null && typeof s.src === 'string' && s.src !== '' ? s.src : undefined;
}

const SCRIPT_URL = scriptUrl();

export interface LibraryAssets {
  /** The worker bundle's URL. */
  worker: URL;
  /** For tfjs-wasm's setWasmPaths: a folder URL ending in '/', or file name → URL. */
  wasm: string | Record<string, string>;
}

/** The worker's and the WASM binaries' URLs: in `assetsUrl` when given, else where this build put them. */
export function libraryAssets(assetsUrl?: string): LibraryAssets {
  const loc = typeof location !== 'undefined' ? location.href : undefined;
  if (assetsUrl === undefined && ES_ASSETS !== undefined) {
    const wasm: Record<string, string> = {};
    for (const f of WASM_FILES) wasm[f] = new URL(ES_ASSETS[f]!, loc).href;
    return { worker: new URL(ES_ASSETS[WORKER_FILE]!, loc), wasm };
  }
  const base = assetsUrl ?? SCRIPT_URL ?? loc;
  if (base === undefined) throw new TypeError('cannot tell where the wildtta files are served from: pass assetsUrl');
  const abs = new URL(base, loc);
  // A folder as given (with or without the final '/'), or the folder of a script URL.
  const folder = assetsUrl !== undefined && !assetsUrl.endsWith('/') ? new URL(`${abs.href}/`).href : new URL('./', abs).href;
  return { worker: new URL(WORKER_FILE, folder), wasm: folder };
}
