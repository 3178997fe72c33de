import * as tf from '@tensorflow/tfjs-core';
// The four backends register themselves on import. In the ES build these are
// the page's own packages (peer dependencies), so a page that imported one of
// them already has it registered once, not twice.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { gemmThreadsNow, startGemmThreads } from '../kernels';

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';
export type BackendChoice = BackendName | 'auto';

/** The order 'auto' tries: fastest first. */
export const AUTO_ORDER: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

export interface BackendAttempt {
  backend: BackendName;
  ok: boolean;
  /** Why it was skipped (or 'ok'). */
  reason: string;
  /** webgpu, webgl: the GPU behind it, as the browser names it. */
  adapter?: string;
  /** The adapter is a software renderer (SwiftShader, llvmpipe…): it runs on the CPU. */
  software?: boolean;
}

/** One backend's time for a forward of the loaded model, when 'auto' measured them. */
export interface BackendProbe {
  backend: BackendName;
  /** Median of the timed forwards, ms (the first, which compiles, is not among them). */
  ms: number;
  /** The first forward, ms: upload and compile. */
  firstMs: number;
}

export interface BackendReport {
  backend: BackendName;
  attempts: BackendAttempt[];
  /** Why this backend, in a sentence a page can show. */
  why: string;
  /** 'auto': the candidates' measured times, when it measured (this time or an earlier visit that it remembered). */
  probes?: BackendProbe[];
  /** wasm: the threads of tfjs-wasm's pool (1 unless the page is cross-origin isolated and more were asked for). */
  wasmThreads?: number;
  /**
   * wasm: the threads our product kernel for frozen weights runs on (as many
   * as wasmThreads once its workers have started; 0 where it cannot run and
   * tfjs-wasm's own products serve).
   */
  gemmThreads?: number;
}

export class BackendError extends Error {
  // string, not the literal, so that BackendInUseError (api/page-backend.ts) can name itself.
  override readonly name: string = 'BackendError';
  constructor(
    message: string,
    readonly attempts: BackendAttempt[],
  ) {
    super(message);
  }
}

export interface InitBackendOptions {
  /**
   * Where the WASM binaries are served: a folder URL ending in '/', or a map
   * from file name (tfjs-backend-wasm*.wasm) to URL. The browser entry points
   * pass our own build's copies; nothing is loaded from a CDN.
   */
  wasmPaths?: string | Record<string, string>;
  /**
   * wasm: threads for tfjs-wasm's XNNPACK pool (the calling thread counts as
   * one; at most 8, the workers tfjs starts). Threads need a cross-origin
   * isolated page (COOP/COEP headers), where tfjs loads its threaded binary;
   * elsewhere, and in Node, this is ignored. It only takes effect on the first
   * start of the wasm backend in a page (tfjs keeps that instance). Unset:
   * tfjs's own choice, half of navigator.hardwareConcurrency, which on a
   * 2-core machine is one thread.
   */
  wasmThreads?: number;
  /**
   * webgpu: set WEBGPU_FLAGS before the backend is selected (default true).
   * false leaves tfjs's defaults (or whatever the page set).
   */
  tuneWebgpu?: boolean;
}

/**
 * The tfjs WebGPU flags wildtta runs with: command buffers submitted in
 * batches of 64 instead of 15, and no "CPU forwarding" (tfjs otherwise runs an
 * op on the CPU when its inputs sit there, which in a step means uploads in
 * the middle of it). A SAR step is hundreds of small kernels; both cut the
 * overhead per kernel.
 */
export const WEBGPU_FLAGS = { WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: 64, WEBGPU_CPU_FORWARD: false } as const;

/**
 * Sets a tfjs backend: `choice` itself, or for 'auto' the first of WebGPU,
 * WebGL, WASM and CPU that initializes and computes a small test op
 * correctly; the report says which one was chosen and why each earlier one
 * was skipped. 'auto' as the engine runs it surveys every backend first
 * (surveyBackends) and measures the model on them (auto-backend.ts).
 */
