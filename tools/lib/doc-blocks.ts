// The code blocks of the user-facing pages (README.md, docs/*.md), read the
// way the tests run them. A block says on its fence how it is run:
//
//   ```js run=page id=options          e2e/doc-snippets.e2e.ts runs it in a plain page (global WildTTA)
//   ```js run=app id=taste             e2e/consumer-app.e2e.ts runs it in a fresh Vite app that installed the package
//   ```ts run=app file=vite.config.ts  …as that file of the app
//   ```html run=script-tag             e2e/lib-script-tag.e2e.ts serves it as the page
//   ```sh norun="needs PyTorch"        not run, and why
//   ```text                            not code (a diagram, an output)
//
// tools/doc-snippets.test.ts holds every block to one of these and
// type-checks the js, ts and html blocks against the package's types.
// docs/contributing.md has its own convention (file=, add=), which
// tools/contributing.test.ts applies.
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Not session.ts's: this module is also loaded by tools that start no browser.
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface DocBlock {
  /** The page, relative to the repository root. */
  page: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  attrs: Record<string, string>;
  /** The block's text, ending with a newline. */
  code: string;
}

/** The pages whose blocks a user pastes; contributing.md's are run by tools/contributing.test.ts. */
export function userPages(root = REPO_ROOT): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md') && f !== 'contributing.md')
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

/** `page:line`, for messages that send the reader to the block. */
export const where = (b: DocBlock): string => `${b.page}:${b.line}`;

/** Parses a fence's info string after the language: key=value or key="value with spaces". */
export function parseAttrs(info: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  const rest = info.replace(/(\w[\w-]*)=(?:"([^"]*)"|(\S+))/g, (_, key: string, quoted?: string, bare?: string) => {
    attrs[key] = quoted ?? bare ?? '';
    return '';
  });
  if (rest.trim() !== '') throw new Error(`cannot read "${rest.trim()}" in the fence's info string "${info}" (key=value or key="…")`);
  return attrs;
}

/**
 * The fenced blocks of one markdown text, also those indented inside a list
 * item (their indent is taken off the code). An unclosed fence is an error:
 * the rest of the page would silently be code.
 */
