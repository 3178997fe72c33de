// The same check for both pages of this app (the ES module in src/main.ts and
// the script tag in script-tag.html): load the shipped model, classify 20
// frames, each of which adapts the model when it is reliable, and report.
window.wildttaCheck = async (api, options, images) => {
  const tta = await api.create({ model: '/models/fmnist-vit/', backend: 'wasm', method: 'sar-align', ...options });
  try {
    // Without images from the caller: a bright upright bar on black, Fashion-MNIST's "Trouser" as a sketch.
    const frames = images ?? Array.from({ length: 20 }, (_, i) => Array.from({ length: 784 }, (_, j) => (Math.abs((j % 28) - 14) < 4 + (i % 3) && j > 84 && j < 700 ? 220 : 0)));
    const out = { backend: tta.backend, method: tta.method.method, classes: [], steps: 0, updated: 0, tensors: [], lastLabel: '' };
    for (const px of frames) {
      const id = new ImageData(28, 28);
      px.forEach((v, j) => {
        id.data[4 * j] = id.data[4 * j + 1] = id.data[4 * j + 2] = v;
        id.data[4 * j + 3] = 255;
      });
      const r = await tta.classify(id);
      out.classes.push(r.classIndex);
      out.steps = r.step;
      out.updated += r.updates.filter((u) => u.updated).length;
      out.tensors.push(r.numTensors);
      out.lastLabel = r.label;
    }
    // An update that finished after the last frame's result reaches the CPU with the next one.
    const last = await tta.classify(new ImageData(28, 28));
    out.updated += last.updates.filter((u) => u.updated).length;
    return out;
  } finally {
    await tta.dispose();
  }
};
