#!/usr/bin/env bash
# wildtta's bench:gpu, packed (npm run bench:gpu:pack): tfjs's WebGPU backend and wildtta's WGSL
# kernels in Node on Dawn, on this machine's GPU through Vulkan; then PyTorch's SAR step on CUDA
# where python3 has torch with CUDA. Linux x86-64 only. Needs no registry and no npm.
#
#   ./run.sh                                 every size (fmnist-vit, fmnist-resnet-gn, ti, s, b, rn50), 10 steps
#   ./run.sh --sizes ti,b --steps 20         any option of `npm run bench:gpu`
#
# Results: results/bench-gpu.json and a markdown table on stdout.
#
# Needs the Vulkan loader, libvulkan.so.1 (Debian/Ubuntu package libvulkan1), and the GPU's Vulkan
# driver (NVIDIA: part of the driver; in a container, the NVIDIA container toolkit with the
# "graphics" capability, NVIDIA_DRIVER_CAPABILITIES=all). When the loader finds no device, the
# bench tries NVIDIA's ICD file itself at /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json,
# /usr/share/vulkan/icd.d/nvidia_icd.json and /etc/vulkan/icd.d/nvidia_icd.json; to name one:
#   VK_DRIVER_FILES=/path/to/nvidia_icd.json ./run.sh
#
# Node: the `node` on PATH when it is version 20 or later, else the packed one (node.xz, unpacked
# once into .node/ here, or into a temporary folder where this one is read-only).
# WILDTTA_PACKED_NODE=1 uses the packed one regardless.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "run.sh: packed for Linux x86-64, this is $(uname -s)-$(uname -m)" >&2
  exit 1
fi

cache="$here/.unpacked"
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then cache="$(mktemp -d)"; fi

unxz_to() { # unxz_to FILE.xz DEST: xz-utils, or Python's lzma where xz is missing
  if [ -s "$2" ]; then return 0; fi
  if command -v xz >/dev/null; then
    xz -dc "$1" >"$2.part"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2.part"
  fi
  mv "$2.part" "$2"
}

node_ok() { command -v node >/dev/null && node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; }
if [ "${WILDTTA_PACKED_NODE:-0}" != "1" ] && node_ok; then
  node_bin="$(command -v node)"
else
  unxz_to "$here/node.xz" "$cache/node"
  chmod +x "$cache/node"
  node_bin="$cache/node"
fi
unxz_to "$here/dawn.node.xz" "$cache/dawn.node"

if ! { ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; } && [ ! -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ] && [ ! -e /usr/lib64/libvulkan.so.1 ]; then
  echo "run.sh: no libvulkan.so.1 found: Dawn needs the Vulkan loader (Debian/Ubuntu: apt-get install libvulkan1)" >&2
fi

echo "node: $node_bin ($("$node_bin" --version)); $(cat "$here/VERSION")"
mkdir -p results 2>/dev/null || true
export WILDTTA_DAWN_NODE="$cache/dawn.node"
export WILDTTA_MODELS_DIR="$here/models"
export WILDTTA_TORCH_SCRIPT="$here/torch/time_torch_gpu.py"
# Dawn's Vulkan backend warns on stderr about each ICD it cannot use; the bench says which it used.
exec "$node_bin" "$here/bench-gpu.mjs" --json "$here/results/bench-gpu.json" "$@"
