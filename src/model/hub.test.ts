// Hub ids resolved to the hub's file URLs (no request is made here; the
// browser test e2e/hub-cache.e2e.ts loads a model from a server with the hub's layout).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HubIdError, resolveHubModel } from './hub';

const SHA = '0123456789abcdef0123456789abcdef01234567';

test('hf:org/name resolves to huggingface.co/<org>/<name>/resolve/main/ by default, not immutable', () => {
  const r = resolveHubModel('hf:timm/convnext_atto.d2_in1k');
  assert.deepEqual(r.files, {
    weights: 'https://huggingface.co/timm/convnext_atto.d2_in1k/resolve/main/model.safetensors',
    config: 'https://huggingface.co/timm/convnext_atto.d2_in1k/resolve/main/config.json',
    sourceStats: 'https://huggingface.co/timm/convnext_atto.d2_in1k/resolve/main/source-stats.safetensors',
  });
  assert.deepEqual([r.org, r.name, r.revision, r.immutable], ['timm', 'convnext_atto.d2_in1k', 'main', false]);
});

test('a revision is one encoded path segment; a commit sha is immutable, a branch or tag is not', () => {
  assert.equal(
    resolveHubModel('hf:timm/vit', { revision: 'refs/pr/1' }).files.weights,
    'https://huggingface.co/timm/vit/resolve/refs%2Fpr%2F1/model.safetensors',
  );
  assert.equal(resolveHubModel('hf:timm/vit', { revision: 'v1.0+x y' }).files.config, 'https://huggingface.co/timm/vit/resolve/v1.0%2Bx%20y/config.json');
  const pinned = resolveHubModel('hf:timm/vit', { revision: SHA });
  assert.equal(pinned.immutable, true);
  assert.equal(pinned.files.weights, `https://huggingface.co/timm/vit/resolve/${SHA}/model.safetensors`);
  assert.equal(resolveHubModel('hf:timm/vit', { revision: SHA.toUpperCase() }).immutable, true);
  // A short sha names a commit only until another commit shares its prefix.
  assert.equal(resolveHubModel('hf:timm/vit', { revision: SHA.slice(0, 7) }).immutable, false);
  assert.equal(resolveHubModel('hf:timm/vit', { revision: 'v1.0' }).immutable, false);
});

test('hubUrl replaces the host, keeps a path prefix, and drops trailing slashes', () => {
  assert.equal(resolveHubModel('hf:a/b', { hubUrl: 'http://127.0.0.1:8123' }).files.weights, 'http://127.0.0.1:8123/a/b/resolve/main/model.safetensors');
  assert.equal(
    resolveHubModel('hf:a/b', { hubUrl: 'https://mirror.example/hf//' }).files.weights,
    'https://mirror.example/hf/a/b/resolve/main/model.safetensors',
  );
});

test('malformed ids, revisions and hub URLs are HubIdErrors naming the id and the expected form', () => {
  for (const id of [
    'hf:',
    'hf:timm',
    'hf:timm/',
    'hf:/vit',
    'hf:a/b/c',
    'hf:a/..',
    'hf:../b',
    'hf:a/.',
    'hf:a/b c',
    'hf:a/b?x',
    'hf:a/-b',
    `hf:a/${'x'.repeat(97)}`,
    'timm/vit',
  ]) {
    assert.throws(
      () => resolveHubModel(id),
      (e: unknown) => e instanceof HubIdError && e.id === id && e.message.includes(`"${id}"`) && e.message.includes('hf:org/name'),
      id,
    );
  }
  for (const revision of ['', ' main', 'main\n'])
    assert.throws(
      () => resolveHubModel('hf:a/b', { revision }),
      (e: unknown) => e instanceof HubIdError && /revision/.test(e.message),
      JSON.stringify(revision),
    );
  for (const hubUrl of ['huggingface.co', 'ftp://x.example', 'https://x.example/?a=1', 'https://x.example/#f'])
    assert.throws(
      () => resolveHubModel('hf:a/b', { hubUrl }),
      (e: unknown) => e instanceof HubIdError && /hubUrl/.test(e.message),
      hubUrl,
    );
});
