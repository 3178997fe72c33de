// An app's own tfjs and wildtta, sharing one tfjs: wildtta's ES module
// imports @tensorflow/* (its peer dependencies) instead of bundling them.
import * as tf from '@tensorflow/tfjs-core';
import { WildTTA, type CreateOptions } from 'wildtta';

type Check = (api: { create(o: CreateOptions): Promise<WildTTA> }, options: Partial<CreateOptions>, images?: number[][]) => Promise<Record<string, unknown>>;
const w = window as unknown as { wildttaCheck: Check; runCheck: unknown; tf: unknown; pageReady: Promise<void>; ns?: unknown; nsError?: string };

/** The check of check.js through the ES module, plus what this page's own tfjs sees. */
w.runCheck = async (options: Partial<CreateOptions>, images?: number[][], pageBackend?: string) => {
  if (pageBackend !== undefined) await tf.setBackend(pageBackend);
  const result = await w.wildttaCheck(WildTTA, options, images);
  return { ...result, appBackend: tf.engine().backendName ?? null, appBackends: tf.engine().backendNames() };
};

const params = new URLSearchParams(location.search);

// ?snippet=<id>: a block of the docs, written into src/snippets/ by e2e/consumer-app.e2e.ts, run once the page's own things are ready.
const snippet = params.get('snippet');
if (snippet !== null)
  await w.pageReady
    .then(() => import(`./snippets/${snippet}.js`))
    .then(
      (ns: unknown) => (w.ns = ns),
      (e: Error) => (w.nsError = `${e.name}: ${e.message}`),
    );

// Opened as a user would: adapt on 20 frames in a worker and say how it went (?manual: leave it to the caller).
if (!params.has('manual'))
  await w.wildttaCheck(WildTTA, { worker: true }).then(
    (r) => (document.getElementById('status')!.textContent = `${r.steps} steps on ${r.backend}; last: ${r.lastLabel}`),
    (e: Error) => (document.getElementById('status')!.textContent = `${e.name}: ${e.message}`),
  );
