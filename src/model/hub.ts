// Hub ids: `hf:org/name` names a model repository on the Hugging Face hub
// (or a mirror with its URL layout), resolved to the URLs of its files
// before anything is fetched, so the loader and the download cache only ever
// see plain URLs. A timm repository holds model.safetensors and config.json
// side by side, which is the folder layout the loader reads already.
import { modelFiles, WEIGHTS_FILE, type ModelFiles } from './files';

export const HUB_PREFIX = 'hf:';
export const DEFAULT_HUB_URL = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

/** A malformed hub id, revision or hub URL. `id` is what was given. */
export class HubIdError extends Error {
  override readonly name = 'HubIdError';
  constructor(
    readonly id: string,
    message: string,
  ) {
    super(message);
  }
}

export interface HubOptions {
  /** A branch or tag ('main', 'refs/pr/1', 'v1.0') or a commit sha; default 'main'. */
  revision?: string;
  /** The hub's address (a mirror, a test server); default https://huggingface.co. */
  hubUrl?: string;
}

export interface HubModel {
  org: string;
  name: string;
  revision: string;
  /** Whether `revision` is a commit sha: its files can never change, so a cached copy needs no revalidation. */
  immutable: boolean;
  files: ModelFiles;
}

/** Whether `model` is meant as a hub id (it may still be malformed: resolveHubModel says how). */
export const isHubId = (model: string): boolean => model.startsWith(HUB_PREFIX);

// The hub's repository names: letters, digits, '-', '_' and '.', not starting
// with a separator. '.' and '..' alone would walk the URL's path, so they are
// refused with everything else that is not a name.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** A full git commit id (the hub's are SHA-1). Branch names of 40 hex digits are not allowed by the hub. */
const COMMIT_SHA = /^[0-9a-f]{40}$/i;

/** `hf:org/name` → the URLs of its model.safetensors, config.json and source-stats.safetensors at `revision` on `hubUrl`. */
export function resolveHubModel(id: string, options: HubOptions = {}): HubModel {
  const expected = `expected the form hf:org/name (e.g. hf:timm/convnext_atto.d2_in1k)`;
  if (!isHubId(id)) throw new HubIdError(id, `"${id}" is not a hub id: ${expected}`);
  const parts = id.slice(HUB_PREFIX.length).split('/');
  if (parts.length !== 2 || !parts.every((p) => SEGMENT.test(p) && p.length <= 96 && !p.includes('..')))
    throw new HubIdError(id, `malformed hub id "${id}": ${expected}`);
  const [org, name] = parts as [string, string];
  const revision = options.revision ?? DEFAULT_REVISION;
  if (typeof revision !== 'string' || revision === '' || revision.trim() !== revision)
    throw new HubIdError(id, `revision for "${id}" must be a branch, tag or commit sha, got ${JSON.stringify(revision)}`);
  const base = hubBase(id, options.hubUrl ?? DEFAULT_HUB_URL);
  // One path segment: a revision such as refs/pr/1 has slashes, which the hub reads encoded.
  const folder = `${base}/${encodeURIComponent(org)}/${encodeURIComponent(name)}/resolve/${encodeURIComponent(revision)}/`;
  return { org, name, revision, immutable: COMMIT_SHA.test(revision), files: modelFiles(`${folder}${WEIGHTS_FILE}`) };
}

/** The hub's address without a trailing slash; a mirror may live under a path (https://example.com/hf). */
function hubBase(id: string, hubUrl: string): string {
  let url: URL;
  try {
    url = new URL(hubUrl);
  } catch {
    throw new HubIdError(id, `hubUrl must be an absolute http(s) URL, got ${JSON.stringify(hubUrl)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new HubIdError(id, `hubUrl must be an http(s) URL, got ${JSON.stringify(hubUrl)}`);
  if (url.search !== '' || url.hash !== '') throw new HubIdError(id, `hubUrl must have no query or fragment, got ${JSON.stringify(hubUrl)}`);
  return url.href.replace(/\/+$/, '');
}
