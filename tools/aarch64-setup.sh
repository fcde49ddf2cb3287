#!/usr/bin/env bash
# Installs Debian's aarch64 cross toolchain and qemu-user, once per machine.
# Idempotent: does nothing when the pieces are already there.
set -euo pipefail
need=0
for c in /usr/bin/rustc /usr/bin/cargo aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v "$c" >/dev/null 2>&1 || need=1
done
[ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ] || need=1
if [ "$need" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  dpkg --add-architecture arm64
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends rustc-web cargo-web \
    libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi
/usr/bin/rustc --version
