// `npm run lint`: typescript-eslint over every TypeScript file, the layering
// of src/ (data flows one way: kernels → model → methods → runtime → api;
// data feeds both ends), the layering around it (tools/ ← bench/ ← e2e/, the
// demo on src/ alone), and the project's own rules (no dataSync, no eval).
// Formatting is Prettier's (`npm run format`); this config turns off the
// rules that would fight it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import globals from 'globals';

/** What each src/ folder may not import: the layers above it. */
const LAYERS = {
  kernels: ['model', 'methods', 'runtime', 'api', 'data'],
  data: ['kernels', 'model', 'methods', 'runtime', 'api'],
  model: ['methods', 'runtime', 'api'],
  methods: ['runtime', 'api'],
  runtime: ['api'],
  api: [],
};

const outside = ['demo', 'bench', 'e2e', 'tools', 'examples'];

/** no-restricted-imports patterns for a file in src/<layer>/. */
function layerPatterns(layer) {
  const above = LAYERS[layer].map((l) => ({
    group: [`**/${l}/*`, `**/${l}`, `../${l}/*`, `../${l}`],
    message: `src/${layer} may not import src/${l}: data flows one way (docs/architecture.md).`,
  }));
  const tree = outside.map((d) => ({ group: [`**/${d}/*`], message: `src/ may not import ${d}/: the product does not depend on its tools.` }));
  return [...above, ...tree];
}

/** What each folder of tooling (and the demo) may not import. e2e/ may import them all: it tests them. */
const TOOLING = {
  tools: ['bench', 'e2e'],
  bench: ['e2e'],
  demo: ['bench', 'e2e', 'tools'],
};

const TOOLING_WHY = {
  tools: 'tools/ sits under bench/ and e2e/, so a tool runs without them; what they share belongs in tools/lib/.',
  bench: 'a benchmark runs without the tests; what it shares with them belongs in tools/lib/.',
  demo: 'the demo is the app, built from src/ alone; the tooling drives it from outside.',
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'public/**', 'test-results/**', '**/*.wasm.ts', 'examples/**/dist/**', '.train*/**', 'artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.browser, ...globals.node } },
    rules: {
      // Unused arguments named _x are deliberate (an interface's parameter a method ignores).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'prefer-const': 'error',
      'no-var': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      // One GPU→CPU read per step, awaited: a synchronous read stalls the page until the GPU has finished.
      'no-restricted-properties': [
        'error',
        { property: 'dataSync', message: 'await tensor.data() instead: a synchronous read blocks the page on the GPU.' },
        { property: 'arraySync', message: 'await tensor.array() instead: a synchronous read blocks the page on the GPU.' },
      ],
    },
  },
  // Tests sit beside the code they test and may reach any layer (an engine test drives a method on a model).
  ...Object.keys(LAYERS).map((layer) => ({
    files: [`src/${layer}/**/*.ts`],
    ignores: ['src/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: layerPatterns(layer) }] },
  })),
  {
    files: ['src/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: outside.map((d) => ({ group: [`**/${d}/*`], message: `src/ may not import ${d}/.` })) }] },
  },
  // Around src/, one way too: tools/ (with the helpers the others share, tools/lib/) under bench/, both under e2e/,
  // which may import what it tests. The demo is the app: src/ and nothing of the tooling.
  ...Object.entries(TOOLING).map(([folder, banned]) => ({
    files: [`${folder}/**/*.ts`, `${folder}/**/*.mjs`, `${folder}/**/*.js`],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: banned.map((d) => ({ group: [`**/${d}/*`, `**/${d}`], message: `${folder}/ may not import ${d}/: ${TOOLING_WHY[folder]}` })) },
      ],
    },
  })),
  prettier,
);
