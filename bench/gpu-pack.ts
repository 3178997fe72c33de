// `npm run bench:gpu:pack`: bench:gpu as one folder that runs on a Linux
// x86-64 machine with a GPU and no registry access: the bundled script,
// Dawn's addon and a Node binary (both xz-compressed; run.sh unpacks the
// Node binary only when no Node ≥ 20 is on PATH), tfjs-wasm's binaries for
// the parity check, the shipped models, the PyTorch script, and run.sh.
//
//   npm run bench:gpu:pack -- [--out artifacts/gpu-bench]
//   artifacts/gpu-bench/run.sh --sizes fmnist-vit,ti,s,b --steps 20
import { TORCH_SCRIPTS } from '../tools/lib/torch-scripts';
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** The most the folder may weigh (the transfer limit of the machines it is for). */
export const PACK_LIMIT_BYTES = 64 * 2 ** 20;

const { values: args } = parseArgs({ options: { out: { type: 'string', default: 'artifacts/gpu-bench' } } });
const out = resolve(args.out);
const MODELS = ['fmnist-vit', 'fmnist-resnet-gn'];
const FILES = ['model.safetensors', 'config.json', 'source-stats.safetensors'];

/**
 * `src` xz-compressed to `dest`, unless `dest` is already that (a stamp of
 * the source's size and mtime beside it): compressing Node's ~100 MB takes a
 * minute on two cores, and it changes only with Node.
 */
function xz(src: string, dest: string): void {
  const s = statSync(src);
  const stamp = `${s.size} ${s.mtimeMs}`;
  if (existsSync(dest) && existsSync(`${dest}.stamp`) && readFileSync(`${dest}.stamp`, 'utf8') === stamp) return;
  const r = spawnSync('sh', ['-c', `xz -T0 -6 -c "$1" > "$2"`, 'xz', src, dest], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`xz ${src} failed (Debian package xz-utils)`);
  writeFileSync(`${dest}.stamp`, stamp);
}

function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? folderBytes(p) : e.name.endsWith('.stamp') ? 0 : statSync(p).size;
  }
  return n;
}

mkdirSync(out, { recursive: true });
// Everything but the cached compressed binaries is written anew.
for (const e of readdirSync(out)) if (!/\.xz(\.stamp)?$/.test(e)) rmSync(join(out, e), { recursive: true, force: true });

// One ES module; the banner gives it the CommonJS names that tfjs-wasm's Emscripten loader reads
// (__dirname is where it looks for its .wasm files, copied beside the bundle below).
await build({
  entryPoints: ['bench/gpu.ts'],
  outfile: join(out, 'bench-gpu.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  // src/runtime/backend.ts imports tfjs-backend-cpu and -webgl for their registration; the bundle's
  // @tensorflow/tfjs registers both already, so esbuild dropping those bare imports changes nothing.
  logOverride: { 'ignored-bare-import': 'silent' },
  banner: {
    js: "import { createRequire as __wCr } from 'node:module'; import { fileURLToPath as __wFu } from 'node:url'; import { dirname as __wDn } from 'node:path'; const require = __wCr(import.meta.url); const __filename = __wFu(import.meta.url); const __dirname = __wDn(__filename);",
  },
});
for (const f of readdirSync('node_modules/@tensorflow/tfjs-backend-wasm/dist').filter((f) => f.endsWith('.wasm')))
  copyFileSync(join('node_modules/@tensorflow/tfjs-backend-wasm/dist', f), join(out, f));
for (const m of MODELS) {
  mkdirSync(join(out, 'models', m), { recursive: true });
  for (const f of FILES) copyFileSync(join('public/models', m, f), join(out, 'models', m, f));
}
mkdirSync(join(out, 'torch'), { recursive: true });
for (const f of TORCH_SCRIPTS) copyFileSync(join('tools', f), join(out, 'torch', f));
cpSync('bench/gpu/run.sh', join(out, 'run.sh'));
chmodSync(join(out, 'run.sh'), 0o755);
xz(`node_modules/webgpu/dist/linux-x64/dawn.node`, join(out, 'dawn.node.xz'));
xz(process.execPath, join(out, 'node.xz'));
writeFileSync(
  join(out, 'VERSION'),
  `wildtta bench:gpu, packed ${new Date().toISOString()} with Node ${process.version} (node.xz), webgpu ${String(JSON.parse(readFileSync('node_modules/webgpu/package.json', 'utf8')).version)} (dawn.node.xz)\n`,
);

const bytes = folderBytes(out);
console.log(`${args.out}: ${(bytes / 2 ** 20).toFixed(1)} MiB (limit ${PACK_LIMIT_BYTES / 2 ** 20} MiB)`);
for (const e of readdirSync(out)
  .filter((e) => !e.endsWith('.stamp'))
  .sort()) {
  const p = join(out, e);
  console.log(`  ${e.padEnd(34)} ${((statSync(p).isDirectory() ? folderBytes(p) : statSync(p).size) / 2 ** 20).toFixed(2)} MiB`);
}
if (bytes > PACK_LIMIT_BYTES) {
  console.error(`the folder is over ${PACK_LIMIT_BYTES / 2 ** 20} MiB`);
  process.exitCode = 1;
}
