// Where 'auto' keeps what it measured: IndexedDB, which a page and its
// workers share per origin. Where there is none (Node, some private modes)
// nothing is kept and every start measures; a failure to read or write is
// never an error, only a measurement more.
import type { BackendName, BackendProbe } from './backend';

export interface RememberedChoice {
  backend: BackendName;
  probes: BackendProbe[];
  /** The day it was measured (YYYY-MM-DD). */
  date: string;
}

const DB = 'wildtta-backend';
const STORE = 'choices';

function open(): Promise<IDBDatabase | undefined> {
  if (typeof indexedDB === 'undefined') return Promise.resolve(undefined);
  return new Promise((resolve) => {
    try {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(undefined);
      req.onblocked = () => resolve(undefined);
    } catch {
      resolve(undefined);
    }
  });
}

async function withStore<T>(mode: IDBTransactionMode, use: (store: IDBObjectStore) => IDBRequest, fallback: T): Promise<T> {
  const db = await open();
  if (db === undefined) return fallback;
  try {
    return await new Promise<T>((resolve) => {
      const req = use(db.transaction(STORE, mode).objectStore(STORE));
      req.onsuccess = () => resolve((req.result as T | undefined) ?? fallback);
      req.onerror = () => resolve(fallback);
    });
  } catch {
    return fallback;
  } finally {
    db.close();
  }
}

export async function recallChoice(key: string): Promise<RememberedChoice | undefined> {
  const v = await withStore<unknown>('readonly', (s) => s.get(key), undefined);
  // Whatever is there was written by some version of us, or by anyone on the origin: check its shape.
  const r = v as RememberedChoice | undefined;
  const ok = r !== undefined && typeof r.backend === 'string' && Array.isArray(r.probes) && typeof r.date === 'string';
  return ok ? r : undefined;
}

export async function rememberChoice(key: string, choice: RememberedChoice): Promise<void> {
  await withStore('readwrite', (s) => s.put(choice, key), undefined);
}

/** Forgets every measurement, so the next 'auto' start measures again. */
export async function forgetChoices(): Promise<void> {
  await withStore('readwrite', (s) => s.clear(), undefined);
}
