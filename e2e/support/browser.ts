// Browser-test support: the shared session (./session), shut down by an after()
// hook when the importing test file's tests are done.
//
//   import { withPage, assertNoPageErrors } from './support/browser';
//   test('...', () => withPage(async (h) => { const r = await h.call('smoke', 'webgl'); ... }));
import { after } from 'node:test';
import { shutdown } from './session';

export * from './session';

after(shutdown);
