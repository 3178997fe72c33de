// Browser-test support: the shared session (tools/lib/session.ts), shut down by
// an after() hook when the importing test file's tests are done, and the test
// harness page (e2e/harness.html), which withPage opens unless given a path.
//
//   import { withPage, assertNoPageErrors } from './support/browser';
//   test('...', () => withPage(async (h) => { const r = await h.call('smoke', 'webgl'); ... }));
import { after } from 'node:test';
import { shutdown, withPage as withSessionPage, type SessionPage, type WithPageOptions } from '../../tools/lib/session';
import type { WildttaHarness } from '../harness';

export { REPO_ROOT, assertNoPageErrors, baseUrl, pageErrors, setExtraChromiumArgs, shutdown, type SessionPage } from '../../tools/lib/session';

after(shutdown);

/** A page of the harness, with what it logged. */
export interface HarnessPage extends SessionPage {
  /** Calls window.wildttaHarness[name](...args) in the page and returns its (plain-data) result. */
  call<K extends keyof WildttaHarness>(name: K, ...args: Parameters<WildttaHarness[K]>): Promise<Awaited<ReturnType<WildttaHarness[K]>>>;
}

/**
 * Opens the harness (or `opts.path`, e.g. the demo) in a fresh page and runs
 * `fn`. The harness is waited for until window.wildttaHarness exists, and a
 * reload of it is a page error.
 */
export function withPage<T>(fn: (h: HarnessPage) => Promise<T>, opts: Partial<WithPageOptions> = {}): Promise<T> {
  const options: WithPageOptions =
    opts.path === undefined
      ? { ...opts, path: 'e2e/harness.html', readyWhen: 'window.wildttaHarness !== undefined', singleLoad: true }
      : { ...opts, path: opts.path };
  return withSessionPage(
    (p) =>
      fn({
        ...p,
        call: (name, ...args) => {
          // A string expression, not a function: the test file is compiled by tsx/esbuild,
          // whose helpers (e.g. __name) do not exist inside the page.
          const expr = `window.wildttaHarness[${JSON.stringify(name)}](...${JSON.stringify(args)})`;
          return p.page.evaluate(expr) as never;
        },
      }),
    options,
  );
}
