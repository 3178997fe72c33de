// gemm.wat over several threads, for tfjs-wasm's threaded build. That build
// spreads XNNPACK's products over its own threads, but gemm.wat runs about
// 1.2× faster per thread, and a frozen weight's product is most of a ViT's
// forward. So the caller's thread and `extra` workers of ours share each
// product's columns, all on tfjs-wasm's shared memory: the threads write
// disjoint columns and read tensors that no one writes meanwhile.
//
// The same workers also run GroupNorm's loops (norm.wat), each thread on its
// own channels: XNNPACK spreads a ResNet's convolutions over its threads,
// and a norm left on one thread would be a larger share of the step on two.
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
import type { Gemm, NormKernels } from './simd';

/** norm.wat's functions a job may run, each ending in its channel range (c0, c1). */
export const NORM_OPS = ['channel_sums', 'gn_apply', 'gn_grad_sums', 'gn_grad_apply'] as const satisfies ReadonlyArray<keyof NormKernels>;
export type NormOp = (typeof NORM_OPS)[number];

// The job: the chunk counter, the chunk count and width, which function
// (GEMM or 1 + an index of NORM_OPS), the extent its chunks cover (C's
// columns, or channels), its arguments but the chunk's range.
const NEXT = 0;
const CHUNKS = 1;
const WIDTH = 2;
const OP = 3;
const TOTAL = 4;
const NARGS = 5;
const ARGS = 6; // gemm's: a, b, bias, c, M, N, K (norm.wat's take up to 7 besides their range)
const GEMM = 0;
// A worker's slot.
const GEN = 0;
const DONE = 1;
const READY = 2;
const ENTER = 3;
const TRAPPED = 4;
const COLUMNS = 5;
const CHANNELS = 6;
const FIELDS = 16; // 64 bytes: no two slots, nor the job, share a cache line

/**
 * Below this many multiply-adds a product stays on the caller's thread: waking
 * a worker costs tens of microseconds, as much as a product of this size.
 */
export const MIN_THREADED_WORK = 1 << 20;

/** The same for norm.wat's loops, in elements of the image: a few microseconds' work. */
export const MIN_THREADED_ELEMENTS = 1 << 15;

/** Chunks per thread: enough that a thread that starts late still gets a share, few enough that claiming costs nothing. */
const CHUNKS_PER_THREAD = 4;

/** How long the caller waits for a worker that entered a job before it gives up with an error. */
const TIMEOUT_MS = 20_000;

