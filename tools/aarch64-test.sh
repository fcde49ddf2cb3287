#!/usr/bin/env bash
# Cross-builds the kernel tests for aarch64 with Debian's rustc and runs them
# under qemu twice: `-cpu max` (NEON with dotprod) and `-cpu cortex-a53`
# (NEON without dotprod), so both int8 paths run. Also builds the bench
# binaries for aarch64 so the README's cross-compile recipe stays true.
# Needs tools/aarch64-setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC=/usr/bin/rustc
export RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_DIR=target/aarch64-debian
# Static glibc: with the dynamically loaded cross glibc, the first
# pthread_create spins forever under qemu-user (seen with qemu 7.2 and 10.0
# on an x86-64 host), so every multi-threaded test binary hangs. A static
# binary starts threads normally. Warnings are errors here because clippy
# runs on x86-64 only and would not see aarch64-only code.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static -D warnings"
target=aarch64-unknown-linux-gnu
cargo=/usr/bin/cargo

# Debian's cargo reads the same Cargo.lock; offline use of the registry cache
# is not assumed.
$cargo build --tests -p edgecl-kernels --target $target
for cpu in max cortex-a53; do
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu $cpu"
  echo "--- qemu -cpu $cpu"
  PROPTEST_CASES="${PROPTEST_CASES:-64}" $cargo test -p edgecl-kernels --target $target
done

echo "--- aarch64 bench binaries"
$cargo bench --no-run -p edgecl-benches --target $target
