// Which tfjs backend the page-thread instances use. tfjs keeps one backend per
// JavaScript realm (tf.setBackend is global), so a second page-thread
// instance that set another one would move the first onto it without a word:
// the first would still report its own backend while running on the other.
// create() claims the backend here first and is refused when a live
// page-thread instance holds a different one. A worker has its own tfjs, so
// `worker: true` instances never claim.
import { BackendError, type BackendChoice } from '../runtime/backend';

/** A page-thread instance (worker: false) asked for a backend other than the one a live page-thread instance runs on. */
export class BackendInUseError extends BackendError {
  override readonly name: string = 'BackendInUseError';
  constructor(
    /** The backend asked for. */
    readonly requested: string,
    /** The backend the live page-thread instance runs on. */
    readonly inUse: string,
  ) {
    super(
      `backend ${requested} was asked for, but another WildTTA instance on this page's thread runs on ${inUse}, and tfjs has one backend per thread: ` +
        `switching would move that instance onto ${requested} too. Use worker: true (each worker has its own tfjs), the same backend (${inUse}) or 'auto', ` +
        `or dispose() the other instance first`,
      [],
    );
  }
}

/** One page-thread instance's hold on the backend; `backend` is undefined while 'auto' has not chosen yet. */
export interface BackendClaim {
  backend: string | undefined;
  release(): void;
}

const claims = new Set<BackendClaim>();

/**
 * Claims `choice` for a page-thread instance being created, or throws
 * BackendInUseError (before any backend is touched) when a live one holds
 * another. 'auto' is never refused: the engine keeps the backend the page's
 * tfjs already runs (engine.ts), which is the live instances' one.
 */
export function claimPageBackend(choice: BackendChoice): BackendClaim {
  if (choice !== 'auto') {
    const other = [...claims].find((c) => c.backend !== undefined && c.backend !== choice);
    if (other) throw new BackendInUseError(choice, other.backend!);
  }
  const claim: BackendClaim = {
    backend: choice === 'auto' ? undefined : choice,
    release: () => claims.delete(claim),
  };
  claims.add(claim);
  return claim;
}
