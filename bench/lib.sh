# bench/lib.sh: what the farm benchmarks share (sourced by farm.sh and cache.sh): the release
# binaries, a scratch directory cleaned up on exit, timing helpers, the cproj-200 workload and a
# loopback farm of real processes.
#
# The sourcing script sets NAME (for messages) and ROOT (the repository) first.

# bench_bins: sets BIN to the directory of the three binaries (BIN from the environment, else a
# release build into target-bench/) and checks they are there.
bench_bins() {
  if [ -z "${BIN:-}" ]; then
    BIN="$ROOT/target-bench/release"
    (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target-bench" \
      cargo build --release --bins -p rmake-cli -p rmake-coordinator -p rmake-worker >&2)
  fi
  # The runs cd into their trees: a relative BIN must not depend on where we are.
  BIN=$(cd "$BIN" 2>/dev/null && pwd) || { echo "$NAME: no directory $BIN" >&2; exit 2; }
  for b in rmake-remote rmake-coordinator rmake-worker; do
    [ -x "$BIN/$b" ] || { echo "$NAME: $BIN/$b is missing" >&2; exit 2; }
  done
}

# bench_work PREFIX: sets WORK to a new scratch directory; PIDS collects background processes;
# both are cleaned up on exit.
bench_work() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# gen_cproj DIR: 200 small C files and main.c, compiled with -O1 and linked into `app`.
gen_cproj() {
  mkdir -p "$1/src"
  for i in $(seq 1 200); do
    printf 'int f%d(int x) { return x * %d + 1; }\n' "$i" "$i" > "$1/src/f$i.c"
  done
  {
    for i in $(seq 1 200); do printf 'int f%d(int);\n' "$i"; done
    printf '#include <stdio.h>\nint main(void) { long s = 0;\n'
    for i in $(seq 1 200); do printf ' s += f%d(%d);\n' "$i" "$i"; done
    printf ' printf("%%ld\\n", s); return 0; }\n'
  } > "$1/main.c"
  cat > "$1/Makefile" <<'MK'
OBJS := main.o $(patsubst %.c,%.o,$(wildcard src/*.c))
app: $(OBJS)
	$(CC) -o $@ $^
%.o: %.c
	$(CC) -O1 -c -o $@ $<
MK
}

# bench_farm WORKERS SLOTS WORKER-PREFIX: a coordinator on a free loopback port (sets URL) and
# WORKERS workers of SLOTS slots, under $WORK/farm; returns once they are registered.
bench_farm() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL="http://127.0.0.1:$port"
  mkdir -p "$WORK/farm"
  RMAKE_LOG=warn "$BIN/rmake-coordinator" --listen "127.0.0.1:$port" --data-dir "$WORK/farm/data" \
    > "$WORK/farm/coordinator.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    curl -fs "$URL/healthz" > /dev/null 2>&1 && break
    sleep 0.05
  done
  curl -fs "$URL/healthz" > /dev/null || { echo "$NAME: coordinator did not start" >&2; cat "$WORK/farm/coordinator.log" >&2; exit 1; }
  for w in $(seq 1 "$1"); do
    mkdir -p "$WORK/farm/w$w"
    RMAKE_LOG=warn "$BIN/rmake-worker" --coordinator "$URL" --slots "$2" --work-dir "$WORK/farm/w$w" \
      --name "$3$w" > "$WORK/farm/w$w.log" 2>&1 &
    PIDS+=($!)
  done
  local n
  for _ in $(seq 1 100); do
    n=$(curl -fs "$URL/v1/farm" | python3 -c 'import json,sys; v=json.load(sys.stdin); w=v.get("workers", v) if isinstance(v, dict) else v; print(w if isinstance(w, int) else len(w))' 2>/dev/null || echo 0)
    [ "$n" -ge "$1" ] && break
    sleep 0.1
  done
}
