// Ships the Fashion-MNIST test split with the page: uncompressed IDX files the
// browser parses with src/data/idx.ts, plus the dataset's license and a README.
//
//   npm run pack:data -- [--data DIR] [--out public/data/fashion-mnist] [--copyright FILE]
//
// --data holds t10k-{images-idx3,labels-idx1}-ubyte(.gz) (default: Debian's
// dataset-fashion-mnist package); --copyright is the Debian copyright file the
// MIT license text is taken from.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { FASHION_MNIST_CLASSES, labeledImagesFromIdx } from '../src/data/idx';
import { DEBIAN_FMNIST_DIR } from './fmnist-node';

const { values: args } = parseArgs({
  options: {
    data: { type: 'string', default: DEBIAN_FMNIST_DIR },
    out: { type: 'string', default: 'public/data/fashion-mnist' },
    copyright: { type: 'string', default: '/usr/share/doc/dataset-fashion-mnist/copyright' },
  },
});

const FILES = ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'] as const;

function readIdx(dir: string, base: string): { bytes: Uint8Array; from: string } {
  for (const [name, gz] of [
    [`${base}.gz`, true],
    [base, false],
  ] as const) {
    const path = join(dir, name);
    if (existsSync(path)) {
      const raw = readFileSync(path);
      return { bytes: new Uint8Array(gz ? gunzipSync(raw) : raw), from: path };
    }
  }
  throw new Error(`${base}(.gz) not found in ${dir}; install Debian's dataset-fashion-mnist or pass --data DIR`);
}

/** The Expat (MIT) license body from a Debian machine-readable copyright file. */
function expatText(copyrightFile: string): string {
  if (!existsSync(copyrightFile)) {
    throw new Error(`${copyrightFile} not found; pass --copyright FILE (the Debian copyright file of dataset-fashion-mnist)`);
  }
  const lines = readFileSync(copyrightFile, 'utf8').split('\n');
  // The stand-alone license paragraph: "License: Expat" followed by the indented text
  // (the same line inside a "Files:" paragraph has nothing indented after it).
  const start = lines.findIndex((l, i) => /^License:\s*Expat\s*$/.test(l) && lines[i + 1]?.startsWith(' '));
  if (start < 0) throw new Error(`${copyrightFile} has no stand-alone "License: Expat" paragraph`);
  const body: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith(' ')) break; // the paragraph ends at the first unindented line
    body.push(line.trim() === '.' ? '' : line.trim());
  }
  const text = body.join('\n').trim();
  if (!text.startsWith('Permission is hereby granted') || !text.includes('THE SOFTWARE IS PROVIDED "AS IS"')) {
    throw new Error(`unexpected license text in ${copyrightFile}`);
  }
  return text;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function main(): void {
  const images = readIdx(args.data, FILES[0]);
  const labels = readIdx(args.data, FILES[1]);
  const set = labeledImagesFromIdx(images.bytes, labels.bytes); // validates both files and their pairing
  if (set.count !== 10_000 || set.height !== 28 || set.width !== 28) {
    throw new Error(`expected 10,000 images of 28×28, got ${set.count} of ${set.height}×${set.width}`);
  }
  if (set.labels.some((l) => l >= FASHION_MNIST_CLASSES.length)) throw new Error('labels outside 0..9');
  const license = expatText(args.copyright);

  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, FILES[0]), images.bytes);
  writeFileSync(join(args.out, FILES[1]), labels.bytes);
  writeFileSync(join(args.out, 'LICENSE'), `The MIT License (MIT)\n\nCopyright (c) 2017 Zalando SE, https://tech.zalando.com\n\n${license}\n`);
  const counts = new Array<number>(10).fill(0);
  for (const l of set.labels) counts[l]!++;
  writeFileSync(
    join(args.out, 'README.md'),
    `# Fashion-MNIST test split

The 10,000 test images of Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017,
arXiv:1708.07747, https://github.com/zalandoresearch/fashion-mnist), shipped so
the page can evaluate and adapt its model without another download.

| file | contents | bytes | sha256 |
| --- | --- | --- | --- |
| \`${FILES[0]}\` | uint8 images [10000, 28, 28], IDX format (magic 0x00000803) | ${images.bytes.length} | \`${sha256(images.bytes)}\` |
| \`${FILES[1]}\` | uint8 labels [10000] in 0..9, IDX format (magic 0x00000801) | ${labels.bytes.length} | \`${sha256(labels.bytes)}\` |

The files are Fashion-MNIST's \`${FILES[0]}.gz\` and \`${FILES[1]}.gz\`
decompressed and otherwise unchanged (IDX is big-endian; pixels 0 = background,
255 = full intensity), so the browser reads them with \`src/data/idx.ts\`
without a gzip step. They were read from \`${args.data}\`${
      args.data === DEBIAN_FMNIST_DIR ? " (Debian's `dataset-fashion-mnist` package)" : ''
    } by \`npm run pack:data\` (\`tools/pack-fmnist.ts\`).

Classes (label, name, test images): ${FASHION_MNIST_CLASSES.map((c, i) => `${i} ${c} (${counts[i]})`).join(', ')}.

Fashion-MNIST is Copyright (c) 2017 Zalando SE and is distributed under the
MIT license; see \`LICENSE\` in this folder.
`,
  );
  console.log(`wrote ${args.out}: ${set.count} images ${set.height}×${set.width} from ${images.from}, labels from ${labels.from}`);
}

main();
