// WebGPU in Node through Dawn (the `webgpu` npm package's dawn.node), for
// `npm run bench:gpu`: the same tfjs WebGPU backend and WGSL kernels the
// browser runs, on whatever Vulkan device the machine has. Also counts what
// a step asks of the device (dispatches, pipelines, buffers, reads), by
// wrapping Dawn's prototypes, so the counts do not depend on tfjs internals.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';

/** Where tools/fetch-lavapipe.sh leaves a lavapipe that Dawn accepts (Debian 12's Mesa 22 lacks a feature Dawn needs). */
export const LAVAPIPE_ICD = resolve('artifacts/lavapipe/lvp_icd.json');
/** Where NVIDIA's container toolkit puts its Vulkan ICD; the Vulkan loader does not always look there. */
export const NVIDIA_ICDS = [
  '/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json',
  '/usr/share/vulkan/icd.d/nvidia_icd.json',
  '/etc/vulkan/icd.d/nvidia_icd.json',
];

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** The Vulkan ICD file the loader was pointed at, when one was (VK_DRIVER_FILES). */
  icd: string | null;
  timestampQuery: boolean;
  software: boolean;
}

/** What the device was asked to do, since the last reset. */
export interface DeviceCounts {
  dispatches: number;
  pipelines: number;
  buffers: number;
  bindGroups: number;
  submits: number;
  /** mapAsync calls for reading: GPU→CPU round trips. */
  reads: number;
  writeBuffers: number;
}

export const counts: DeviceCounts = { dispatches: 0, pipelines: 0, buffers: 0, bindGroups: 0, submits: 0, reads: 0, writeBuffers: 0 };

export function resetCounts(): void {
  for (const k of Object.keys(counts) as Array<keyof DeviceCounts>) counts[k] = 0;
}

export function snapshotCounts(): DeviceCounts {
  return { ...counts };
}

type Proto = Record<string, (...args: unknown[]) => unknown>;

/** Wraps `proto[method]` so each call adds one to counts[key] (when `when` says so). */
function count(proto: Proto | undefined, method: string, key: keyof DeviceCounts, when?: (args: unknown[]) => boolean): void {
  const original = proto?.[method];
  if (proto === undefined || typeof original !== 'function') return;
  proto[method] = function (this: unknown, ...args: unknown[]) {
    if (when === undefined || when(args)) counts[key]++;
    return original.apply(this, args);
  };
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

interface DawnModule {
  create(flags: string[]): { requestAdapter(o?: object): Promise<GpuAdapter | null> };
  globals: Record<string, { prototype: Proto } | unknown>;
}

interface GpuAdapter {
  info: Partial<Omit<AdapterInfo, 'icd' | 'timestampQuery' | 'software'>>;
  features: Set<string>;
}

let installed: AdapterInfo | undefined;

/**
 * Puts Dawn's GPU at navigator.gpu (before tfjs-backend-webgpu is imported:
 * it registers itself only where navigator.gpu exists) and returns the
 * adapter tfjs will get. Without VK_DRIVER_FILES it tries the system's
 * Vulkan drivers, then NVIDIA's ICD where the loader may not look, then the
 * fetched lavapipe. `lavapipe`: use the fetched lavapipe only.
 */
export async function installDawn(o: { lavapipe?: boolean } = {}): Promise<AdapterInfo> {
  if (installed) return installed;
  const require = createRequire(import.meta.url);
  // The packed bench sets WILDTTA_DAWN_NODE to the dawn.node beside it; in the repo it is the package's own.
  const addon = process.env.WILDTTA_DAWN_NODE ?? join(resolve('node_modules/webgpu'), 'dist', `${process.platform}-${process.arch}`, 'dawn.node');
  if (!existsSync(addon)) throw new Error(`no Dawn addon at ${addon} (npm ci installs the webgpu package; the packed bench ships it)`);
  const dawn = require(addon) as DawnModule;
  Object.assign(globalThis, dawn.globals);
  const g = dawn.globals as Record<string, { prototype: Proto }>;
  count(g.GPUComputePassEncoder?.prototype, 'dispatchWorkgroups', 'dispatches');
  count(g.GPUDevice?.prototype, 'createComputePipeline', 'pipelines');
  count(g.GPUDevice?.prototype, 'createComputePipelineAsync', 'pipelines');
  count(g.GPUDevice?.prototype, 'createBuffer', 'buffers');
  count(g.GPUDevice?.prototype, 'createBindGroup', 'bindGroups');
  count(g.GPUQueue?.prototype, 'submit', 'submits');
  count(g.GPUQueue?.prototype, 'writeBuffer', 'writeBuffers');
  // GPUMapMode.READ = 1: tfjs maps staging buffers for reading only to bring data to the CPU.
  count(g.GPUBuffer?.prototype, 'mapAsync', 'reads', (args) => ((args[0] as number) & 1) === 1);

  const candidates: Array<string | null> = [];
  if (o.lavapipe) candidates.push(LAVAPIPE_ICD);
  else if (process.env.VK_DRIVER_FILES) candidates.push(process.env.VK_DRIVER_FILES);
  else candidates.push(null, ...NVIDIA_ICDS.filter(existsSync), ...(existsSync(LAVAPIPE_ICD) ? [LAVAPIPE_ICD] : []));
  const tried: string[] = [];
  for (const icd of candidates) {
    if (icd !== null) {
      if (!existsSync(icd)) {
        tried.push(`${icd}: missing`);
        continue;
      }
      // The Vulkan loader reads this when Dawn creates its instance, which create() does.
      process.env.VK_DRIVER_FILES = icd;
    }
    const gpu = dawn.create(['backend=vulkan']);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter === null) {
      tried.push(`${icd ?? 'the system Vulkan drivers'}: no adapter`);
      continue;
    }
    const i = adapter.info;
    const text = [i.vendor, i.architecture, i.device, i.description].join(' ');
    installed = {
      vendor: i.vendor ?? '',
      architecture: i.architecture ?? '',
      device: i.device ?? '',
      description: i.description ?? '',
      isFallbackAdapter: i.isFallbackAdapter === true,
      icd,
      timestampQuery: adapter.features.has('timestamp-query'),
      software: i.isFallbackAdapter === true || SOFTWARE.test(text),
    };
    // Node 21+ has a navigator of its own (without gpu); Node 20 has none.
    const nav = (globalThis as { navigator?: object }).navigator;
    if (nav === undefined) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    else Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
    return installed;
  }
  throw new Error(
    `no WebGPU adapter through Dawn (${tried.join('; ')}). On an NVIDIA machine: the Vulkan loader (Debian/Ubuntu package libvulkan1) and the ICD json (VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json). Here: bash tools/fetch-lavapipe.sh (Debian bookworm-backports' mesa-vulkan-drivers, lavapipe).`,
  );
}

export function describeAdapter(a: AdapterInfo): string {
  const name = [a.vendor, a.architecture, a.device, a.description].filter((s) => s).join(' / ') || 'unnamed adapter';
  return `${name}${a.isFallbackAdapter ? ' (fallback adapter)' : ''}${a.software ? ' [software: timings meaningless]' : ''}${a.icd ? ` via ${a.icd.startsWith(process.cwd()) ? relative(process.cwd(), a.icd) : a.icd}` : ''}`;
}
