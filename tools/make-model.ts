// Writes a random-weight model folder in timm's layout (model.safetensors,
// config.json, source-stats.safetensors) for trying the loader, the
// benchmark and the docs' examples without PyTorch (src/model/make-model.ts).
//
//   npm run make-model -- --family vit --size tiny --out models/test-vit [--seed 0] [--images N] [--backend wasm]
//
// Families and sizes: vit tiny|ti|s|b (ti, s, b: timm's ViT-Ti/16, ViT-S/16,
// ViT-B/16 at 224 px, 1,000 classes), resnet-gn tiny|50 (50: timm's
// resnet50_gn), convnext tiny|atto (atto: timm's convnext_atto). The same
// arguments write the same bytes.
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeSetup } from './lib/node-env';
import { defaultImages, makeTestModel, TEST_MODEL_SIZES } from '../src/model/make-model';

const USAGE = `usage: npm run make-model -- --family ${Object.keys(TEST_MODEL_SIZES).join('|')} --size SIZE --out FOLDER [--seed N] [--images N] [--backend wasm|cpu]
sizes: ${Object.entries(TEST_MODEL_SIZES)
  .map(([f, s]) => `${f} ${s.join('|')}`)
  .join('; ')}`;

/** An integer argument, or a message naming the flag. */
function integer(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new RangeError(`--${flag} must be a non-negative integer, got "${text}"`);
  return Number(text);
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      family: { type: 'string' },
      size: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string', default: '0' },
      images: { type: 'string' },
      backend: { type: 'string', default: 'wasm' },
    },
  });
  if (a.family === undefined || a.size === undefined || a.out === undefined) throw new RangeError('--family, --size and --out are required');
  const seed = integer('seed', a.seed);
  const images = a.images === undefined ? undefined : integer('images', a.images);
  const t0 = performance.now();
  await nodeSetup(a.backend);
  const { spec, files } = await makeTestModel({ family: a.family, size: a.size, seed, images });
  mkdirSync(a.out, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(a.out, name), bytes);
  const size = (n: number) => (n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`);
  const sizes = Object.entries(files).map(([name, bytes]) => `${name} ${size(bytes.byteLength)}`);
  console.log(
    `wrote ${a.out}: ${spec.architecture} (${spec.description}), ${spec.parameters.toLocaleString('en-US')} parameters, seed ${seed}; ` +
      `${sizes.join(', ')}; statistics from ${images ?? defaultImages(spec)} synthetic images on ${tf.getBackend()}; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

main().catch((e: unknown) => {
  // A bad argument says what is wrong and how to call it, without a stack.
  const known = e instanceof RangeError || (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'));
  console.error(known ? `make-model: ${(e as Error).message}\n${USAGE}` : e);
  process.exit(known ? 2 : 1);
});
