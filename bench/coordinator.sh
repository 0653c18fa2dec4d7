#!/usr/bin/env bash
# Loopback benchmark of the coordinator (see coordinator/examples/bench.rs):
# 1 GiB as 64 MiB blobs and 20,000 blobs of 1-8 KiB through the batch endpoints, up and down,
# beside `cp -r` of the same files on the same disk. Usage: bench/coordinator.sh [SCRATCH_DIR]
# (default: a directory under target/, i.e. the same disk as the build).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
scratch="${1:-$target/bench-scratch}"
mkdir -p "$scratch"
cargo build --release -p rmake-coordinator --example bench
RMAKE_LOG="${RMAKE_LOG:-warn}" "$target/release/examples/bench" "$scratch"