// A classic worker script: one message brings the module, the memory and the
// slot; then each job is a wake-up. A trap (a pointer outside the memory) is
// recorded in TRAPPED, which the caller turns into an error.
const WORKER_SOURCE = `'use strict';
onmessage = (e) => {
  const { module, norm, memory, control, slot } = e.data;
  const job = new Int32Array(control, 0, ${FIELDS});
  const s = new Int32Array(control, (slot + 1) * ${FIELDS * 4}, ${FIELDS});
  let gemm;
  let ops = [];
  try {
    gemm = new WebAssembly.Instance(module, { env: { memory } }).exports.gemm;
    if (norm) {
      const k = new WebAssembly.Instance(norm, { env: { memory } }).exports;
      ops = ${JSON.stringify(NORM_OPS)}.map((name) => k[name]);
    }
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
    const chunks = job[${CHUNKS}], width = job[${WIDTH}], op = job[${OP}], total = job[${TOTAL}];
    const args = Array.from(job.subarray(${ARGS}, ${ARGS} + job[${NARGS}]));
    const run = op === ${GEMM} ? null : ops[op - 1];
    try {
      for (let k = Atomics.add(job, ${NEXT}, 1); k < chunks; k = Atomics.add(job, ${NEXT}, 1)) {
        const j0 = k * width, j1 = Math.min(total, j0 + width);
        if (run) {
          run(...args, j0, j1);
          s[${CHANNELS}] += j1 - j0;
        } else {
          gemm(args[0], args[1], args[2], args[3], args[4], total, args[6], j0, j1);
          s[${COLUMNS}] += j1 - j0;
        }
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
  /** Channels of norm.wat's loops the workers have done, as workerColumns. */
  get workerChannels(): number {
    return this.slots.reduce((sum, s) => sum + Atomics.load(s, CHANNELS), 0);
  }

  /**
   * @param gemm gemm.wat instantiated on `memory` for the caller's thread
   * @param module the same module, which each worker instantiates on `memory`
   * @param extra workers besides the caller's thread
   * @param norm norm.wat: the caller's instance on `memory` and its module, which the workers instantiate too
   */
  constructor(
    private readonly gemm: Gemm,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    extra: number,
    private readonly norm: { kernels: NormKernels; module: WebAssembly.Module } | null = null,
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
        if (e.data.failed !== undefined) this.failure = `a gemm worker could not instantiate its modules: ${e.data.failed}`;
      });
      worker.addEventListener('error', (e) => {
        this.failure = `a gemm worker failed: ${e.message || 'its script did not load'}`;
      });
      worker.postMessage({ module, norm: norm?.module ?? null, memory, control, slot });
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

  private started(): Int32Array[] {
    return this.failure === null ? this.slots.filter((s) => Atomics.load(s, READY) === 1) : [];
  }

  /** C = A·B (+ bias) as gemm.wat does it, the columns shared among the started workers and the caller. */
  run(a: number, b: number, bias: number, c: number, M: number, N: number, K: number): void {
    const ready = this.started();
    const panels = N / 8;
    if (ready.length === 0 || M * N * K < MIN_THREADED_WORK || panels < 2) {
      this.gemm(a, b, bias, c, M, N, K, 0, N);
      return;
    }
    const width = 8 * Math.ceil(panels / Math.min(panels, CHUNKS_PER_THREAD * (ready.length + 1)));
    this.share(ready, GEMM, [a, b, bias, c, M, N, K], N, width, (j0, j1) => this.gemm(a, b, bias, c, M, N, K, j0, j1), `a [${M}, ${K}]·[${K}, ${N}] product`);
  }

  /**
   * norm.wat's `op` over the channels [0, C) of one image of P positions,
   * shared like a product's columns (chunks of 16 channels, a cache line,
   * where C allows), or on the caller's thread alone where the image is small.
   */
  spread(op: NormOp, args: number[], P: number, C: number): void {
    const fn = this.norm!.kernels[op] as (...a: number[]) => void;
    const ready = this.started();
    const unit = C % 16 === 0 ? 16 : 4;
    const units = C / unit;
    if (ready.length === 0 || P * C < MIN_THREADED_ELEMENTS || units < 2) {
      fn(...args, 0, C);
      return;
    }
    const width = unit * Math.ceil(units / Math.min(units, CHUNKS_PER_THREAD * (ready.length + 1)));
    this.share(ready, 1 + NORM_OPS.indexOf(op), args, C, width, (c0, c1) => fn(...args, c0, c1), `GroupNorm's ${op} over [${P}, ${C}]`);
  }

  /** Runs a job's chunks on the caller's thread and the `ready` workers, and waits for the workers. */
  private share(ready: Int32Array[], op: number, args: number[], total: number, width: number, own: (j0: number, j1: number) => void, what: string): void {
    const chunks = Math.ceil(total / width);
    this.gen = this.gen >= 0x3fffffff ? 1 : this.gen + 1;
    const gen = this.gen;
    const job = this.job;
    job.set([0, chunks, width, op, total, args.length, ...args]);
    for (const s of ready) {
      Atomics.store(s, ENTER, gen);
      Atomics.store(s, GEN, gen);
      Atomics.notify(s, GEN);
    }
    // The workers are closed out or waited for even when the caller's own chunk traps: the job must not be
    // rewritten while a worker may still read it.
    let mine: unknown = null;
    try {
      for (let k = Atomics.add(job, NEXT, 1); k < chunks; k = Atomics.add(job, NEXT, 1)) own(k * width, Math.min(total, (k + 1) * width));
    } catch (e) {
      mine = e;
      // No more chunks for anyone: the job has failed.
      Atomics.store(job, NEXT, chunks);
    }
    const start = performance.now();
    let trapped = false;
    for (const s of ready) {
      if (Atomics.compareExchange(s, ENTER, gen, 0) === gen) continue; // it had not entered, and now cannot
      let spins = 0;
      while (Atomics.load(s, DONE) !== gen) {
        if (++spins % 4096 === 0 && performance.now() - start > TIMEOUT_MS) {
          this.failure = `a gemm worker did not finish its part within ${TIMEOUT_MS / 1000} s`;
          throw new Error(this.failure);
        }
      }
      trapped ||= Atomics.load(s, TRAPPED) === gen;
    }
    if (mine === null && trapped) mine = new Error(`a gemm worker trapped on ${what} (a pointer outside the memory)`);
    if (mine !== null) throw mine;
  }
}
