import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CORRUPTIONS, EXTRA_CORRUPTIONS } from '../data/corruptions';
import { EXTRA_CORRUPTION_NAMES, TEST_CORRUPTION_NAMES } from './corruption-names';

test('corruption names offered by the page are the implemented ones, in the same order', () => {
  assert.deepEqual([...TEST_CORRUPTION_NAMES], [...CORRUPTIONS]);
  assert.deepEqual([...EXTRA_CORRUPTION_NAMES], [...EXTRA_CORRUPTIONS]);
});
