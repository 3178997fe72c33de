// What a model family is to the loader: one entry in families.ts, made with
// defineFamily in the family's own file.
import type { Backbone, BackboneConfig } from './backbone';
import type { ShapeTable } from './config-json';
import type { DecodedTensor } from './safetensors';

export interface Family<C extends BackboneConfig = BackboneConfig> {
  /** Its name, as Backbone.family says it ('vit', 'resnet-gn'…). */
  readonly name: string;
  /** Whether tensors of these names are this family's. */
  detect(names: ReadonlySet<string>): boolean;
  /** The config from the tensor shapes and a config.json (ours, timm's or Hugging Face's); a ModelFormatError names what does not fit. */
  config(shapes: ShapeTable, json: unknown): C;
  /** The model, from finite tensors whose shapes the config was read from. */
  build(config: C, tensors: ReadonlyMap<string, DecodedTensor>): Backbone;
}

/** A family's entry, typed by its config. */
export function defineFamily<C extends BackboneConfig>(family: Family<C>): Family<C> {
  return family;
}
