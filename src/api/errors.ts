// The API's own errors, and the engine's typed errors brought back to their
// classes after crossing the worker boundary (where only name and message
// survive), so `instanceof` works the same with and without `worker: true`.
import { BackendError } from '../runtime/backend';
import { EngineError } from '../runtime/engine-port';
import { EngineStateError } from '../runtime/engine';
import { FrameFormatError } from '../runtime/preprocess';
import { ModelFormatError } from '../model/errors';
import { HubIdError } from '../model/hub';
import { InvalidInputError, StateFormatError } from '../methods/errors';

/** Base class of the errors this API adds. */
export class WildTTAError extends Error {
  override name = 'WildTTAError';
}

/** A call on an instance after dispose(). */
export class DisposedError extends WildTTAError {
  override name = 'DisposedError';
}

/** classify/attach got something that is not an image source it can read. */
export class SourceError extends WildTTAError {
  override name = 'SourceError';
}

/** IndexedDB is unavailable, or holds no state under the key. */
export class StorageError extends WildTTAError {
  override name = 'StorageError';
}

const REVIVE: Record<string, (message: string) => Error> = {
  ModelFormatError: (m) => new ModelFormatError(m),
  InvalidInputError: (m) => new InvalidInputError(m),
  StateFormatError: (m) => new StateFormatError(m),
  FrameFormatError: (m) => new FrameFormatError(m),
  EngineStateError: (m) => new EngineStateError(m),
  BackendError: (m) => new BackendError(m, []),
  RangeError: (m) => new RangeError(m),
  TypeError: (m) => new TypeError(m),
};

/** The engine's error as its own class (EngineError when the name is not one of ours). */
export function revive(e: unknown): unknown {
  if (!(e instanceof EngineError)) return e;
  const make = REVIVE[e.remote.name];
  return make ? make(e.remote.message) : e;
}

export { BackendError, EngineError, EngineStateError, FrameFormatError, ModelFormatError, HubIdError, InvalidInputError, StateFormatError };
export { EngineClosedError } from '../runtime/engine-port';
