// Which GroupNorms the WGSL kernels take on webgpu (the kernels themselves are
// held to the tfjs ops in a browser: e2e/backend.e2e.ts).
//
//   node --import tsx --test src/kernels/webgpu/kernels.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupNormFits, MAX_GROUP_NORM_POSITIONS, MAX_THREADS } from './kernels';

test("GroupNorm runs as WGSL only where a thread's loop over the positions and the dispatch fit", () => {
  assert.equal(groupNormFits([1, 7, 7, 128]), true, "the shipped ResNet's last stage");
  assert.equal(groupNormFits([2, 32, 32, 64]), true, `${MAX_GROUP_NORM_POSITIONS} positions`);
  assert.equal(groupNormFits([1, 33, 32, 64]), false, 'one row more');
  assert.equal(groupNormFits([1, 56, 56, 256]), false, "ResNet-50's first stage: the tfjs ops' reductions");
  assert.equal(groupNormFits([1, 14, 14, 1024]), true, "ResNet-50's third stage");
  const batch = Math.floor(MAX_THREADS / (7 * 7 * 2048)) + 1;
  assert.equal(groupNormFits([batch, 7, 7, 2048]), false, 'past one dispatch');
});
