// The corruption names without the corruptions: no imports, so a page that
// only offers the choice (the engine runs them in its worker) need not load
// tfjs for it. index.ts re-exports these with the corruptions.

/** The 15 test corruptions, in the benchmark's order. */
export const CORRUPTIONS = [
  'gaussian_noise',
  'shot_noise',
  'impulse_noise',
  'defocus_blur',
  'glass_blur',
  'motion_blur',
  'zoom_blur',
  'snow',
  'frost',
  'fog',
  'brightness',
  'contrast',
  'elastic_transform',
  'pixelate',
  'jpeg_compression',
] as const;

/** The 4 held-out corruptions, for choosing hyperparameters only. */
export const EXTRA_CORRUPTIONS = ['speckle_noise', 'gaussian_blur', 'spatter', 'saturate'] as const;

export type TestCorruptionName = (typeof CORRUPTIONS)[number];
export type ExtraCorruptionName = (typeof EXTRA_CORRUPTIONS)[number];
export type CorruptionName = TestCorruptionName | ExtraCorruptionName;

/** All 19, test ones first. */
export const ALL_CORRUPTIONS: readonly CorruptionName[] = [...CORRUPTIONS, ...EXTRA_CORRUPTIONS];
