// docs/contributing.md, followed literally: a copy of src/ gets the files the
// page shows (its ```ts file=… blocks) and the lines it says to add (its
// ```ts add=… before="…" blocks: imports after the file's imports, the rest
// before the line named), then a script drives the new method and the new
// family through the library's own entry points. If the page's steps stop
// working, this fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const PAGE = 'docs/contributing.md';

interface Block {
  info: Record<string, string>;
  code: string;
}

/** The page's ```ts blocks with their attributes (file=path, add=path before="line"). */
export function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  for (const m of markdown.matchAll(/^```ts ([^\n]*)\n([\s\S]*?)^```$/gm)) {
    const info: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/(\w+)=(?:"([^"]*)"|(\S+))/g)) info[a[1]!] = a[2] ?? a[3]!;
    out.push({ info, code: m[2]! });
  }
  return out;
}

/** Applies an add= block to a file's text: its import lines after the last import, its other lines before `before`. */
export function addLines(text: string, code: string, before: string): string {
  const lines = text.split('\n');
  const added = code.split('\n').filter((l) => l.trim() !== '');
  const imports = added.filter((l) => l.startsWith('import '));
  const rest = added.filter((l) => !l.startsWith('import '));
  const at = lines.findIndex((l) => l === before);
  assert.ok(at >= 0, `no line "${before}" to add before`);
  lines.splice(at, 0, ...rest);
  let lastImport = -1;
  lines.forEach((l, i) => {
    if (l.startsWith('import ')) lastImport = i;
  });
  lines.splice(lastImport + 1, 0, ...imports);
  return lines.join('\n');
}

// What the script checks, in the copy: the method through createAdapter and the engine's cards, the family through loadBackbone.
const CHECK = `
import * as tf from '@tensorflow/tfjs';
import { createAdapter, METHODS } from './src/methods';
import { Engine } from './src/runtime/engine';
import { loadBackbone } from './src/model/load';
import { writeSafetensors } from './src/model/safetensors';
import { computeSourceStats } from './src/model/source-stats';
import { ViT } from './src/model/vit';
import { randomViTTensors, tinyConfig } from './src/model/random-vit';

await tf.setBackend('cpu');
const out: Record<string, unknown> = {};

// The method, on a random ViT.
const cfg = tinyConfig();
const vit = new ViT(cfg, randomViTTensors(cfg, 1));
const minEnt = await createAdapter(vit, { method: 'min-ent' as never });
// The model prepares its weights for the kernels on its first forward: count from after the first frame.
const frame = (i: number, shape: number[]) => tf.randomUniform([1, ...shape] as [number, number, number, number], 0, 1, 'float32', 10 + i) as tf.Tensor4D;
let before = 0;
let updates = 0;
for (let i = 0; i < 6; i++) {
  const x = frame(i, [28, 28, 1]);
  const r = await minEnt.step(x);
  if (r.update?.updated) updates++;
  x.dispose();
  if (i === 0) {
    if ((await minEnt.flush())?.updated) updates++;
    before = tf.memory().numTensors;
  }
}
if ((await minEnt.flush())?.updated) updates++;
out.method = { label: (METHODS as Record<string, { label: string }>)['min-ent']?.label, lr: minEnt.lr, updates, leaked: tf.memory().numTensors - before };
minEnt.dispose();
out.card = new Engine().methods().find((m) => m.name === ('min-ent' as never)) ?? null;

// The family, from a file of its tensors, adapted by SAR (through autodiff) and given source statistics.
const D = 12;
const tensors: Array<[string, { shape: number[]; values: Float32Array }]> = [];
const add = (name: string, shape: number[], scale = 0.2) =>
  tensors.push([name, { shape, values: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => scale * Math.sin(i * 1.7 + name.length)) }]);
add('embed.weight', [D, 64]);
add('embed.bias', [D]);
for (let i = 0; i < 2; i++) {
  tensors.push([\`blocks.\${i}.norm.weight\`, { shape: [D], values: new Float32Array(D).fill(1) }]);
  add(\`blocks.\${i}.norm.bias\`, [D], 0.01);
  add(\`blocks.\${i}.fc.weight\`, [D, D]);
  add(\`blocks.\${i}.fc.bias\`, [D]);
}
add('head.weight', [3, D]);
add('head.bias', [3]);
const model = await loadBackbone(writeSafetensors(tensors), { config: { class_names: ['a', 'b', 'c'] } });
const normBefore = Array.from(await model.variables.get('blocks.0.norm.bias')!.data());
const sar = await createAdapter(model, { method: 'sar', marginFraction: 10, lr: 0.05 });
for (let i = 0; i < 4; i++) {
  const x = frame(i, [8, 8, 1]);
  await sar.step(x);
  x.dispose();
}
await sar.flush();
const moved = Array.from(await model.variables.get('blocks.0.norm.bias')!.data()).some((v, i) => v !== normBefore[i]);
sar.dispose();
const stats = await computeSourceStats(model, tf.randomUniform([20, 8, 8, 1], 0, 1, 'float32', 3) as tf.Tensor4D);
out.family = { family: model.family, classNames: model.config.classNames, adapts: [...sar.params.keys()], moved, statsCount: stats.count };
console.log(JSON.stringify(out));
`;

