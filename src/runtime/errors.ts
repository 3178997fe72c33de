/** The engine was used out of order (a frame before a model, a method before a model...). */
export class EngineStateError extends Error {
  override readonly name = 'EngineStateError';
}
