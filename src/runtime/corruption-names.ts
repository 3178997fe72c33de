// The corruption names without the corruptions: a page that only offers the
// choice (the engine runs them in its worker) need not load tfjs for it.
// corruption-names.test.ts keeps these lists equal to src/data/corruptions'.

export const TEST_CORRUPTION_NAMES = [
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

export const EXTRA_CORRUPTION_NAMES = ['speckle_noise', 'gaussian_blur', 'spatter', 'saturate'] as const;

export const CORRUPTION_NAMES: readonly string[] = [...TEST_CORRUPTION_NAMES, ...EXTRA_CORRUPTION_NAMES];
