#!/bin/sh
# Benchmark of the content-addressed store (rmake-cas): re-snapshot of an unchanged
# 10,000-file tree and disk-store put/get throughput beside `cp -r` on the same disk.
# Usage: bench/cas.sh [--dir DIR] [--files N] [--big-mib MIB] [--small N]
# (DIR must be on the disk to measure; the default is $TMPDIR or /tmp.)
set -eu
cd "$(dirname "$0")/.."
exec cargo bench -q -p rmake-cas --bench cas-snapshot -- "$@"
