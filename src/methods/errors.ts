/** Input the adapter refuses before running anything: wrong rank, size, channels, or non-finite pixels. */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
}

/** An exported adaptation state that cannot be imported into this adapter. */
export class StateFormatError extends Error {
  override readonly name = 'StateFormatError';
}

/**
 * A frame whose outputs (probabilities, entropy) are NaN or infinite: a
 * diverged adapted state or an overflow. The adapted state has gone back to
 * the last one that gave finite outputs (the source model's when none has
 * since the last import or reset) before this is thrown. `cause` says what
 * was not finite.
 */
export class NonFiniteOutputError extends Error {
  override readonly name = 'NonFiniteOutputError';
  constructor(
    message: string,
    /** The step whose outputs were not finite. */
    readonly step: number,
    override readonly cause: string,
  ) {
    super(message);
  }
}
