#!/usr/bin/env bash
# Puts a lavapipe (Mesa's software Vulkan) that Dawn accepts under artifacts/lavapipe/, for
# `npm run bench:gpu` and its test on a machine without a GPU. Debian 12's own mesa-vulkan-drivers
# (Mesa 22.3) is refused by Dawn ("Vulkan shaderUniform*ArrayDynamicIndexing required"), so this
# takes bookworm-backports' mesa-vulkan-drivers (Mesa 25) with apt-get download
# and unpacks them here: the system's packages stay as they are. Needs libvulkan1 (the loader) and
# libllvm15 (what the backport links against; the system's mesa-vulkan-drivers pulls it in).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=artifacts/lavapipe
if [ -f "$dest/lvp_icd.json" ] && [ -f "$dest/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" ]; then exit 0; fi
apt=$(mktemp -d)
trap 'rm -rf "$apt"' EXIT
mkdir -p "$apt/lists/partial" "$dest"
echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main' >"$apt/sources.list"
opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$apt/lists" -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -qq
(cd "$apt" && apt-get "${opts[@]}" download -qq mesa-vulkan-drivers/bookworm-backports)
for deb in "$apt"/*.deb; do dpkg-deb -x "$deb" "$dest/root"; done
lib="$(pwd)/$dest/root/usr/lib/x86_64-linux-gnu"
printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s/libvulkan_lvp.so","api_version":"1.4.305"}}\n' "$lib" >"$dest/lvp_icd.json"
echo "lavapipe in $dest ($(dpkg-deb -f "$apt"/mesa-vulkan-drivers_*.deb Version))"
