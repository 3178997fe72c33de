// gemm.wat over several threads, for tfjs-wasm's threaded build. That build
// spreads XNNPACK's products over its own threads, but gemm.wat runs about
// 1.2× faster per thread, and a frozen weight's product is most of a ViT's
// forward. So the caller's thread and `extra` workers of ours share each
// product's columns, all on tfjs-wasm's shared memory: the threads write
// disjoint columns and read tensors that no one writes meanwhile.
//
// A job is its arguments and a counter of column chunks in a
// SharedArrayBuffer; every thread claims chunks from the counter until none
// is left, so a worker that wakes late takes fewer, and a late one never
// holds the caller up. Each worker has a slot: the caller opens the job for
// it (ENTER = the job's number), bumps its GEN and wakes it. The worker
// enters by swapping ENTER to minus the number; the caller, once all chunks
// are claimed, closes the job by swapping ENTER from the number to 0, which
// fails only for a worker that entered, and then waits for that worker's
// DONE. So the caller rewrites the job only when no worker is inside it or
// can still enter it, and no worker reads arguments half written. A worker
// waits with Atomics.wait; the caller, which may be a page's main thread
// where waiting is not allowed, polls.
//
// The workers are made from a Blob, as tfjs-wasm's threaded build makes its
// own, so a page that runs that build needs nothing more. Until they have
// started, and wherever they cannot (no Worker, a policy that refuses them),
// `ready` is false and the caller's thread computes everything.
//
// A worker sleeps between jobs. Polling for the next one for 2 ms instead
// made back-to-back products faster but whole SAR steps slower on the 2-core
// machine (0.93× XNNPACK's time against 0.87×): the poller takes the core
// that tfjs-wasm's own threads need for attention's products.
import type { Gemm } from './simd';

// The job: the chunk counter, the chunk count and width, gemm.wat's arguments.
const NEXT = 0;
const CHUNKS = 1;
const WIDTH = 2;
const ARGS = 3; // a, b, bias, c, M, N, K
// A worker's slot.
const GEN = 0;
const DONE = 1;
const READY = 2;
const ENTER = 3;
const TRAPPED = 4;
const COLUMNS = 5;
const FIELDS = 16; // 64 bytes: no two slots, nor the job, share a cache line

/**
 * Below this many multiply-adds a product stays on the caller's thread: waking
 * a worker costs tens of microseconds, as much as a product of this size.
 */
export const MIN_THREADED_WORK = 1 << 20;

/** Chunks per thread: enough that a thread that starts late still gets a share, few enough that claiming costs nothing. */
const CHUNKS_PER_THREAD = 4;

/** How long the caller waits for a worker that entered a job before it gives up with an error. */
const TIMEOUT_MS = 20_000;

// A classic worker script: one message brings the module, the memory and the
// slot; then each job is a wake-up. A trap (a pointer outside the memory) is
// recorded in TRAPPED, which the caller turns into an error.
const WORKER_SOURCE = `'use strict';
onmessage = (e) => {
  const { module, memory, control, slot } = e.data;
  const job = new Int32Array(control, 0, ${FIELDS});
  const s = new Int32Array(control, (slot + 1) * ${FIELDS * 4}, ${FIELDS});
  let gemm;
  try {
    gemm = new WebAssembly.Instance(module, { env: { memory } }).exports.gemm;
  } catch (err) {
    postMessage({ failed: String(err) });
    return;
  }
  onmessage = null;
  Atomics.store(s, ${READY}, 1);
  postMessage({ ready: true });
  let seen = 0;
  for (;;) {
    Atomics.wait(s, ${GEN}, seen);
    seen = Atomics.load(s, ${GEN});
    if (Atomics.compareExchange(s, ${ENTER}, seen, -seen) !== seen) continue;
    const chunks = job[${CHUNKS}], width = job[${WIDTH}], N = job[${ARGS + 5}];
    try {
      for (let k = Atomics.add(job, ${NEXT}, 1); k < chunks; k = Atomics.add(job, ${NEXT}, 1)) {
        const j0 = k * width, j1 = Math.min(N, j0 + width);
        gemm(job[${ARGS}], job[${ARGS + 1}], job[${ARGS + 2}], job[${ARGS + 3}], job[${ARGS + 4}], N, job[${ARGS + 6}], j0, j1);
        s[${COLUMNS}] += j1 - j0;
      }
    } catch {
      Atomics.store(s, ${TRAPPED}, seen);
    }
    Atomics.store(s, ${DONE}, seen);
  }
};`;

/** A worker running WORKER_SOURCE. */
function spawnWorker(name: string): Worker {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  const worker = new Worker(url, { name });
  // Revoked once the worker has answered, when its script has surely been read.
  worker.addEventListener('message', () => URL.revokeObjectURL(url), { once: true });
  return worker;
}