export function parseBlocks(markdown: string, page: string): DocBlock[] {
  const lines = markdown.split('\n');
  const out: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)(`{3,}|~{3,})(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!;
    const fence = open[2]!;
    const info = open[3]!.trim();
    const lang = info.split(/\s+/)[0] ?? '';
    const end = lines.findIndex((l, j) => j > i && l.trimStart().startsWith(fence) && l.trimStart().slice(fence.length).trim() === '');
    if (end < 0) throw new Error(`${page}:${i + 1}: a code block that is never closed`);
    const code = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()));
    out.push({ page, line: i + 1, lang, attrs: parseAttrs(info.slice(lang.length)), code: code.join('\n') + '\n' });
    i = end;
  }
  return out;
}

/** Every block of the user-facing pages. */
export function docBlocks(root = REPO_ROOT): DocBlock[] {
  return userPages(root).flatMap((p) => parseBlocks(readFileSync(join(root, p), 'utf8'), p));
}

/** The blocks a test runs, by their run= value; a test that finds none fails rather than passing on nothing. */
export function blocksToRun(run: string, root = REPO_ROOT): DocBlock[] {
  const found = docBlocks(root).filter((b) => b.attrs.run === run);
  if (found.length === 0) throw new Error(`no block in ${userPages(root).join(', ')} has run=${run}`);
  return found;
}

/** The one block with this attribute value (e.g. file=vite.config.ts). */
export function theBlock(key: string, value: string, root = REPO_ROOT): DocBlock {
  const found = docBlocks(root).filter((b) => b.attrs[key] === value);
  if (found.length !== 1) throw new Error(`expected one block with ${key}=${value} in the docs, found ${found.length}`);
  return found[0]!;
}

/** The inline scripts of an HTML block (those without src), with the line each starts on, for type-checking. */
export function inlineScripts(html: string): Array<{ code: string; line: number }> {
  const out: Array<{ code: string; line: number }> = [];
  for (const m of html.matchAll(/<script(?![^>]*\ssrc=)[^>]*>([\s\S]*?)<\/script>/gi)) {
    out.push({ code: m[1]!, line: html.slice(0, m.index! + m[0].indexOf('>') + 1).split('\n').length });
  }
  return out;
}

/** How a block is marked, or why it is not acceptable (null when it is). */
export function markingProblem(b: DocBlock): string | null {
  if (b.lang === '') return 'a code block with no language: name it (```text for a diagram or an output)';
  if (b.lang === 'text') return null;
  const { run, norun } = b.attrs;
  if (run === undefined && norun === undefined)
    return `a \`\`\`${b.lang} block with neither run=… (how the tests run it) nor norun="…" (why they do not): see tools/lib/doc-blocks.ts`;
  if (run !== undefined && norun !== undefined) return 'both run= and norun=';
  if (norun !== undefined && norun.trim().length < 10) return `norun="${norun}" does not say why the block is not run`;
  if (run !== undefined && !RUNS.includes(run)) return `run=${run}: unknown (one of ${RUNS.join(', ')})`;
  if (run === 'page' && b.attrs.id === undefined) return 'a run=page block needs an id= (e2e/doc-snippets.e2e.ts checks each by its id)';
  if (run === 'script-tag' && b.lang !== 'html') return 'run=script-tag is for the html page';
  if (run === 'app' && !['sh', 'js', 'ts'].includes(b.lang)) return `run=app takes sh commands, or js and ts (a module, or file=)`;
  if (run === 'app' && b.lang !== 'sh' && b.attrs.file === undefined) {
    // The example app's src/main.ts imports ./snippets/<id>.js.
    if (b.attrs.id === undefined) return 'a run=app module needs an id= (e2e/consumer-app.e2e.ts imports it by its id), or file= for a file of the app';
    if (b.lang !== 'js') return 'a run=app module is js (the example app imports src/snippets/<id>.js); a ts block can be a file= of the app';
  }
  return null;
}

/** A sh block's commands: continuation lines joined, comments and blank lines dropped. */
export function shellCommands(code: string): string[] {
  return code
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter((l) => l !== '');
}

/** The packages an `npm install a b c` command names; anything more on the line is refused. */
export function npmInstallPackages(code: string): string[] {
  const line = shellCommands(code).find((c) => c.startsWith('npm install '));
  if (line === undefined) throw new Error('no npm install command');
  const words = line.split(/\s+/).slice(2);
  const bad = words.filter((w) => !/^(@[\w.-]+\/)?[\w.-]+$/.test(w));
  if (bad.length > 0) throw new Error(`"${line}": a line the consumer test cannot run as an install of packages (${bad.join(' ')})`);
  return words;
}

/** run= values, each with the test that runs those blocks. */
export const RUNS = ['page', 'app', 'script-tag'];

/** Where the guide's script-tag page is put together (git-ignored): e2e/lib-script-tag.e2e.ts and `npm run examples` serve it. */
export const SCRIPT_TAG_DIR = join(REPO_ROOT, 'examples', 'script-tag');

/**
 * Lays out the guide's script-tag page as the guide tells a page author to:
 * the page, the library's files in wildtta/ beside it, the model in models/.
 * Here the two folders are links to dist/ and public/models/.
 */
export function assembleScriptTagPage(dir = SCRIPT_TAG_DIR): string {
  const page = blocksToRun('script-tag');
  if (page.length !== 1) throw new Error(`expected one run=script-tag block, found ${page.length}: ${page.map(where).join(', ')}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'index.html'), page[0]!.code);
  for (const [name, target] of [
    ['wildtta', join(REPO_ROOT, 'dist')],
    ['models', join(REPO_ROOT, 'public', 'models')],
  ] as const) {
    rmSync(join(dir, name), { recursive: true, force: true });
    symlinkSync(relative(dir, target), join(dir, name), 'dir');
  }
  return dir;
}
