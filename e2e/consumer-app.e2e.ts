// The package as an app developer meets it: `npm pack` of this repository,
// then a fresh Vite app in a temporary folder (examples/vite-app is its
// template, nothing else of this tree) set up by the docs' own run=app blocks
// (tools/lib/doc-blocks.ts): their npm install line (with this tarball and the
// tfjs versions installed here, so that npm needs no network), their commands
// that put the model in place. It type-checks against
// the package's types, builds, and is served as static files under the strict
// CSP. In Chromium it creates the engine on the shipped model, classifies
// Fashion-MNIST images and adapts on 20 frames, on the page's thread and with
// `worker: true`; a second page does the same with the script-tag bundle
// copied out of the installed package. The docs' run=app modules (README's
// and the guide's taste of the API) run as written in the built app and
// under `vite` (dev) with no config; the guide's vite.config.ts for an app that
// excludes wildtta from pre-bundling gets a dev run of its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadFashionMnist } from '../tools/fmnist-node';
import { startStaticServer, STRICT_CSP, type StaticServer } from '../tools/static-server';
import { ensureLibBuilt } from '../tools/lib/lib-build';
import { blocksToRun, npmInstallPackages, shellCommands, where, type DocBlock } from '../tools/lib/doc-blocks';
import { CHROMIUM_ARGS, chromiumExecutable, REPO_ROOT } from '../tools/lib/session';

const TEMPLATE = join(REPO_ROOT, 'examples', 'vite-app');
const N = 20;

const data = loadFashionMnist('t10k', join(REPO_ROOT, 'public', 'data', 'fashion-mnist'));
const PX = data.width * data.height;
const images = Array.from({ length: N }, (_, i) => Array.from(data.images.subarray((2000 + i) * PX, (2001 + i) * PX)));
const labels = Array.from(data.labels.subarray(2000, 2000 + N));

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', npm_config_fund: 'false', npm_config_audit: 'false' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The version of a package this repository has installed, so the app's install comes from npm's cache. */
const installed = (name: string) => (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

const appBlocks = blocksToRun('app');
/** The js and ts modules (not files of the app, not commands), each checked by DOC_MODULE_CHECKS. */
const docModules = appBlocks.filter((b) => b.lang !== 'sh' && b.attrs.file === undefined);

interface DocModuleCheck {
  /** The module's own names its check reads. */
  exports: string[];
  check(page: Page, b: DocBlock): Promise<void>;
}

/**
 * README's and the guide's taste of the API: a classified image, save and
 * restore wired to the page's buttons, a video attached with its results
 * going to the page's show(). public/page.js provides those (the docs say
 * they are the page's own).
 */
const TASTE: DocModuleCheck = {
  exports: ['tta', 'r', 'loop'],
  async check(page, b) {
    const r = (await page.evaluate(`({ label: window.ns.r.label, top: window.ns.r.top.length, confidence: window.ns.r.confidence })`)) as {
      label: string;
      top: number;
      confidence: number;
    };
    assert.ok(r.label.length > 0 && r.top === 5 && r.confidence > 0, `${where(b)}: the image's result ${JSON.stringify(r)}`);
    await waitFor(page, 'window.shown.length >= 3', 60_000, `${where(b)}: three results of the attached video through show()`);
    // The handlers the block set, called as a click would, with their promises awaited: then nothing is left running at dispose().
    await page.evaluate('saveButton.onclick()');
    await page.evaluate('restoreButton.onclick()');
    const frames = (await page.evaluate(`(async () => {
      window.ns.loop.stop();
      const frames = window.ns.loop.frames;
      await window.ns.tta.dispose();
      return frames; })()`)) as number;
    assert.ok(frames >= 3, `${where(b)}: ${frames} frames classified by the attached loop`);
  },
};
const DOC_MODULE_CHECKS: Record<string, DocModuleCheck> = { taste: TASTE, npm: TASTE };

/** Polls an expression (a string: the page's CSP forbids eval) until it is truthy. */
async function waitFor(page: Page, expr: string, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await page.evaluate(expr).catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await page.waitForTimeout(200);
  }
}

/** Runs a run=app sh block in the app: an npm install of its packages, or a command. */
function setUpFromDocs(b: DocBlock, tarball: string): void {
  // A file= block (the guide's vite.config.ts) is an alternative setup: its own test writes it.
  if (b.lang !== 'sh') return;
  for (const command of shellCommands(b.code)) {
    if (command.startsWith('npm install ')) {
      // The same packages, at the versions this repository installed (npm's cache has them) and this tarball.
      const specs = npmInstallPackages(command).map((name) => (name === 'wildtta' ? `file:${tarball}` : `${name}@${installed(name)}`));
      run('npm', ['install', ...specs, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], app);
      continue;
    }
    // The docs write /path/to/wildtta for the reader's clone of this repository.
    const line = command.replaceAll('/path/to/wildtta', REPO_ROOT);
    assert.ok(!line.includes('/path/to/'), `${where(b)}: a placeholder the test cannot fill in: ${command}`);
    run('bash', ['-euc', line], app);
  }
}

