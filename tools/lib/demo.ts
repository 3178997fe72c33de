// The demo page seen from Node, for its browser tests (e2e/demo-*.e2e.ts) and
// the tools that drive it (demo-screenshot.ts): its state through
// window.wildttaDemo, and waiting on it.
import type { Page } from 'playwright-core';
import type { FrameRecords } from '../../src/runtime/engine-types';
// The state hook's shape is defined once, by the page.
import type { DemoState } from '../../demo/main';

export type { DemoState };

// Strings, not functions: tsx compiles this file with helpers that do not exist in the page.
export const demoState = (page: Page) => page.evaluate('window.wildttaDemo.state()') as Promise<DemoState>;
export const demoRecords = (page: Page) => page.evaluate('window.wildttaDemo.records()') as Promise<FrameRecords>;
export const demoMemory = (page: Page) => page.evaluate('window.wildttaDemo.memory()') as Promise<{ numTensors: number; numBytes: number }>;
/** [frame, numTensors, pending update (0/1), numBytes] after each step (the last 5,000). */
export const demoTensorTrace = (page: Page) => page.evaluate('window.wildttaDemo.tensorTrace()') as Promise<Array<[number, number, number, number]>>;

/** Waits until `cond` holds for the demo's state, failing with the last state seen. */
export async function waitForDemo(page: Page, what: string, cond: (s: DemoState) => boolean, timeoutMs = 120_000): Promise<DemoState> {
  const deadline = Date.now() + timeoutMs;
  let last: DemoState | undefined;
  for (;;) {
    try {
      last = await demoState(page);
    } catch {
      last = undefined; // the page's script has not run yet
    }
    if (last && cond(last)) return last;
    if (last?.state === 'error') throw new Error(`the demo failed while waiting for ${what}: ${last.message}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last state: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The engine's tensor count with the one tensor an update still queued on the
 * device holds taken out; after a warm-up it must not change at all.
 */
export function settledTensorCounts(trace: Array<[number, number, number, number]>, warmup = 10): number[] {
  return trace.filter(([frame]) => frame >= warmup).map(([, n, pending]) => n - pending);
}
