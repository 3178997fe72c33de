// Surviving a lost GPU device (a driver reset, a GPU taken away): the
// adapted state is copied to CPU memory every few steps; when the device is
// lost the backend is started again (the same one, else the next in the auto
// order) and the engine rebuilds the model, the method and that state on it.
// A step the device died under is run once more on the rebuilt engine.
import * as tf from '@tensorflow/tfjs-core';
import { AUTO_ORDER, initBackend, type BackendName, type BackendReport } from './backend';
import type { EngineEvent } from './engine-types';
import { EngineStateError } from './errors';

/** The part of a GPUDevice the engine uses (the project builds without the WebGPU type package). */
interface GpuDeviceLike {
  readonly lost: Promise<LossInfo>;
  destroy(): void;
}

interface LossInfo {
  reason: string;
  message: string;
}

/** Steps between CPU copies of the adapted state on WebGPU. */
export const DEFAULT_SNAPSHOT_EVERY = 20;

/** The adapted state as of step `step`, in CPU memory. */
export interface Snapshot {
  bytes: Uint8Array;
  step: number;
}

export interface RecoveryHooks {
  emit(e: EngineEvent): void;
  /** Lets go of everything on the dead device (its memory went with it). */
  drop(): void;
  /** Rebuilds the model and the method on the backend now running, with the snapshot's state when there is one. */
  restore(backend: BackendReport, snapshot: Snapshot | undefined): Promise<void>;
  /** Where the wasm binaries are, for a fallback to wasm. */
  wasmPaths(): string | Record<string, string> | undefined;
}

export class DeviceRecovery {
  private device: GpuDeviceLike | undefined;
  private recovery: Promise<void> | undefined;
  private broken: Error | undefined;
  private snapshot: Snapshot | undefined;
  private stepsSinceSnapshot = 0;

  constructor(private readonly hooks: RecoveryHooks) {}

  /** Whether a device is watched (webgpu): only then are snapshots worth their read. */
  get watching(): boolean {
    return this.device !== undefined;
  }

  /** Watches the device of the backend now running (webgpu; nothing elsewhere). */
  watch(backend: BackendName): void {
    this.device = undefined;
    if (backend !== 'webgpu') return;
    const device = (tf.backend() as unknown as { device?: GpuDeviceLike }).device;
    if (device === undefined) return;
    this.device = device;
    void device.lost.then((info) => this.start(device, info)).catch(() => undefined);
  }

  /** Resolves when no recovery is running; throws if the last one failed. */
  async whenReady(): Promise<void> {
    if (this.recovery) await this.recovery.catch(() => undefined);
    if (this.broken) throw this.broken;
  }

  /** `fn`, run once more on the rebuilt engine when the device died under it; any other error is the caller's. */
  async retrying<T>(fn: () => Promise<T>): Promise<T> {
    const device = this.device;
    try {
      return await fn();
    } catch (e) {
      const lost = await lostWithin(device, 250);
      if (lost === undefined) throw e;
      await this.start(device, lost);
      await this.whenReady();
      return fn();
    }
  }

  /** Counts a step; true when a snapshot is due (`every` steps since the last, on a watched device). */
  stepDone(every: number): boolean {
    return this.watching && every > 0 && ++this.stepsSinceSnapshot >= every;
  }

  /** Keeps a copy of `bytes` (the caller may transfer them away) as the state to rebuild with. */
  keep(bytes: Uint8Array, step: number): void {
    if (!this.watching) return;
    this.snapshot = { bytes: bytes.slice(), step };
    this.stepsSinceSnapshot = 0;
  }

  /** A new method's state starts from scratch. */
  forgetSnapshot(): void {
    this.snapshot = undefined;
    this.stepsSinceSnapshot = 0;
  }

  /** Test hook: destroys the device, as a GPU reset would. */
  loseDevice(running: string): void {
    if (this.device === undefined) throw new EngineStateError(`simulateDeviceLoss needs the webgpu backend (running ${running})`);
    this.device.destroy();
  }

  /** Stops watching: a loss after this is not ours to repair. */
  close(): void {
    this.device = undefined;
    this.snapshot = undefined;
  }

  private start(device: GpuDeviceLike | undefined, info: LossInfo): Promise<void> {
    if (device === undefined || device !== this.device) return this.recovery ?? Promise.resolve();
    this.device = undefined;
    this.recovery ??= this.recover(info).finally(() => {
      this.recovery = undefined;
    });
    return this.recovery;
  }

  /**
   * A fresh backend instance (the same backend when it starts again, else
   * the next in the auto order), then the engine's rebuild on it.
   */
  private async recover(info: LossInfo): Promise<void> {
    const t0 = performance.now();
    const previous = tf.getBackend() as BackendName;
    this.hooks.emit({ type: 'deviceLost', backend: previous, reason: info.reason, message: info.message });
    const snap = this.snapshot;
    const lostSteps = this.stepsSinceSnapshot;
    try {
      try {
        this.hooks.drop();
      } catch {
        // Tensors on a dead device: their memory went with it.
      }
      // tfjs keeps one backend instance per name, bound to its device; only a re-registered factory makes a new one.
      const factory = tf.findBackendFactory(previous);
      if (factory !== null) {
        tf.removeBackend(previous);
        tf.registerBackend(previous, factory, previous === 'webgpu' ? 3 : 2);
      }
      const wasmPaths = this.hooks.wasmPaths();
      const attempts: BackendReport['attempts'] = [];
      let report: BackendReport | undefined;
      for (const b of [previous, ...AUTO_ORDER.slice(AUTO_ORDER.indexOf(previous) + 1)]) {
        try {
          report = await initBackend(b, wasmPaths === undefined ? {} : { wasmPaths });
          attempts.push(...report.attempts);
          break;
        } catch (e) {
          attempts.push({ backend: b, ok: false, reason: (e as Error).message });
        }
      }
      if (report === undefined)
        throw new EngineStateError(`no backend could be started after the device was lost (${attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')})`);
      const why =
        report.backend === previous ? `${previous} restarted after its device was lost` : `the next backend that works after ${previous} lost its device`;
      const backend = { ...report, attempts, why };
      this.watch(backend.backend);
      await this.hooks.restore(backend, snap);
      this.snapshot = snap;
      this.stepsSinceSnapshot = 0;
      this.hooks.emit({
        type: 'recovered',
        backend: report.backend,
        previousBackend: previous,
        restoredStep: snap?.step ?? null,
        lostSteps,
        ms: performance.now() - t0,
      });
    } catch (e) {
      this.broken = e instanceof Error ? e : new Error(String(e));
      this.hooks.emit({ type: 'recoveryFailed', message: this.broken.message });
      throw this.broken;
    }
  }
}

/** The device's loss info if it is lost, or becomes lost within `ms`; undefined otherwise (or without a device). */
async function lostWithin(device: GpuDeviceLike | undefined, ms: number): Promise<LossInfo | undefined> {
  if (device === undefined) return undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((ok) => {
    timer = setTimeout(() => ok(undefined), ms);
  });
  try {
    return await Promise.race([device.lost, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