export async function initBackend(choice: BackendChoice = 'auto', options: InitBackendOptions = {}): Promise<BackendReport> {
  setPaths(options);
  const candidates = choice === 'auto' ? AUTO_ORDER : [choice];
  const attempts: BackendAttempt[] = [];
  for (const backend of candidates) {
    const attempt = await tryBackend(backend, options);
    attempts.push(attempt);
    if (attempt.ok) return reportFor(backend, attempts, choice === 'auto' ? 'the first backend that works' : 'asked for');
  }
  throw new BackendError(`no usable tfjs backend (${attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')})`, attempts);
}

/** The backend the page's tfjs runs already, if any (ours is the page's in the ES build). */
export function runningBackend(): BackendName | undefined {
  const running = tf.engine().backendName as string | undefined;
  return AUTO_ORDER.find((b) => b === running);
}

/** The report for `backend`, now running; wasm's says its threads. */
export function reportFor(backend: BackendName, attempts: BackendAttempt[], why: string, probes?: BackendProbe[]): BackendReport {
  return {
    backend,
    attempts,
    why,
    ...(probes === undefined ? {} : { probes }),
    ...(backend === 'wasm' ? { wasmThreads: getThreadsCount(), gemmThreads: gemmThreadsNow() } : {}),
  };
}

/**
 * Starts every backend there is (WebGPU, WebGL, WASM; CPU only when none of
 * them works) and says which work and whether a GPU one is a software
 * renderer. The last one started is left selected.
 */
export async function surveyBackends(options: InitBackendOptions = {}): Promise<BackendAttempt[]> {
  setPaths(options);
  const attempts: BackendAttempt[] = [];
  for (const backend of AUTO_ORDER) {
    if (backend === 'cpu' && attempts.some((a) => a.ok)) break;
    attempts.push(await tryBackend(backend, options));
  }
  if (!attempts.some((a) => a.ok)) throw new BackendError(`no usable tfjs backend (${attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')})`, attempts);
  return attempts;
}

function setPaths(options: InitBackendOptions): void {
  // setWasmPaths takes either a prefix or a per-file map; both must be set before the wasm backend starts.
  if (options.wasmPaths !== undefined) setWasmPaths(options.wasmPaths as string);
}

/** Renderers that draw on the CPU: as fast as the wasm backend at best, usually far slower. */
const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render|microsoft warp/i;

/** Names the GPU behind the running webgpu or webgl backend, and whether it is a software renderer. */
async function describeAdapter(name: BackendName): Promise<Pick<BackendAttempt, 'adapter' | 'software'>> {
  try {
    if (name === 'webgpu') {
      const gpu = (globalThis.navigator as unknown as { gpu: { requestAdapter(o: object): Promise<GpuAdapterLike | null> } }).gpu;
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (adapter === null) return {};
      const info = adapter.info ?? {};
      const text = [info.vendor, info.architecture, info.device, info.description].filter((v) => v).join(' ');
      const fallback = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true;
      return { adapter: text || 'unnamed adapter', software: fallback || SOFTWARE.test(text) };
    }
    if (name === 'webgl') {
      const gl = (tf.backend() as unknown as { gpgpu?: { gl?: WebGLRenderingContext } }).gpgpu?.gl;
      if (gl === undefined) return {};
      const ext = gl.getExtension('WEBGL_debug_renderer_info');
      const text = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER) ?? '');
      return { adapter: text || 'unnamed renderer', software: SOFTWARE.test(text) };
    }
  } catch {
    // A browser that will not say: treat it as hardware, and let the measurement decide.
  }
  return {};
}

interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
}

async function tryBackend(backend: BackendName, options: InitBackendOptions): Promise<BackendAttempt> {
  const reason = await startBackend(backend, options);
  if (reason !== 'ok') return { backend, ok: false, reason };
  return { backend, ok: true, reason, ...(await describeAdapter(backend)) };
}

