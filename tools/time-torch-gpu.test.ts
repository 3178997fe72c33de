// tools/time_torch_gpu.py, bench:gpu's PyTorch anchor: the scripts the GPU
// pack carries are every script of ours it imports, and, where this machine's
// /usr/bin/python3 has torch, it times ResNet-50-GN's inference and SAR step
// from a folder holding only those scripts (as the pack does), on the CPU.
//
//   node --import tsx --test tools/time-torch-gpu.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TORCH_SCRIPTS } from './lib/torch-scripts';
import { torchAvailable } from './lib/sizes-models';

/**
 * The tools/ scripts `file` imports, and theirs, by file name: all of the
 * entry script's imports (time_torch_gpu.py imports inside main, per size),
 * the module-level ones of the scripts it imports (their functions' own
 * imports serve other commands).
 */
function localImports(file: string, entry = true, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const statement = entry ? /^\s*(?:from\s+(\w+)\s+import|import\s+(\w+))/gm : /^(?:from\s+(\w+)\s+import|import\s+(\w+))/gm;
  for (const m of readFileSync(join('tools', file), 'utf8').matchAll(statement)) {
    const name = `${m[1] ?? m[2]}.py`;
    if (existsSync(join('tools', name))) localImports(name, false, seen);
  }
  return seen;
}

test('the GPU pack carries time_torch_gpu.py and every script of ours it imports', () => {
  assert.deepEqual([...localImports('time_torch_gpu.py')].sort(), [...TORCH_SCRIPTS].sort());
});

test('time_torch_gpu.py times ResNet-50-GN on the CPU from a folder of the packed scripts alone', { skip: torchAvailable(), timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'torch-gpu-'));
  try {
    for (const f of TORCH_SCRIPTS) copyFileSync(join('tools', f), join(dir, f));
    const r = spawnSync('/usr/bin/python3', [join(dir, 'time_torch_gpu.py'), '--size', 'rn50', '--device', 'cpu', '--iterations', '1', '--warmup', '0'], {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '2' },
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.equal(out.size, 'rn50');
    assert.equal(out.device, 'cpu');
    assert.ok(Number(out.inferenceMs) > 0 && Number(out.sarReliableMs) > Number(out.inferenceMs), JSON.stringify(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
