// The global WildTTA of wildtta.iife.js; it finds its worker and .wasm files beside its own script.
window.runCheck = (options, images) => window.wildttaCheck(window.WildTTA, options, images);
if (!new URLSearchParams(location.search).has('manual')) {
  window.runCheck({ worker: true }).then(
    (r) => (document.getElementById('status').textContent = `${r.steps} steps on ${r.backend}; last: ${r.lastLabel}`),
    (e) => (document.getElementById('status').textContent = `${e.name}: ${e.message}`),
  );
}