/** A run=app module as src/snippets/<id>.js, exporting what its check reads; src/main.ts imports it for ?snippet=<id>. */
function writeDocModule(b: DocBlock): void {
  const check = DOC_MODULE_CHECKS[b.attrs.id!];
  assert.ok(check, `${where(b)}: id=${b.attrs.id} has no check in DOC_MODULE_CHECKS`);
  mkdirSync(join(app, 'src', 'snippets'), { recursive: true });
  writeFileSync(join(app, 'src', 'snippets', `${b.attrs.id}.js`), `${b.code}export { ${check.exports.join(', ')} };\n`);
}

let work: string;
let app: string;
let server: StaticServer;
let browser: Browser;

before(async () => {
  ensureLibBuilt();
  work = mkdtempSync(join(tmpdir(), 'wildtta-consumer-'));
  // dist/ is fresh (ensureLibBuilt), so packing needs no prepack build.
  const packed = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], REPO_ROOT)) as Array<{ filename: string }>;
  const tarball = join(work, packed[0]!.filename);

  app = join(work, 'app');
  cpSync(TEMPLATE, app, { recursive: true, filter: (src) => !/[/\\](node_modules|dist)([/\\]|$)/.test(src) });
  // The app's dependencies are the ones the docs install: the template's own list is dropped.
  const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  pkg.dependencies = {};
  for (const name of Object.keys(pkg.devDependencies)) pkg.devDependencies[name] = installed(name);
  writeFileSync(join(app, 'package.json'), JSON.stringify(pkg, null, 2));
  for (const b of appBlocks) setUpFromDocs(b, tarball);
  assert.ok(existsSync(join(app, 'node_modules', 'wildtta', 'package.json')), 'no block installed wildtta');
  assert.ok(existsSync(join(app, 'public', 'models', 'fmnist-vit', 'model.safetensors')), 'no block put the model in public/models/fmnist-vit/');
  for (const b of docModules) writeDocModule(b);

  // What an app developer adds beyond the docs' blocks: for the script-tag page, the package's dist/ copied out.
  mkdirSync(join(app, 'public', 'wildtta'));
  const dist = join(app, 'node_modules', 'wildtta', 'dist');
  for (const f of readdirSync(dist)) if (/\.(js|wasm)$/.test(f)) cpSync(join(dist, f), join(app, 'public', 'wildtta', f));
  // package.json's build: tsc --noEmit (the package's types, through its exports) and vite build.
  run('npm', ['run', 'build'], app);

  server = await startStaticServer({ root: join(app, 'dist'), csp: STRICT_CSP });
  const executablePath = chromiumExecutable();
  browser = await chromium.launch({ ...(executablePath === undefined ? {} : { executablePath }), headless: true, args: [...CHROMIUM_ARGS] });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await server?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

interface CheckResult {
  backend: string;
  method: string;
  classes: number[];
  steps: number;
  updated: number;
  tensors: number[];
  appBackend?: string | null;
  appBackends?: string[];
}

