// The models of the real-size benchmark (`npm run bench:step -- --sizes ...`,
// bench/sizes.ts) and of its parity test (tools/sizes-parity.test.ts): each
// one a folder wildtta loads, the same network exported to ONNX from the
// PyTorch definition (tools/sizes_torch.py), and that definition's logits on
// the parity image. Generated on demand into a git-ignored cache (.bench-cache/):
// ViT-B/16's weights alone are 346 MB, and the same seed gives the same bytes,
// so nothing here needs to be in git.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { makeTestModel, testModelSpec } from '../../src/model/make-model';
import { resolveViTConfig } from '../../src/model/config';
import { resolveResNetGnConfig } from '../../src/model/resnet-gn';
import { resolveConvNeXtConfig } from '../../src/model/convnext';
import { parseSafetensorsHeader } from '../../src/model/safetensors';
import { REPO_ROOT } from './session';

export const PYTHON = '/usr/bin/python3';
/** Where generated models, ONNX files and reference logits go (git-ignored). */
export const SIZES_CACHE = resolve(REPO_ROOT, '.bench-cache', 'sizes');

export interface SizeEntry {
  /** What the table calls it. */
  label: string;
  family: 'vit' | 'resnet-gn' | 'convnext';
  /** A make-model size (random weights, seed 0), or a folder in the repository. */
  make?: { family: 'vit' | 'resnet-gn' | 'convnext'; size: string };
  folder?: string;
}

/** The keys `--sizes` takes. */
export const SIZES: Record<string, SizeEntry> = {
  tiny: { label: 'ViT tiny (32 px, width 96, depth 4)', family: 'vit', make: { family: 'vit', size: 'tiny' } },
  ti: { label: 'ViT-Ti/16', family: 'vit', make: { family: 'vit', size: 'ti' } },
  s: { label: 'ViT-S/16', family: 'vit', make: { family: 'vit', size: 's' } },
  b: { label: 'ViT-B/16', family: 'vit', make: { family: 'vit', size: 'b' } },
  'rn-tiny': { label: 'GN ResNet tiny (32 px)', family: 'resnet-gn', make: { family: 'resnet-gn', size: 'tiny' } },
  'rn-fmnist': { label: 'GN ResNet, shipped (fmnist-resnet-gn, 28 px)', family: 'resnet-gn', folder: 'public/models/fmnist-resnet-gn' },
  rn50: { label: 'ResNet-50-GN', family: 'resnet-gn', make: { family: 'resnet-gn', size: '50' } },
  'cn-tiny': { label: 'ConvNeXt tiny (32 px)', family: 'convnext', make: { family: 'convnext', size: 'tiny' } },
  'cn-fmnist': { label: 'ConvNeXt, shipped (fmnist-convnext, 28 px)', family: 'convnext', folder: 'public/models/fmnist-convnext' },
  'cn-atto': { label: 'ConvNeXt-Atto', family: 'convnext', make: { family: 'convnext', size: 'atto' } },
};

/** A prepared model: its folder, the architecture as our loader resolves it, the ONNX file and PyTorch's parity logits. */
export interface PreparedModel {
  key: string;
  entry: SizeEntry;
  /** Absolute folder with model.safetensors and config.json. */
  dir: string;
  /** The folder relative to the repository root (its URL path on the dev server). */
  relDir: string;
  spec: Record<string, unknown> & { family: string; imageSize: number; inChannels: number; numClasses: number };
  parameters: number;
  onnx: string;
  /** The ONNX file relative to the repository root. */
  onnxRel: string;
  /** The architecture file tools/sizes_torch.py reads (--spec). */
  specFile: string;
  torchCheck: number[];
}

/** The safetensors header's shapes, read without the data (ViT-B's file is 346 MB). */
function shapesOf(file: string): Map<string, number[]> {
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const prefix = Buffer.alloc(8 + Math.min(n, size - 8));
    readSync(fd, prefix, 0, prefix.length, 0);
    const header = parseSafetensorsHeader(new Uint8Array(prefix.buffer, prefix.byteOffset, prefix.byteLength), size);
    return new Map([...header.tensors].map(([k, e]) => [k, e.shape]));
  } finally {
    closeSync(fd);
  }
}

