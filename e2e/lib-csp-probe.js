// Loaded by e2e/lib-script-tag.e2e.ts to show its CSP check can fail: under the
// examples' policy this eval must be refused and reported as a violation.
try {
  // eslint-disable-next-line no-eval -- the eval the policy must refuse
  window.__probe = String(eval('1 + 1'));
} catch (e) {
  window.__probe = e.name;
}
