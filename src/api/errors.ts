// The API's own errors, and the engine's typed errors brought back to their
// classes after crossing the worker boundary (where only name and message
// survive), so `instanceof` works the same with and without `worker: true`.
import { BackendError } from '../runtime/backend';
import { BackendInUseError } from './page-backend';
import { EngineError } from '../runtime/engine-port';
import { EngineStateError } from '../runtime/engine';
import { FrameFormatError } from '../runtime/preprocess';
import { DownloadError, ModelFormatError } from '../model/errors';
import { HubIdError } from '../model/hub';
import { InvalidInputError, NonFiniteOutputError, StateFormatError } from '../methods/errors';

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

/** The engine worker (worker: true) did not start or did not answer in time; `url` is the script's. */
export class WorkerError extends WildTTAError {
  override name = 'WorkerError';
  constructor(
    message: string,
    readonly url: string,
  ) {
    super(message);
  }
}

const REVIVE: Record<string, (message: string) => Error> = {
  ModelFormatError: (m) => new ModelFormatError(m),
  DownloadError: (m) => new DownloadError(m, '', ''),
  InvalidInputError: (m) => new InvalidInputError(m),
  StateFormatError: (m) => new StateFormatError(m),
  FrameFormatError: (m) => new FrameFormatError(m),
  EngineStateError: (m) => new EngineStateError(m),
  BackendError: (m) => new BackendError(m, []),
  NonFiniteOutputError: (m) => new NonFiniteOutputError(m, -1, ''),
  RangeError: (m) => new RangeError(m),
  TypeError: (m) => new TypeError(m),
};

/**
 * The engine's error as its own class (EngineError when the name is not one
 * of ours), with the fields it carried across (BackendError's attempts...).
 */
export function revive(e: unknown): unknown {
  if (!(e instanceof EngineError)) return e;
  const make = REVIVE[e.remote.name];
  if (!make) return e;
  // Made from the message alone (which has ModelFormatError's tensor in it already), then given the fields.
  return Object.assign(make(e.remote.message), e.remote.detail ?? {});
}

export {
  BackendError,
  BackendInUseError,
  DownloadError,
  EngineError,
  EngineStateError,
  FrameFormatError,
  HubIdError,
  ModelFormatError,
  InvalidInputError,
  NonFiniteOutputError,
  StateFormatError,
};
export { EngineClosedError } from '../runtime/engine-port';
