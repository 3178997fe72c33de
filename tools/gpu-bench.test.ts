// npm run bench:gpu on lavapipe (Mesa's software Vulkan, unpacked by
// tools/fetch-lavapipe.sh): tfjs's WebGPU backend and our WGSL kernels on
// Dawn in Node agree with tfjs-wasm (logits, and the adapted norms after SAR
// steps), a step leaks nothing and asks the device for no new buffer or
// pipeline; and the packed folder (npm run bench:gpu:pack) fits its limit
// and runs through its own Node binary.
//
//   npm test -- gpu-bench
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './lib/session';

const LAVAPIPE = join(REPO_ROOT, 'artifacts/lavapipe/lvp_icd.json');
const PACK = join(REPO_ROOT, 'artifacts/gpu-bench');
/** What the packed folder may weigh: the transfer limit of the GPU machines it is for. */
const PACK_LIMIT = 64 * 2 ** 20;

interface Report {
  adapter: { software: boolean; description: string };
  runs: Array<{
    size: string;
    memory: { tensors: number[]; gpuBytes: Array<number | null> };
    tensorsLeft: number;
    perStepAll: Array<Record<string, number>>;
  }>;
  parity: Array<{ size: string; logitsRel: number; updateRel: number }>;
  torch: Array<{ size: string; skipped?: string; sarReliableMs?: number }>;
}

function needLavapipe(): void {
  assert.ok(
    existsSync(LAVAPIPE),
    `no lavapipe at ${LAVAPIPE}: run bash tools/fetch-lavapipe.sh (it unpacks Debian bookworm-backports' mesa-vulkan-drivers there; ` +
      `Dawn refuses Debian 12's own Mesa 22 lavapipe, and needs the Debian packages libvulkan1 and mesa-vulkan-drivers, which .ci/run installs)`,
  );
}

function checkReport(r: Report, sizes: string[]): void {
  assert.ok(r.adapter.software, `expected lavapipe, got ${r.adapter.description}`);
  assert.deepEqual(
    r.runs.map((x) => x.size),
    sizes,
  );
  for (const run of r.runs) {
    assert.equal(new Set(run.memory.tensors).size, 1, `${run.size}: tensor count moved over the steps: ${run.memory.tensors.join(', ')}`);
    assert.equal(new Set(run.memory.gpuBytes).size, 1, `${run.size}: GPU bytes moved over the steps: ${run.memory.gpuBytes.join(', ')}`);
    assert.equal(run.tensorsLeft, 0, `${run.size}: tensors left after dispose`);
    // After the first step, a step reuses tfjs's buffers and pipelines: a new one per step is an upload or a shader key that varies.
    for (const c of run.perStepAll.slice(1)) {
      assert.equal(c.buffers, 0, `${run.size}: buffers created in a step`);
      assert.equal(c.pipelines, 0, `${run.size}: pipelines created in a step`);
      assert.ok(c.reads! <= 2, `${run.size}: ${c.reads} GPU→CPU reads in a step (the prediction's and the flush's)`);
    }
  }
  for (const p of r.parity) {
    assert.ok(p.logitsRel < 1e-4, `${p.size}: logits differ from wasm's by ${p.logitsRel} of the largest`);
    assert.ok(p.updateRel < 1e-3, `${p.size}: the adapted norms' update differs from wasm's by ${p.updateRel} (relative)`);
  }
  assert.equal(r.parity.length, sizes.length);
}

test('bench:gpu on lavapipe: WebGPU (Dawn) agrees with wasm, a SAR step leaks nothing and creates no buffer or pipeline', { timeout: 120_000 }, () => {
  needLavapipe();
  const dir = mkdtempSync(join(tmpdir(), 'bench-gpu-'));
  try {
    const json = join(dir, 'r.json');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/gpu.ts',
        '--lavapipe',
        '--sizes',
        'fmnist-vit,fmnist-resnet-gn,tiny',
        '--steps',
        '4',
        '--parity',
        'wasm',
        '--torch',
        'no',
        '--json',
        json,
      ],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^adapter: .*llvmpipe/m, 'the adapter line names the GPU');
    checkReport(JSON.parse(readFileSync(json, 'utf8')) as Report, ['fmnist-vit', 'fmnist-resnet-gn', 'tiny']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const folderBytes = (d: string): number =>
  readdirSync(d, { withFileTypes: true }).reduce((n, e) => {
    const p = join(d, e.name);
    return n + (e.isDirectory() ? (e.name === '.unpacked' ? 0 : folderBytes(p)) : e.name.endsWith('.stamp') ? 0 : statSync(p).size);
  }, 0);

test('bench:gpu:pack: the folder is at most 64 MiB and run.sh runs it through the packed Node on lavapipe', { timeout: 300_000 }, () => {
  needLavapipe();
  const pack = spawnSync(process.execPath, ['--import', 'tsx', 'bench/gpu-pack.ts'], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(pack.status, 0, `${pack.stdout}\n${pack.stderr}`);
  assert.match(pack.stdout, /artifacts\/gpu-bench: [\d.]+ MiB/);
  // What run.sh unpacked on an earlier run is not part of the packed folder.
  rmSync(join(PACK, '.unpacked'), { recursive: true, force: true });
  rmSync(join(PACK, 'results'), { recursive: true, force: true });
  const bytes = folderBytes(PACK);
  assert.ok(bytes <= PACK_LIMIT, `packed folder is ${(bytes / 2 ** 20).toFixed(1)} MiB`);
  const run = spawnSync(join(PACK, 'run.sh'), ['--sizes', 'tiny', '--steps', '2'], {
    encoding: 'utf8',
    cwd: tmpdir(),
    // No PATH entry for node matters here: WILDTTA_PACKED_NODE makes run.sh use the one it unpacks.
    env: { ...process.env, WILDTTA_PACKED_NODE: '1', VK_DRIVER_FILES: LAVAPIPE },
  });
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, new RegExp(`^node: ${PACK}/\\.unpacked/node \\(v\\d+`, 'm'));
  const report = JSON.parse(readFileSync(join(PACK, 'results/bench-gpu.json'), 'utf8')) as Report;
  checkReport(report, ['tiny']);
  // PyTorch ran from the packed script, or said why not (here: no torch, or no CUDA device).
  assert.equal(report.torch.length, 1);
  assert.ok(report.torch[0]!.skipped ? /torch|CUDA/.test(report.torch[0]!.skipped) : report.torch[0]!.sarReliableMs! > 0, JSON.stringify(report.torch));
});
