/**
 * Thrown for anything wrong with a model file or its config: a malformed
 * safetensors container, a tensor with the wrong shape, a config that does not
 * describe the weights. `tensor` names the offending tensor when there is one.
 */
export class ModelFormatError extends Error {
  override readonly name = 'ModelFormatError';
  constructor(
    message: string,
    readonly tensor?: string,
  ) {
    super(tensor === undefined ? message : `${tensor}: ${message}`);
  }
}
