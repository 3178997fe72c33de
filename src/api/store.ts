// Adapted states in IndexedDB: one object store, the exported safetensors
// bytes under the caller's key, with what they belong to.
import { StorageError } from './errors';

const DB = 'wildtta';
const STORE = 'states';

export interface SavedState {
  bytes: ArrayBuffer;
  method: string;
  model: string;
  savedAt: number;
}

function open(): Promise<IDBDatabase> {
  if (typeof indexedDB === 'undefined') return Promise.reject(new StorageError('IndexedDB is not available here'));
  return new Promise((ok, fail) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => ok(req.result);
    req.onerror = () => fail(new StorageError(`could not open IndexedDB "${DB}": ${req.error?.message ?? 'unknown error'}`));
  });
}

async function run<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((ok, fail) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      // Resolve on commit, not on the request: a write is only durable then.
      tx.oncomplete = () => ok(req.result);
      tx.onerror = () => fail(new StorageError(`IndexedDB ${mode}: ${tx.error?.message ?? 'unknown error'}`));
      tx.onabort = () => fail(new StorageError(`IndexedDB ${mode} aborted: ${tx.error?.message ?? 'unknown error'}`));
    });
  } finally {
    db.close();
  }
}

export function putState(key: string, state: SavedState): Promise<unknown> {
  return run('readwrite', (s) => s.put(state, key));
}

export async function getState(key: string): Promise<SavedState> {
  const v = (await run('readonly', (s) => s.get(key))) as SavedState | undefined;
  if (v === undefined) throw new StorageError(`no saved state under "${key}"`);
  return v;
}

export function deleteState(key: string): Promise<unknown> {
  return run('readwrite', (s) => s.delete(key));
}
