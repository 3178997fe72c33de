// npm run make-model (tools/make-model.ts): the folder it writes is byte for
// byte what makeTestModel returns for the same arguments, and a bad argument
// exits with a message and the usage, not a stack.
//
//   npm test -- make-model
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { makeTestModel } from '../src/model/make-model';
import { REPO_ROOT } from './lib/session';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'tools/make-model.ts', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });

test('the folder the command writes holds the bytes makeTestModel gives for the same seed', async () => {
  const out = mkdtempSync(join(tmpdir(), 'make-model-'));
  try {
    const r = cli('--family', 'resnet-gn', '--size', 'tiny', '--out', out, '--seed', '5', '--images', '6', '--backend', 'cpu');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote .*resnet_gn_basic1111_w16 .* parameters, seed 5; .*statistics from 6 synthetic images on cpu/);
    const { files } = await makeTestModel({ family: 'resnet-gn', size: 'tiny', seed: 5, images: 6 });
    assert.deepEqual(readdirSync(out).sort(), Object.keys(files).sort());
    for (const [name, bytes] of Object.entries(files)) assert.ok(readFileSync(join(out, name)).equals(bytes), `${name} differs from makeTestModel's`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a bad argument exits with status 2, what is wrong, and the usage', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--family', 'vgg', '--size', 'tiny', '--out', 'x'], /unknown family "vgg": choose one of vit, resnet-gn, convnext/],
    [['--family', 'vit', '--size', 'large', '--out', 'x'], /unknown size "large" for vit: choose one of tiny, ti, s, b/],
    [['--family', 'vit', '--size', 'tiny'], /--family, --size and --out are required/],
    [['--family', 'vit', '--size', 'tiny', '--out', 'x', '--seed', 'one'], /--seed must be a non-negative integer, got "one"/],
    [['--family', 'vit', '--size', 'tiny', '--out', 'x', '--depth', '3'], /Unknown option '--depth'/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: status ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, /usage: npm run make-model -- --family vit\|resnet-gn\|convnext --size SIZE --out FOLDER/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});
