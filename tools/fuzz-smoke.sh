#!/usr/bin/env bash
# Short fuzz runs of every cargo-fuzz target in fuzz/ (crash-only checks
# of the container reader and the HNSW graph loader). Each target gets a
# seed corpus written by fuzz/seeds (a
# few valid containers), then runs for FUZZ_SECONDS (default 30).
# Needs the nightly toolchain; installs cargo-fuzz if missing.
# Corpus and artifacts stay under fuzz/ and out of git.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-30}"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz-smoke: no nightly toolchain; install it with 'rustup toolchain install nightly'" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# Seeds: valid containers (an index with vectors, quantizers and a graph).
seeds="fuzz/corpus/seeds"
mkdir -p "$seeds"
cargo run -q --manifest-path fuzz/Cargo.toml -p edgecl-fuzz-seeds -- "$seeds"

targets=$(cd fuzz && cargo +nightly fuzz list)
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
  # Mode byte 0 (checksums as stored) and 1 (header checksum fixed up).
  for f in "$seeds"/*; do
    for m in 0 1; do
      { printf "\\x0$m"; cat "$f"; } > "fuzz/corpus/$t/seed-$m-$(basename "$f")"
    done
  done
  echo "=== fuzz $t for ${secs}s"
  (cd fuzz && cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -max_len=65536)
done
echo "fuzz-smoke: all targets ran clean"
