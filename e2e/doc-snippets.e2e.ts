// The docs' run=page blocks (tools/lib/doc-blocks.ts), each run as it is
// written in a plain page that loaded the script-tag bundle (its global
// WildTTA is the name the fragments use), under the strict CSP. The page
// provides what the docs call the page's own (`images` and `labels`), and
// serves the models where the blocks look for them. Each block is a module
// with one line added, `export { … }` of the names its check reads; every
// run=page block needs a check here, by its id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { blocksToRun, where, type DocBlock } from '../tools/lib/doc-blocks';
import { loadFashionMnist } from '../tools/fmnist-node';
import { REPO_ROOT } from '../tools/lib/session';
import { configureLibSession, waitForTrue, withLibPage, type LibPage } from './support/lib';

const SITE = join(REPO_ROOT, 'test-results', 'doc-snippets');
const N_IMAGES = 60;

interface Check {
  /** The block's own names its check reads. */
  exports: string[];
  check(p: LibPage, b: DocBlock): Promise<void>;
}

/** `{ method: 'sar', lr: 0.0003, margin: 0.921… }` from a block's comment: each value as written, a trailing … meaning "starts with". */
function documentedOutput(comment: string): Array<[string, string]> {
  const body = /\{(.*)\}/.exec(comment)?.[1];
  assert.ok(body, `no { … } in "${comment}"`);
  return body.split(',').map((kv) => {
    const [k, v] = kv.split(':').map((x) => x.trim().replace(/^'|'$/g, ''));
    return [k!, v!];
  });
}

/** A block that creates `tta` and says, beside console.log(tta.method), what the engine shows for the method it asked for. */
const methodShown: Check = {
  exports: ['tta'],
  async check(p, b) {
    const shown = (await p.page.evaluate('window.ns.tta.method')) as Record<string, unknown>;
    const comment = b.code.split('\n').find((l) => l.includes('console.log(tta.method)'));
    assert.ok(comment, `${where(b)}: no console.log(tta.method) line`);
    for (const [k, v] of documentedOutput(comment.slice(comment.indexOf('//')))) {
      const got = String(shown[k]);
      if (v.endsWith('…')) assert.ok(got.startsWith(v.slice(0, -1)), `${where(b)}: tta.method.${k} is ${got}, the comment says ${v}`);
      else assert.equal(got, v, `${where(b)}: tta.method.${k}`);
    }
    await p.page.evaluate('window.ns.tta.dispose()');
  },
};

const CHECKS: Record<string, Check> = {
  // docs/methods.md: the options, and what tta.method shows for them (the comment beside console.log).
  options: methodShown,
  // docs/methods.md: sar-msam by name, with its own defaults.
  'sar-msam': methodShown,
  // docs/guide.md: why 'auto' chose the backend; this browser's GPUs are SwiftShader, as on a machine without one.
  'backend-report': {
    exports: ['tta', 'backend', 'why'],
    async check(p, b) {
      const r = (await p.page.evaluate('({ backend: window.ns.backend, why: window.ns.why, now: window.ns.tta.backend })')) as {
        backend: string;
        why: string;
        now: string;
      };
      const comment = b.code.split('\n').find((l) => l.includes('console.log('))!;
      const promised = /"(\w+): (.*?) …"/.exec(comment);
      assert.ok(promised, `${where(b)}: no "backend: why …" in the comment`);
      assert.equal(r.backend, promised[1], where(b));
      assert.equal(r.now, r.backend, `${where(b)}: tta.backend and backendReport disagree`);
      assert.ok(r.why.startsWith(promised[2]!), `${where(b)}: why is "${r.why}", the comment says "${promised[2]} …"`);
      await p.page.evaluate('window.ns.tta.dispose()');
    },
  },
  // docs/models.md: source statistics made in the page from the page's images, then sar-align on them.
  'source-stats': {
    exports: ['bytes', 'adapted'],
    async check(p, b) {
      const r = (await p.page.evaluate(`(async () => {
        const { bytes, adapted } = window.ns;
        let correct = 0;
        for (let i = 0; i < 12; i++) if ((await adapted.classify(images[i])).classIndex === labels[i]) correct++;
        const out = { size: bytes.byteLength, method: adapted.method.method, stats: adapted.model.sourceStats, correct };
        await adapted.dispose();
        return out; })()`)) as { size: number; method: string; stats: { count: number; provenance: string } | null; correct: number };
      assert.ok(r.size > 1000, `${where(b)}: ${r.size} bytes of statistics`);
      assert.equal(r.method, 'sar-align', where(b));
      assert.deepEqual(r.stats, { count: N_IMAGES, provenance: 'my validation set' }, `${where(b)}: the statistics the instance runs with`);
      // The shipped ViT is 88.5% accurate on clean test images; statistics made wrong (a channel or a scale off) would sink it.
      assert.ok(r.correct >= 8, `${where(b)}: ${r.correct}/12 correct with sar-align on the page's statistics`);
    },
  },
  // docs/models.md: a hub id against the page's own server laid out as the hub (/wildtta/fmnist-vit/resolve/main/), and clearCache's count.
  'hub-mirror': {
    exports: ['tta', 'removed'],
    async check(p, b) {
      const r = (await p.page.evaluate('({ classes: window.ns.tta.model.numClasses, removed: window.ns.removed })')) as { classes: number; removed: number };
      assert.equal(r.classes, 10, where(b));
      assert.equal(r.removed, 3, `${where(b)}: entries clearCache() removed`);
    },
  },
};

