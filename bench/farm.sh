#!/usr/bin/env bash
# Farm benchmark: GNU make against rmake-remote on its embedded farm and on a loopback farm of
# WORKERS workers x SLOTS slots (release binaries), on four generated workloads:
#   fanout-1000     1000 independent tiny file targets                  (-j64)
#   sleep-640x0.1   640 targets that each `sleep 0.1`                    (-j64)
#   chain-200       a chain of 200 targets, each needing the previous one (-j64)
#   cproj-200       200 small C files compiled, then linked              (-j64)
# Each workload is generated once and copied fresh for every run. "farm" is a cold run (no
# cache entry for the workload yet); "farm-warm" builds another fresh copy on the same farm
# (every action an action-cache hit). Prints wall seconds and the ratios rmake/make.
# Usage: bench/farm.sh [--workers N] [--slots N] [--only NAME]
#   BIN=dir  use the binaries in dir (default: build target-bench/release with cargo --release)
set -euo pipefail

WORKERS=4
SLOTS=16
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) WORKERS=$2; shift 2 ;;
    --slots) SLOTS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "usage: $0 [--workers N] [--slots N] [--only NAME]" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=farm.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_bins
bench_work rmake-farm-bench

# --- workloads -------------------------------------------------------------------------------
gen_fanout() {
  mkdir -p "$1"
  {
    printf 'all:'
    for i in $(seq 1 1000); do printf ' f%04d.txt' "$i"; done
    printf '\n%%.txt:\n\t@echo $@ > $@\n'
  } > "$1/Makefile"
}
gen_sleep() {
  mkdir -p "$1"
  {
    printf 'all:'
    for i in $(seq 1 640); do printf ' s%03d.out' "$i"; done
    printf '\n%%.out:\n\t@sleep 0.1 && echo $@ > $@\n'
  } > "$1/Makefile"
}
gen_chain() {
  mkdir -p "$1"
  {
    printf 'all: c200.txt\nc0.txt:\n\techo 0 > $@\n'
    for i in $(seq 1 200); do
      printf 'c%d.txt: c%d.txt\n\tcat $< > $@ && echo %d >> $@\n' "$i" $((i - 1)) "$i"
    done
  } > "$1/Makefile"
}
# gen_cproj: in bench/lib.sh.

# --- the loopback farm -----------------------------------------------------------------------
bench_farm "$WORKERS" "$SLOTS" bench

# --- runs ------------------------------------------------------------------------------------
# run MODE WORKLOAD-DIR ARGS...: a fresh copy, one timed build; prints the seconds.
run() {
  local mode=$1 src=$2; shift 2
  local dir="$WORK/run/$mode-$(basename "$src")"
  rm -rf "$dir"; mkdir -p "$(dirname "$dir")"; cp -r "$src" "$dir"
  local log="$dir.log" t0 t1 status=0
  t0=$(now)
  case "$mode" in
    make) (cd "$dir" && make "$@") > "$log" 2>&1 || status=$? ;;
    embedded) (cd "$dir" && env -u RMAKE_COORDINATOR RMAKE_SUMMARY=1 RMAKE_CACHE_DIR="$WORK/cache-$(basename "$src")" \
                "$BIN/rmake-remote" "$@") > "$log" 2>&1 || status=$? ;;
    farm*) (cd "$dir" && RMAKE_SUMMARY=1 RMAKE_COORDINATOR="$URL" "$BIN/rmake-remote" "$@") > "$log" 2>&1 || status=$? ;;
  esac
  t1=$(now)
  if [ "$status" != 0 ]; then
    echo "farm.sh: $mode on $(basename "$src") failed (status $status); last lines:" >&2
    tail -5 "$log" >&2
    echo "FAIL"
    return
  fi
  elapsed "$t0" "$t1"
}

printf '%-15s %8s %9s %8s %10s %12s %10s %14s\n' workload make embedded farm farm-warm embedded/make farm/make farm-warm/make
for w in fanout-1000 sleep-640x0.1 chain-200 cproj-200; do
  [ -n "$ONLY" ] && [ "$ONLY" != "$w" ] && continue
  src="$WORK/src/$w"
  case "$w" in
    fanout-1000) gen_fanout "$src" ;;
    sleep-640x0.1) gen_sleep "$src" ;;
    chain-200) gen_chain "$src" ;;
    cproj-200) gen_cproj "$src" ;;
  esac
  m=$(run make "$src" -j64)
  e=$(run embedded "$src" -j64)
  f=$(run farm "$src" -j64)
  fw=$(run farm-warm "$src" -j64)
  r() { if [ "$1" = FAIL ] || [ "$2" = FAIL ]; then echo -; else ratio "$1" "$2"; fi; }
  printf '%-15s %8s %9s %8s %10s %12s %10s %14s\n' "$w" "$m" "$e" "$f" "$fw" \
    "$(r "$e" "$m")" "$(r "$f" "$m")" "$(r "$fw" "$m")"
done
echo "(seconds of wall time; farm: $WORKERS workers x $SLOTS slots on 127.0.0.1; $(nproc) CPUs)"
echo
echo "rmake-remote's own summaries (RMAKE_SUMMARY=1):"
for log in "$WORK"/run/*.log; do
  case "$log" in */make-*) continue ;; esac
  line=$(grep -E '^rmake-remote: [0-9]+ actions:' "$log" | tail -1 || true)
  printf '  %-24s %s\n' "$(basename "$log" .log)" "${line#rmake-remote: }"
done
