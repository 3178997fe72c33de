// What the docs' taste of the API calls the page's own: the buttons saveButton
// and restoreButton (elements with those ids), a playing video, an image, and
// show(). e2e/consumer-app.e2e.ts runs the docs' modules on this page
// (?snippet=<id>, see src/main.ts) and reads window.shown.
window.shown = [];
window.show = (r) => window.shown.push(r.label);
window.pageReady = (async () => {
  // A bright upright bar on black, Fashion-MNIST's "Trouser" as a sketch, that sways a little.
  const c = document.createElement('canvas');
  c.width = c.height = 112;
  const g = c.getContext('2d');
  let t = 0;
  const draw = () => {
    g.fillStyle = '#000';
    g.fillRect(0, 0, 112, 112);
    g.fillStyle = '#ddd';
    g.fillRect(40 + (t++ % 4), 12, 32, 88);
  };
  draw();
  const img = document.querySelector('img');
  img.src = c.toDataURL();
  await img.decode();
  // The video plays the canvas; a stream only sends frames while the canvas changes.
  setInterval(draw, 50);
  const video = document.getElementById('video');
  video.srcObject = c.captureStream(20);
  await video.play();
})();