/** The page: the bundle, the page's own images and labels, the models under /models/, and each block as /snippets/<id>.js. */
function layOutSite(blocks: DocBlock[]): void {
  rmSync(SITE, { recursive: true, force: true });
  mkdirSync(join(SITE, 'snippets'), { recursive: true });
  mkdirSync(join(SITE, 'models'));
  symlinkSync(relative(SITE, join(REPO_ROOT, 'dist')), join(SITE, 'dist'), 'dir');
  const vit = join(REPO_ROOT, 'public', 'models', 'fmnist-vit');
  // docs/models.md's "your own model" is the shipped ViT under another name.
  for (const name of ['fmnist-vit', 'my-vit']) symlinkSync(relative(join(SITE, 'models'), vit), join(SITE, 'models', name), 'dir');
  // docs/models.md's hub mirror: the hub's layout, /<org>/<name>/resolve/<revision>/.
  mkdirSync(join(SITE, 'wildtta', 'fmnist-vit', 'resolve'), { recursive: true });
  symlinkSync(relative(join(SITE, 'wildtta', 'fmnist-vit', 'resolve'), vit), join(SITE, 'wildtta', 'fmnist-vit', 'resolve', 'main'), 'dir');

  const data = loadFashionMnist('t10k', join(REPO_ROOT, 'public', 'data', 'fashion-mnist'));
  const px = data.width * data.height;
  const first = 3000;
  const images = Array.from({ length: N_IMAGES }, (_, i) => Array.from(data.images.subarray((first + i) * px, (first + i + 1) * px)));
  writeFileSync(
    join(SITE, 'page.js'),
    `// The page's own things that the docs' fragments use: clean images (ImageBitmaps) and their labels.
window.pageReady = (async () => {
  const data = ${JSON.stringify({ images, labels: Array.from(data.labels.subarray(first, first + N_IMAGES)) })};
  window.labels = data.labels;
  window.images = await Promise.all(data.images.map((px) => {
    const id = new ImageData(${data.width}, ${data.height});
    px.forEach((v, j) => { id.data[4 * j] = id.data[4 * j + 1] = id.data[4 * j + 2] = v; id.data[4 * j + 3] = 255; });
    return createImageBitmap(id);
  }));
})();
`,
  );
  writeFileSync(
    join(SITE, 'index.html'),
    `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>the docs' fragments</title><link rel="icon" href="data:,"></head>
<body>
<script src="/dist/wildtta.iife.js"></script>
<script src="/page.js"></script>
</body>
</html>
`,
  );
  for (const b of blocks) writeFileSync(join(SITE, 'snippets', `${b.attrs.id}.js`), `${b.code}export { ${CHECKS[b.attrs.id!]!.exports.join(', ')} };\n`);
}

const blocks = blocksToRun('page');
test('every run=page block has a check here', () => {
  assert.deepEqual(
    blocks.filter((b) => CHECKS[b.attrs.id!] === undefined).map((b) => `${where(b)}: id=${b.attrs.id}`),
    [],
    'blocks with no check in e2e/doc-snippets.e2e.ts',
  );
});

layOutSite(blocks.filter((b) => CHECKS[b.attrs.id!] !== undefined));
configureLibSession({ root: SITE });

for (const b of blocks.filter((x) => CHECKS[x.attrs.id!] !== undefined)) {
  test(`${where(b)} (id=${b.attrs.id}) runs as written in a page with the script-tag bundle`, () =>
    withLibPage('index.html', async (p) => {
      await waitForTrue(p.page, 'window.WildTTA !== undefined && window.pageReady !== undefined', 30_000, 'the bundle and the page');
      // A string, evaluated through the DevTools protocol: the page's CSP forbids eval.
      await p.page.evaluate(`window.pageReady.then(() => import('/snippets/${b.attrs.id}.js')).then((ns) => { window.ns = ns; })`).catch((e: Error) => {
        throw new Error(`${where(b)} failed in the page: ${e.message}\n${p.errors.join('\n')}`);
      });
      await CHECKS[b.attrs.id!]!.check(p, b);
      assert.deepEqual(await p.cspViolations(), [], `${where(b)}: CSP violations`);
      assert.deepEqual(p.errors, [], `${where(b)}: console errors`);
    }));
}