export class GemmPool {
  private readonly job: Int32Array;
  private readonly slots: Int32Array[] = [];
  private gen = 0;
  private failure: string | null = null;
  /** Columns the workers have computed (the caller's own are not counted): tests read it to see the work was shared. */
  get workerColumns(): number {
    return this.slots.reduce((sum, s) => sum + Atomics.load(s, COLUMNS), 0);
  }

  /**
   * @param gemm gemm.wat instantiated on `memory` for the caller's thread
   * @param module the same module, which each worker instantiates on `memory`
   * @param extra workers besides the caller's thread
   */
  constructor(
    private readonly gemm: Gemm,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    extra: number,
  ) {
    this.job = new Int32Array(new SharedArrayBuffer((extra + 1) * FIELDS * 4));
    const control = this.job.buffer as SharedArrayBuffer;
    for (let slot = 0; slot < extra; slot++) {
      let worker: Worker;
      try {
        worker = spawnWorker(`wildtta-gemm-${slot + 1}`);
      } catch (e) {
        this.failure = `a gemm worker could not be made: ${(e as Error).message}`;
        break;
      }
      worker.addEventListener('message', (e: MessageEvent<{ failed?: string }>) => {
        if (e.data.failed !== undefined) this.failure = `a gemm worker could not instantiate gemm.wat: ${e.data.failed}`;
      });
      worker.addEventListener('error', (e) => {
        this.failure = `a gemm worker failed: ${e.message || 'its script did not load'}`;
      });
      worker.postMessage({ module, memory, control, slot });
      this.slots.push(new Int32Array(control, (slot + 1) * FIELDS * 4, FIELDS));
    }
  }

  /** Threads a product may use now: the caller's and each worker that has started. */
  get threads(): number {
    return 1 + this.slots.filter((s) => Atomics.load(s, READY) === 1).length;
  }

  /** Whether every worker asked for has started (and none has failed). */
  get ready(): boolean {
    return this.failure === null && this.slots.length > 0 && this.threads === 1 + this.slots.length;
  }

  /** Why the workers are not running, where they are not. */
  get problem(): string | null {
    return this.failure;
  }

  /** C = A·B (+ bias) as gemm.wat does it, the columns shared among the started workers and the caller. */
  run(a: number, b: number, bias: number, c: number, M: number, N: number, K: number): void {
    const ready = this.failure === null ? this.slots.filter((s) => Atomics.load(s, READY) === 1) : [];
    const panels = N / 8;
    if (ready.length === 0 || M * N * K < MIN_THREADED_WORK || panels < 2) {
      this.gemm(a, b, bias, c, M, N, K, 0, N);
      return;
    }
    const width = 8 * Math.ceil(panels / Math.min(panels, CHUNKS_PER_THREAD * (ready.length + 1)));
    const chunks = Math.ceil(N / width);
    this.gen = this.gen >= 0x3fffffff ? 1 : this.gen + 1;
    const gen = this.gen;
    const job = this.job;
    job.set([0, chunks, width, a, b, bias, c, M, N, K]);
    for (const s of ready) {
      Atomics.store(s, ENTER, gen);
      Atomics.store(s, GEN, gen);
      Atomics.notify(s, GEN);
    }
    // The workers are closed out or waited for even when the caller's own chunk traps: the job must not be
    // rewritten while a worker may still read it.
    let own: unknown = null;
    try {
      for (let k = Atomics.add(job, NEXT, 1); k < chunks; k = Atomics.add(job, NEXT, 1))
        this.gemm(a, b, bias, c, M, N, K, k * width, Math.min(N, (k + 1) * width));
    } catch (e) {
      own = e;
      // No more chunks for anyone: the product has failed.
      Atomics.store(job, NEXT, chunks);
    }
    const start = performance.now();
    let trapped = false;
    for (const s of ready) {
      if (Atomics.compareExchange(s, ENTER, gen, 0) === gen) continue; // it had not entered, and now cannot
      let spins = 0;
      while (Atomics.load(s, DONE) !== gen) {
        if (++spins % 4096 === 0 && performance.now() - start > TIMEOUT_MS) {
          this.failure = `a gemm worker did not finish its columns within ${TIMEOUT_MS / 1000} s`;
          throw new Error(this.failure);
        }
      }
      trapped ||= Atomics.load(s, TRAPPED) === gen;
    }
    if (own === null && trapped) own = new Error(`a gemm worker trapped on a [${M}, ${K}]·[${K}, ${N}] product (a pointer outside the memory)`);
    if (own !== null) throw own;
  }
}
