// The table of method defaults in docs/methods.md, from the method registry
// (src/methods/registry.ts: each method's defaults, with where they came from).
//
//   npm run defaults:table          rewrites the block between <!-- defaults --> and <!-- /defaults --> in docs/methods.md
//
// tools/defaults-table.test.ts fails when that page's block is not this table.
import { readFileSync, writeFileSync } from 'node:fs';
import { METHODS } from '../src/methods/registry';

/** The page that prints the table (relative to the repository root). */
export const DOC = 'docs/methods.md';
export const BEGIN = '<!-- defaults -->';
export const END = '<!-- /defaults -->';

export function defaultsTable(): string {
  const rows = ['| method | option | default | where it comes from |', '|---|---|---|---|'];
  for (const [method, spec] of Object.entries(METHODS)) {
    const entries = Object.entries(spec.defaults);
    if (entries.length === 0) rows.push(`| ${method} | – | – | no adaptation: nothing to set |`);
    for (const [name, d] of entries) rows.push(`| ${method} | \`${d.option ?? name}\` | ${d.shown ?? d.value} | ${d.from} |`);
  }
  return rows.join('\n');
}

/** The block between the markers in a page's text, or undefined. */
export function docBlock(text: string): string | undefined {
  const i = text.indexOf(BEGIN);
  const j = text.indexOf(END);
  return i >= 0 && j > i ? text.slice(i + BEGIN.length, j).trim() : undefined;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const text = readFileSync(DOC, 'utf8');
  const i = text.indexOf(BEGIN);
  const j = text.indexOf(END);
  if (i < 0 || j < i) throw new Error(`${DOC} has no ${BEGIN} … ${END} block`);
  writeFileSync(DOC, `${text.slice(0, i + BEGIN.length)}\n${defaultsTable()}\n${text.slice(j)}`);
  console.log(`${DOC}: defaults table rewritten`);
}
