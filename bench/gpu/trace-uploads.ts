// Where a SAR step's device work comes from, on Dawn: its buffer creations
// and the tensors it makes from JS values (each an upload on WebGPU, with a
// staging buffer of its own), grouped by the first wildtta frames of their
// stacks, and its kernels by name. For work on bench:gpu's per-step counts.
//
//   node --import tsx bench/gpu/trace-uploads.ts [size] [--lavapipe]     (size: bench:gpu's, default tiny; 224-px ViTs at depth 2)
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { installDawn } from './dawn';

Error.stackTraceLimit = 60;
const size = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'tiny';
await installDawn({ lavapipe: process.argv.includes('--lavapipe') });
const { buildModel } = await import('./run');
const tf = await import('@tensorflow/tfjs');
const { createAdapter } = await import('../../src/methods');
const { WEBGPU_FLAGS } = await import('../../src/runtime/backend');
for (const [k, v] of Object.entries(WEBGPU_FLAGS)) tf.env().set(k, v);
await tf.setBackend('webgpu');

const model = buildModel({ size, seed: 1, modelsDir: 'public/models', depth: 2 });
const { imageSize: S, inChannels: C } = model.config;
const x = tf.randomUniform([1, S, S, C]) as import('@tensorflow/tfjs').Tensor4D;
const sar = await createAdapter(model, { method: 'sar', marginFraction: 10, warmup: true });
const step = async () => {
  await sar.step(x);
  await sar.flush();
};
// Two steps first: tfjs's buffer pool fills on the first ones.
await step();
await step();

/** The first frames of the current stack in this repository's src/ and bench/ (tfjs's own source maps also name src/ files, which are not here). */
const where = () =>
  (new Error().stack ?? '')
    .split('\n')
    .map((l) => /\((\/[^()]+\.ts):(\d+):\d+\)$/.exec(l.trim()) ?? /at (\/[^()]+\.ts):(\d+):\d+$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null && /\/(src|bench)\//.test(m[1]!) && !m[1]!.includes('trace-uploads') && existsSync(m[1]!))
    .filter((m) => m[1]!.startsWith(`${process.cwd()}/`))
    .slice(0, 4)
    .map((m) => `${relative(process.cwd(), m[1]!)}:${m[2]}`)
    .join(' < ');
const tally = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
const print = (title: string, m: Map<string, number>) => {
  console.log(`${title}: ${[...m.values()].reduce((a, b) => a + b, 0)}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1])) console.log(`${String(v).padStart(5)}  ${k}`);
};

const buffers = new Map<string, number>();
const device = (globalThis as unknown as { GPUDevice: { prototype: Record<string, (...a: unknown[]) => unknown> } }).GPUDevice.prototype;
const createBuffer = device.createBuffer!;
device.createBuffer = function (this: unknown, ...a: unknown[]) {
  const d = a[0] as { size: number; usage: number; mappedAtCreation?: boolean };
  tally(buffers, `${where()} [${d.size} bytes, usage ${d.usage}${d.mappedAtCreation ? ', mapped' : ''}]`);
  return createBuffer.apply(this, a);
};
// backend.write with values is a tensor made from JS values (tfjs passes null for its kernels' outputs).
const backend = tf.backend() as unknown as { write: (...a: unknown[]) => unknown };
const write = backend.write.bind(backend);
const writes = new Map<string, number>();
backend.write = (...a: unknown[]) => {
  if (a[0] != null) tally(writes, where());
  return write(...a);
};
await step();
device.createBuffer = createBuffer;
backend.write = write;
print('buffers created in one step', buffers);
print('tensors made from JS values in one step', writes);

const p = await tf.profile(step);
const kernels = new Map<string, number>();
for (const k of p.kernels) tally(kernels, k.name);
console.log(`kernels in one step: ${p.kernels.length}`);
console.log(
  [...kernels]
    .sort((a, b) => b[1] - a[1])
    .map(([n, c]) => `${n}×${c}`)
    .join(' '),
);
sar.dispose();
model.dispose();
x.dispose();