test(`${PAGE}: a method and a family added as the page says work through the library's entry points`, () => {
  const page = readFileSync(join(ROOT, PAGE), 'utf8');
  const all = blocks(page);
  const files = all.filter((b) => b.info.file);
  const adds = all.filter((b) => b.info.add);
  assert.deepEqual(
    files.map((b) => b.info.file),
    ['src/methods/min-ent.ts', 'src/model/toy-mlp.ts'],
    'the page shows the two files',
  );
  assert.deepEqual(
    adds.map((b) => b.info.add),
    ['src/methods/registry.ts', 'src/model/families.ts'],
    'and the lines to add to the two registries',
  );
  mkdirSync(join(ROOT, 'test-results'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, 'test-results', 'contributing-'));
  try {
    cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
    for (const b of files) {
      mkdirSync(dirname(join(dir, b.info.file!)), { recursive: true });
      writeFileSync(join(dir, b.info.file!), b.code);
    }
    for (const b of adds) {
      const path = join(dir, b.info.add!);
      writeFileSync(path, addLines(readFileSync(path, 'utf8'), b.code, b.info.before!));
    }
    writeFileSync(join(dir, 'check.ts'), CHECK);
    const tsc = (args: string[]) => {
      try {
        execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), args, { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
      } catch (e) {
        assert.fail(`the page's files do not type-check:\n${(e as { stdout?: string }).stdout ?? e}`);
      }
    };
    // The copy type-checks as the repository does (its tsconfig, strict), then runs.
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ extends: join(ROOT, 'tsconfig.json'), include: ['src', 'check.ts'], exclude: ['src/**/*.test.ts'] }),
    );
    tsc(['-p', join(dir, 'tsconfig.json')]);
    const result = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', 'check.ts'], { cwd: dir, encoding: 'utf8' }).trim().split('\n').at(-1)!) as {
      method: { label: string; lr: number; updates: number; leaked: number };
      card: { name: string; label: string; lr: number } | null;
      family: { family: string; classNames: string[]; adapts: string[]; moved: boolean; statsCount: number };
    };
    assert.deepEqual(
      result.method,
      { label: 'entropy minimization', lr: 1e-4, updates: 6, leaked: 0 },
      'the method is registered, updates on every frame and leaks nothing',
    );
    assert.equal(result.card?.label, 'entropy minimization', 'the engine offers it');
    assert.equal(result.family.family, 'toy-mlp');
    assert.deepEqual(result.family.classNames, ['a', 'b', 'c']);
    assert.deepEqual(
      result.family.adapts,
      ['blocks.0.norm.weight', 'blocks.0.norm.bias', 'blocks.1.norm.weight', 'blocks.1.norm.bias'],
      'SAR adapts its norms',
    );
    assert.equal(result.family.moved, true, 'the norms moved');
    assert.equal(result.family.statsCount, 20);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
