// Which GroupNorms the WGSL kernels take on webgpu (the kernels themselves are
// held to the tfjs ops in a browser: e2e/backend.e2e.ts).
//
//   node --import tsx --test src/kernels/webgpu/kernels.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupNormFits, MAX_THREADS } from './kernels';

test('GroupNorm runs as WGSL wherever one dispatch reaches every value (larger images sum their channels in chunks)', () => {
  assert.equal(groupNormFits([1, 7, 7, 128]), true, "the shipped ResNet's last stage");
  assert.equal(groupNormFits([1, 112, 112, 64]), true, "ResNet-50's stem");
  assert.equal(groupNormFits([1, 56, 56, 256]), true, "ResNet-50's first stage");
  const batch = Math.floor(MAX_THREADS / (7 * 7 * 2048)) + 1;
  assert.equal(groupNormFits([batch - 1, 7, 7, 2048]), true, 'one dispatch');
  assert.equal(groupNormFits([batch, 7, 7, 2048]), false, 'past one dispatch');
});