/** Opens `path` (with ?manual, so the page waits for us), runs window.runCheck(options), and checks the page stayed clean. */
async function check(path: string, options: object, pageBackend?: string, base = server.baseUrl): Promise<CheckResult> {
  const context = await browser.newContext();
  const page: Page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console.error: ${m.text()} (${m.location().url})`));
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('worker', (w) => w.on('console', (m) => m.type() === 'error' && problems.push(`worker console.error: ${m.text()}`)));
  try {
    await page.goto(`${base}${path}?manual`);
    const end = Date.now() + 60_000;
    while (!(await page.evaluate('typeof window.runCheck === "function"'))) {
      if (Date.now() > end) throw new Error(`${path}: window.runCheck never appeared: ${problems.join('\n')}`);
      await page.waitForTimeout(100);
    }
    // A string, evaluated through the DevTools protocol: the page's CSP forbids eval, Playwright's function form needs it.
    const r = (await page.evaluate(
      `window.runCheck(${JSON.stringify(options)}, ${JSON.stringify(images)}${pageBackend === undefined ? '' : `, ${JSON.stringify(pageBackend)}`})`,
    )) as CheckResult;
    assert.deepEqual(problems, [], `${path}: console errors`);
    return r;
  } finally {
    await context.close();
  }
}

function assertAdapted(r: CheckResult, what: string): void {
  assert.equal(r.backend, 'wasm', what);
  assert.equal(r.method, 'sar-align', what);
  // The step index counts from 0.
  assert.equal(r.steps, N - 1, `${what}: step counter`);
  const correct = r.classes.filter((c, i) => c === labels[i]).length;
  assert.ok(correct >= 0.7 * N, `${what}: ${correct}/${N} correct (${r.classes.join(',')} vs ${labels.join(',')})`);
  assert.ok(r.updated >= N / 2, `${what}: only ${r.updated} of ${N} frames updated the model`);
  assert.ok(Math.max(...r.tensors) - Math.min(...r.tensors) <= 2, `${what}: tensor count moved: ${r.tensors.join(',')}`);
}

/** Opens the app with ?snippet=<id>, which imports the module after public/page.js is ready, then runs its check; the page must stay clean. */
async function runDocModules(base: string, what: string): Promise<void> {
  assert.ok(docModules.length >= 1, 'no run=app module in the docs');
  for (const b of docModules) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(`console.error: ${m.text()} (${m.location().url})`));
    page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
    page.on('worker', (w) => w.on('console', (m) => m.type() === 'error' && problems.push(`worker console.error: ${m.text()}`)));
    try {
      await page.goto(`${base}/index.html?manual&snippet=${b.attrs.id}`);
      await waitFor(page, 'window.ns !== undefined || window.nsError !== undefined', 120_000, `${where(b)} (${what})`).catch((e: Error) => {
        throw new Error(`${e.message}\n${problems.join('\n')}`);
      });
      const failed = await page.evaluate('window.nsError');
      assert.equal(failed, undefined, `${where(b)} failed in the app (${what}): ${failed}\n${problems.join('\n')}`);
      await DOC_MODULE_CHECKS[b.attrs.id!]!.check(page, b);
      assert.deepEqual(problems, [], `${where(b)} (${what}): console errors`);
    } finally {
      await context.close();
    }
  }
}

test('packed tarball: only the allowed files, at most 2 MB', () => {
  const [entry] = JSON.parse(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], REPO_ROOT)) as Array<{
    size: number;
    files: Array<{ path: string }>;
  }>;
  const files = entry!.files.map((f) => f.path).sort();
  const allowed = (p: string) =>
    ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/wildtta.js', 'dist/wildtta.iife.js', 'dist/wildtta.worker.js'].includes(p) ||
    /^dist\/tfjs-backend-wasm(-simd|-threaded-simd)?\.wasm$/.test(p) ||
    /^dist\/types\/.+\.d\.ts$/.test(p);
  assert.deepEqual(
    files.filter((p) => !allowed(p)),
    [],
    'files outside the allowed list',
  );
  for (const must of [
    'package.json',
    'README.md',
    'LICENSE',
    'CHANGELOG.md',
    'dist/wildtta.js',
    'dist/wildtta.iife.js',
    'dist/wildtta.worker.js',
    'dist/tfjs-backend-wasm-simd.wasm',
    'dist/types/index.d.ts',
  ])
    assert.ok(files.includes(must), `${must} missing from the tarball`);
  assert.ok(entry!.size <= 2 * 1024 * 1024, `tarball ${(entry!.size / 1024 / 1024).toFixed(2)} MB`);
  console.log(`tarball: ${files.length} files, ${(entry!.size / 1024 / 1024).toFixed(2)} MB`);
});

test('the built app holds nothing of this repository and one copy of tfjs', () => {
  const assets = join(app, 'dist', 'assets');
  const names = readdirSync(assets);
  // The bundler found wildtta's worker and .wasm files through new URL(..., import.meta.url) and copied them.
  for (const f of ['wildtta.worker', 'tfjs-backend-wasm-simd', 'tfjs-backend-wasm-threaded-simd'])
    assert.ok(
      names.some((n) => n.startsWith(`${f}-`)),
      `${f} not emitted by the app's build: ${names.join(', ')}`,
    );
  const js = names
    .filter((n) => n.endsWith('.js') && !n.startsWith('wildtta.worker'))
    .map((n) => readFileSync(join(assets, n), 'utf8'))
    .join('\n');
  assert.ok(!js.includes(REPO_ROOT), 'the app bundle names this repository');
  // tfjs-core's flag registry (its message appears once in tfjs-core), once: wildtta's ES module did not bring a second tfjs.
  assert.equal(js.split('Cannot evaluate flag').length - 1, 1, 'copies of tfjs-core in the app bundle');
});

