#!/usr/bin/env bash
# `just dist`: static (musl) release builds of vds-proxy for x86_64 and aarch64 nodes in
# dist/, built with cargo-zigbuild (zig, from PyPI's `ziglang`, compiles the bundled SQLite
# and links). Each build is smoke-tested: the x86_64 one here, the aarch64 one under
# qemu-user. Name them in vds-proxy.toml (relay_binaries) for a fleet that mixes both.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
python3 -c 'import ziglang' 2>/dev/null || python3 -m pip install -q ziglang
command -v cargo-zigbuild >/dev/null 2>&1 || cargo install --locked cargo-zigbuild
command -v qemu-aarch64-static >/dev/null 2>&1 || {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
}
mkdir -p dist
for arch in x86_64 aarch64; do
  target=$arch-unknown-linux-musl
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  start=$(date +%s)
  cargo zigbuild --release --locked -q --target "$target"
  cp "target/$target/release/vds-proxy" "dist/vds-proxy-$arch.tmp"
  mv -f "dist/vds-proxy-$arch.tmp" "dist/vds-proxy-$arch"
  echo "dist/vds-proxy-$arch: $(stat -c %s "dist/vds-proxy-$arch") bytes, built in $(($(date +%s) - start)) s"
done
# The builds run: the aarch64 one through qemu-user, as on a Raspberry Pi.
dist/vds-proxy-x86_64 relay --help | head -1
qemu-aarch64-static dist/vds-proxy-aarch64 relay --help | head -1
qemu-aarch64-static dist/vds-proxy-aarch64 --version
(cd dist && sha256sum vds-proxy-x86_64 vds-proxy-aarch64 > SHA256SUMS && cat SHA256SUMS)
echo "vds-proxy.toml for a fleet of both:"
printf '  relay_binary = "%s/dist/vds-proxy-x86_64"\n  [relay_binaries]\n  aarch64 = "%s/dist/vds-proxy-aarch64"\n' "$PWD" "$PWD"
