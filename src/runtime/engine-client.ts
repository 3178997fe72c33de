// The page's side of the demo's engine worker: typed calls, load progress
// (EngineConnection in engine-port.ts), a worker started by default, and a
// bounded frame gate for live sources.
import { EngineConnection } from './engine-port';

export { EngineError, EngineClosedError, EngineConnection } from './engine-port';

/** Starts the engine worker shipped with this build. */
export function startEngineWorker(): Worker {
  return new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: 'wildtta-engine' });
}

export class EngineClient extends EngineConnection {
  constructor(worker: Worker = startEngineWorker()) {
    super(worker);
  }
}

/**
 * At most `maxInFlight` frames in flight (default 1) and one waiting: a live
 * source (a camera) that produces frames faster than the engine steps does
 * not build a queue. `offer` while full parks the frame, replacing (and
 * counting as dropped) any frame already parked, so the engine always gets
 * the newest one next. Parked frames can be thunks, so a dropped frame costs
 * no capture work. Two in flight let the engine start the next frame while
 * the page handles the last one's answer, so one slow frame (a GC pause, a
 * chart redraw) is absorbed instead of dropping a camera frame.
 */
export class FrameGate<T> {
  private running = 0;
  private parked: T | undefined;
  /** Frames replaced before they reached the engine. */
  dropped = 0;
  /** Frames handed to the engine. */
  sent = 0;

  /** Called when `run` rejects; the gate goes on with the next frame either way. */
  onError?: (err: unknown) => void;

  constructor(
    private readonly run: (frame: T) => Promise<void>,
    private readonly maxInFlight = 1,
  ) {
    if (!(Number.isInteger(maxInFlight) && maxInFlight >= 1)) throw new RangeError(`maxInFlight must be a whole number ≥ 1, got ${maxInFlight}`);
  }

  get idle(): boolean {
    return this.running === 0;
  }

  /** 'sent' (started now), 'parked' (next in line), or 'replaced' (the parked frame was dropped for this one). */
  offer(frame: T): 'sent' | 'parked' | 'replaced' {
    if (this.running < this.maxInFlight) {
      this.start(frame);
      return 'sent';
    }
    const replaced = this.parked !== undefined;
    if (replaced) this.dropped++;
    this.parked = frame;
    return replaced ? 'replaced' : 'parked';
  }

  /** Forgets the parked frame (when the source stops); it counts as dropped. */
  clear(): void {
    if (this.parked !== undefined) this.dropped++;
    this.parked = undefined;
  }

  private start(frame: T): void {
    this.running++;
    this.sent++;
    void this.run(frame)
      .catch((e: unknown) => this.onError?.(e))
      .finally(() => {
        this.running--;
        const next = this.parked;
        this.parked = undefined;
        if (next !== undefined) this.start(next);
      });
  }
}
