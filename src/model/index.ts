export { ModelFormatError } from './errors';
export { readSafetensors, writeSafetensors, parseSafetensorsHeader } from './safetensors';
export { resolveViTConfig, expectedTensors, type ViTConfig } from './config';
export { ViT, vitLogits, isNormParam } from './vit';
export { loadViT, vitFromSafetensors, CONFIG_METADATA_KEY, type LoadViTOptions, type WeightsSource } from './load';