/** The architecture, resolved by wildtta's own config readers, for tools/sizes_torch.py to build. */
export function resolvedSpec(dir: string, family: SizeEntry['family']): { spec: PreparedModel['spec']; parameters: number } {
  const shapes = shapesOf(join(dir, 'model.safetensors'));
  const json: unknown = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const cfg =
    family === 'vit' ? resolveViTConfig(shapes, json) : family === 'convnext' ? resolveConvNeXtConfig(shapes, json) : resolveResNetGnConfig(shapes, json);
  const { classNames: _names, ...rest } = cfg;
  let parameters = 0;
  for (const s of shapes.values()) parameters += s.reduce((a, b) => a * b, 1);
  return { spec: { family, ...rest }, parameters };
}

/** Runs tools/sizes_torch.py; its one line of JSON, or an Error with its last stderr line. */
export function runTorch(args: string[], timeoutMs = 1_800_000): Record<string, unknown> {
  const r = spawnSync(PYTHON, ['tools/sizes_torch.py', ...args], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 << 20, timeout: timeoutMs });
  if (r.status !== 0)
    throw new Error(`tools/sizes_torch.py ${args.join(' ')} failed: ${(r.stderr || String(r.error)).trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

export function torchAvailable(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return probe.status === 0 ? undefined : 'python3 has no torch (Debian: apt-get install python3-torch)';
}

/**
 * The model of `key`, generated where it is missing: the folder (make-model
 * on the active tfjs backend: call nodeSetup first), spec.json, model.onnx and
 * torch-check.json. `root` is the cache (tests pass a temporary folder).
 */
export async function prepareModel(key: string, root = SIZES_CACHE, log: (s: string) => void = () => undefined): Promise<PreparedModel> {
  const entry = SIZES[key];
  if (entry === undefined) throw new RangeError(`unknown size "${key}": choose from ${Object.keys(SIZES).join(', ')}`);
  const cache = join(root, key);
  mkdirSync(cache, { recursive: true });
  let dir = cache;
  if (entry.folder) dir = resolve(REPO_ROOT, entry.folder);
  else if (!existsSync(join(cache, 'model.safetensors'))) {
    const t0 = Date.now();
    const m = entry.make!;
    testModelSpec(m.family, m.size);
    // One statistics image: the benchmark runs SAR, which never reads them, and at 224 px each costs seconds.
    const { files } = await makeTestModel({ family: m.family, size: m.size, seed: 0, images: 1 });
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(cache, name), bytes);
    log(`${key}: made the random-weight model (seed 0) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const { spec, parameters } = resolvedSpec(dir, entry.family);
  const specFile = join(cache, 'spec.json');
  const onnx = join(cache, 'model.onnx');
  const checkFile = join(cache, 'torch-check.json');
  const specText = `${JSON.stringify(spec)}\n`;
  const stale = !existsSync(specFile) || readFileSync(specFile, 'utf8') !== specText || !existsSync(onnx) || !existsSync(checkFile);
  if (stale) {
    writeFileSync(specFile, specText);
    const t0 = Date.now();
    const out = runTorch(['--model', dir, '--spec', specFile, '--onnx', onnx]);
    writeFileSync(checkFile, `${JSON.stringify(out.check)}\n`);
    log(`${key}: exported ${onnx} from PyTorch ${String(out.torch)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const rel = (p: string) => relative(REPO_ROOT, p);
  return {
    key,
    entry,
    dir,
    relDir: rel(dir),
    spec,
    parameters,
    onnx,
    onnxRel: rel(onnx),
    specFile,
    torchCheck: JSON.parse(readFileSync(checkFile, 'utf8')) as number[],
  };
}

/** max |a − b| over two equal-length lists. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`logits of different lengths: ${a.length} and ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
