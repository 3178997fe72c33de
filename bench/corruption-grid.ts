// Picture of every corruption: renders, in headless Chromium, a grid of the 19
// corruptions (15 test, then the 4 validation-only extras) × severities 1..5
// next to the clean image, for (a) a Fashion-MNIST test image (shown ×4,
// nearest-neighbour) and (b) a procedurally drawn landscape (no downloaded
// assets), and screenshots each grid as one PNG: bench/results/corruptions-fmnist.png
// and bench/results/corruptions-scene.png. Prints, per corruption, the time
// taken and the mean |corrupted − clean| at each severity. --regime picks the
// constants: imagenet64 (make_imagenet_64_c.py, the default, as the committed
// PNGs) or cifar (make_cifar_c.py, mild).
//
//   npm run corruptions:grid -- [--regime imagenet64] [--seed 1] [--index 0] [--scale 4] [--scene 96x72] [--scene-scale 1]
//                               [--scene-seed 7] [--backend cpu] [--only fmnist,scene] [--corruptions glass_blur,fog]
//                               [--out bench/results]
//
// The landscape is 96×72 by default so the committed PNG stays under 1.5 MB:
// pixels are shown exactly, and PNG cannot pack noisy or blurred photo-like
// tiles much below 1.3–3 bytes a pixel (224×160 makes a 6 MB grid, 128×96
// 2.3 MB). For a bigger look, e.g. --scene 224x160 --out /tmp/grid.
import { parseArgs } from 'node:util';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { shutdown, withPage } from '../tools/lib/session';
import type { GridOptions, GridResult, GridSource } from './corruption-grid-page';
import { CORRUPTION_REGIMES, DEFAULT_REGIME, isCorruptionRegime } from '../src/data/corruptions/regime';

const { values: args } = parseArgs({
  options: {
    regime: { type: 'string', default: DEFAULT_REGIME },
    seed: { type: 'string', default: '1' },
    index: { type: 'string', default: '0' },
    scale: { type: 'string', default: '4' },
    scene: { type: 'string', default: '96x72' },
    'scene-seed': { type: 'string', default: '7' },
    'scene-scale': { type: 'string', default: '1' },
    backend: { type: 'string', default: 'cpu' },
    out: { type: 'string', default: 'bench/results' },
    only: { type: 'string', default: 'fmnist,scene' },
    corruptions: { type: 'string' },
  },
});

const MAX_BYTES = 1.5 * 1024 * 1024;
const regime = args.regime;
if (!isCorruptionRegime(regime)) throw new Error(`--regime: unknown regime '${regime}' (${CORRUPTION_REGIMES.join(', ')})`);
const [sceneW, sceneH] = args.scene.split('x').map(Number) as [number, number];
const sources: Record<string, GridSource> = {
  fmnist: { kind: 'fmnist', dataUrl: '/data/fashion-mnist/', index: Number(args.index), scale: Number(args.scale) },
  scene: { kind: 'scene', width: sceneW, height: sceneH, sceneSeed: Number(args['scene-seed']), scale: Number(args['scene-scale']) },
};

mkdirSync(args.out, { recursive: true });
const started = performance.now();
try {
  for (const key of args.only.split(',')) {
    const source = sources[key];
    if (source === undefined) throw new Error(`--only: unknown source '${key}' (fmnist, scene)`);
    const png = join(args.out, `corruptions-${key}.png`);
    const t0 = performance.now();
    const result = await withPage(
      async (h) => {
        await h.page.waitForFunction('window.wildttaCorruptionGrid !== undefined', undefined, { timeout: 120_000 });
        const o: GridOptions = {
          backend: args.backend as GridOptions['backend'],
          source,
          seed: Number(args.seed),
          regime,
          ...(args.corruptions ? { names: args.corruptions.split(',') } : {}),
        };
        const r = (await h.page.evaluate(`window.wildttaCorruptionGrid.render(${JSON.stringify(o)})`)) as GridResult;
        await h.page.setViewportSize({ width: r.width, height: r.height });
        await h.page.locator('#grid').screenshot({ path: png });
        if (h.errors.length > 0) throw new Error(`page errors:\n${h.errors.join('\n')}`);
        return r;
      },
      { path: 'bench/corruption-grid.html' },
    );
    const bytes = statSync(png).size;
    console.log(
      `${png}: ${result.width}×${result.height} px, ${(bytes / 1024).toFixed(0)} KiB, ${((performance.now() - t0) / 1000).toFixed(1)} s (${result.backend})`,
    );
    console.log(`  ${result.title}`);
    for (const [name, diffs] of Object.entries(result.meanAbsDiff)) {
      const rising = diffs.every((d, i) => i === 0 || d >= diffs[i - 1]!);
      const bad = result.badValues[name]!;
      console.log(
        `  ${name.padEnd(18)} ${result.ms[name]!.toFixed(0).padStart(6)} ms   mean |Δ| ${diffs.map((d) => d.toFixed(3)).join(' ')}${rising ? '' : '   (not increasing)'}${bad ? `   ${bad} values outside [0, 1]` : ''}`,
      );
    }
    if (bytes > MAX_BYTES) console.warn(`  warning: ${png} is over ${MAX_BYTES / 1024 / 1024} MB; try a smaller --scene`);
  }
} finally {
  await shutdown();
}
console.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