test("Vite app, ES module on the page thread: shares the app's tfjs, adapts on 20 frames", async () => {
  const r = await check('/index.html', { worker: false });
  assertAdapted(r, 'page thread');
  // The app's own tfjs-core sees the backend wildtta chose: one tfjs, not two.
  assert.equal(r.appBackend, 'wasm');
  for (const b of ['cpu', 'webgl', 'wasm']) assert.ok(r.appBackends!.includes(b), `${b} not registered in the app's tfjs: ${r.appBackends!.join(',')}`);
  const fetched = server.requests.filter((p) => p.startsWith('/assets/tfjs-backend-wasm'));
  assert.ok(fetched.length >= 1, `no .wasm fetched from the app's assets: ${server.requests.join(' ')}`);
});

test("Vite app, ES module with worker: true: the worker from the app's assets adapts on 20 frames", async () => {
  const r = await check('/index.html', { worker: true });
  assertAdapted(r, 'worker');
  assert.ok(
    server.requests.some((p) => /^\/assets\/wildtta\.worker-[\w-]+\.js$/.test(p)),
    "worker not loaded from the app's assets",
  );
});

test('Vite app: backend "auto" keeps the backend the app\'s tfjs already runs', async () => {
  const r = await check('/index.html', { backend: 'auto' }, 'cpu');
  assert.equal(r.backend, 'cpu');
  assert.equal(r.appBackend, 'cpu');
  assert.equal(r.steps, N - 1);
});

test("the docs' modules (README's and the guide's taste of the API) run as written in the built app", () => runDocModules(server.baseUrl, 'vite build'));

test('script tag from the installed package, under the strict CSP: page thread and worker adapt on 20 frames', async () => {
  const before = server.requests.length;
  assertAdapted(await check('/script-tag.html', { worker: false }), 'script tag, page thread');
  assertAdapted(await check('/script-tag.html', { worker: true }), 'script tag, worker');
  const got = server.requests.slice(before);
  assert.ok(got.includes('/wildtta/wildtta.worker.js'), 'worker not loaded beside the script');
  assert.ok(
    got.some((p) => /^\/wildtta\/tfjs-backend-wasm.*\.wasm$/.test(p)),
    '.wasm not loaded beside the script',
  );
});

/** Runs `vite` (dev) in the app, gives fn its address, and stops it (npx and the vite under it: the whole process group). */
async function withViteDev(fn: (base: string) => Promise<void>): Promise<void> {
  const dev: ChildProcess = spawn('npx', ['vite', '--host', '127.0.0.1', '--port', '0', '--strictPort=false'], {
    cwd: app,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise((done) => dev.on('exit', done));
  try {
    const base = await new Promise<string>((ok, fail) => {
      let out = '';
      const timer = setTimeout(() => fail(new Error(`vite dev did not start: ${out}`)), 60_000);
      const take = (b: Buffer) => {
        out += b.toString();
        const m = /Local:\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          ok(m[1]!);
        }
      };
      dev.stdout!.on('data', take);
      dev.stderr!.on('data', take);
      dev.on('exit', (code) => fail(new Error(`vite dev exited (${code}): ${out}`)));
    });
    await fn(base);
  } finally {
    if (dev.pid !== undefined) process.kill(-dev.pid, 'SIGTERM');
    await exited;
  }
}

test("the same app under `vite` (dev server, no config, as the guide says): page thread and worker adapt, the docs' modules run", () =>
  withViteDev(async (base) => {
    assertAdapted(await check('/', { worker: false }, undefined, base), 'dev server, page thread');
    assertAdapted(await check('/', { worker: true }, undefined, base), 'dev server, worker');
    await runDocModules(base, 'vite dev');
  }));

test("the same app under `vite` with the guide's vite.config.ts (wildtta excluded from pre-bundling): page thread and worker adapt", async () => {
  const files = appBlocks.filter((b) => b.attrs.file !== undefined);
  assert.deepEqual(
    files.map((b) => b.attrs.file),
    ['vite.config.ts'],
    'the docs give the app one file: its vite.config.ts',
  );
  for (const b of files) writeFileSync(join(app, b.attrs.file!), b.code);
  // The pre-bundle of the run without a config.
  rmSync(join(app, 'node_modules', '.vite'), { recursive: true, force: true });
  try {
    await withViteDev(async (base) => {
      assertAdapted(await check('/', { worker: false }, undefined, base), `dev server with ${files.map(where).join(', ')}, page thread`);
      assertAdapted(await check('/', { worker: true }, undefined, base), `dev server with ${files.map(where).join(', ')}, worker`);
    });
  } finally {
    for (const b of files) rmSync(join(app, b.attrs.file!));
  }
});