async function startBackend(name: BackendName, options: InitBackendOptions): Promise<string> {
  if (name === 'webgpu' && !(typeof navigator !== 'undefined' && 'gpu' in navigator)) return 'navigator.gpu is not available';
  if (name === 'webgl' && typeof document === 'undefined' && typeof OffscreenCanvas === 'undefined') return 'no canvas to create a WebGL context';
  if (tf.findBackendFactory(name) === null) return 'backend not registered';
  // Flags are read when the backend is created and by its kernels: set them before selecting it, and
  // only when this call creates it (a WebGPU backend the page already runs keeps the page's settings).
  if (name === 'webgpu' && options.tuneWebgpu !== false && tf.engine().registry.webgpu === undefined)
    for (const [flag, value] of Object.entries(WEBGPU_FLAGS)) tf.env().set(flag, value);
  try {
    const ok = name === 'wasm' ? await startWasm(options.wasmThreads) : await tf.setBackend(name);
    if (!ok) return 'failed to initialize';
    await tf.ready();
  } catch (e) {
    return `failed to initialize: ${(e as Error).message}`;
  }
  let verdict: string;
  try {
    verdict = await selfTest();
  } catch (e) {
    return `test op threw: ${(e as Error).message}`;
  }
  // The threaded build's product workers start with the backend (tens of milliseconds), so that the first frames use them.
  if (name === 'wasm' && verdict === 'ok') await startGemmThreads();
  return verdict;
}

/**
 * tf.setBackend('wasm') with `threads` threads where the page allows threads.
 *
 * tfjs-wasm 4.22 (backend.cc, init_with_threads_count) clamps the count given
 * to setThreadsCount to [1, 8] and then to num_cores, which it computes once,
 * when the module starts, as navigator.hardwareConcurrency / 2 (assuming two
 * hyperthreads per core). On a 2-core machine that is 1: setThreadsCount(2)
 * alone still gives one thread. So while the module starts, navigator reports
 * at least 2 × threads logical cores; the real value is restored right after.
 */
async function startWasm(threads: number | undefined): Promise<boolean> {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  if (threads === undefined || !isolated || tf.engine().registry.wasm !== undefined) return tf.setBackend('wasm');
  const n = Math.max(1, Math.floor(threads));
  setThreadsCount(n);
  const nav = globalThis.navigator as Navigator | undefined;
  let shadowed = false;
  if (nav !== undefined && !Object.prototype.hasOwnProperty.call(nav, 'hardwareConcurrency') && (nav.hardwareConcurrency ?? 0) < 2 * n) {
    try {
      Object.defineProperty(nav, 'hardwareConcurrency', { configurable: true, get: () => 2 * n });
      shadowed = true;
    } catch {
      // Not configurable here: tfjs's own cap applies.
    }
  }
  try {
    return await tf.setBackend('wasm');
  } finally {
    if (shadowed) delete (nav as unknown as Record<string, unknown>).hardwareConcurrency;
  }
}

/** A small matMul + softmax + erf against values computed here in JS. */
async function selfTest(): Promise<string> {
  const a = [0.5, -1, 2, 0.25, 1.5, -0.75];
  const b = [1, 2, -1, 0.5, 0.25, -2];
  const out = tf.tidy(() => {
    const m = tf.matMul(tf.tensor2d(a, [2, 3]), tf.tensor2d(b, [3, 2]));
    return tf.concat([tf.reshape(tf.softmax(m), [-1]), tf.reshape(tf.erf(m), [-1])]);
  });
  const got = await out.data();
  out.dispose();
  const m = [0, 0, 0, 0];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) for (let k = 0; k < 3; k++) m[i * 2 + j]! += a[i * 3 + k]! * b[k * 2 + j]!;
  const want: number[] = [];
  for (let i = 0; i < 2; i++) {
    const row = m.slice(2 * i, 2 * i + 2);
    const mx = Math.max(...row);
    const e = row.map((v) => Math.exp(v - mx));
    const s = e[0]! + e[1]!;
    want.push(e[0]! / s, e[1]! / s);
  }
  for (const v of m) want.push(erfApprox(v));
  const worst = Math.max(...want.map((w, i) => Math.abs(w - got[i]!)));
  return Number.isFinite(worst) && worst < 1e-3 ? 'ok' : `test op off by ${worst}`;
}

/** Abramowitz–Stegun 7.1.26 (error < 1.5e-7), plenty for a self test. */
function erfApprox(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}
