/** Input the adapter refuses before running anything: wrong rank, size, channels, or non-finite pixels. */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
}

/** An exported adaptation state that cannot be imported into this adapter. */
export class StateFormatError extends Error {
  override readonly name = 'StateFormatError';
}
