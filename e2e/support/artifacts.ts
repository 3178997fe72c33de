// Where browser tests leave screenshots and generated inputs for a person to look at.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../tools/lib/session';

/** Screenshots and other test outputs (gitignored). */
export const ARTIFACTS = join(REPO_ROOT, 'e2e', '.artifacts');

export function artifact(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
