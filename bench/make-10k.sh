#!/usr/bin/env bash
# Generates a 10,000-target project and times GNU make against `rmake-remote --local` on:
#   parse   - parse and evaluate the Makefile (`-n` on a built tree: nothing to print)
#   noop    - a no-op build of the up-to-date tree, with the built-in implicit rules
#   noop-r  - the same with -r (no built-in rules)
# Prints the mean seconds of each and the ratio rmake/make (below 1.0: rmake is faster).
# Usage: bench/make-10k.sh [N_TARGETS] [RUNS]   (RMAKE=path/to/rmake-remote to choose the binary)
set -euo pipefail

N=${1:-10000}
RUNS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RMAKE=${RMAKE:-$ROOT/target/release/rmake-remote}
if [ ! -x "$RMAKE" ]; then
  (cd "$ROOT" && cargo build --release -p rmake-cli >&2)
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# 100 directories of N/100 sources each; one object per source through a pattern rule.
DIRS=100
PER=$(( (N + DIRS - 1) / DIRS ))
for d in $(seq 1 $DIRS); do
  mkdir -p "src/d$d"
  (cd "src/d$d" && seq 1 $PER | sed 's/.*/f&.c/' | xargs touch)
done
cat > Makefile <<'EOF'
SRCS := $(wildcard src/*/*.c)
OBJS := $(SRCS:.c=.o)
CFLAGS = -O2
all: $(OBJS)
%.o: %.c
	@cp $< $@
.PHONY: all
EOF
make -s -j4 >/dev/null
echo "project: $(ls src/*/*.o | wc -l) objects in $WORK" >&2

mean() { # command... -> mean seconds over RUNS
  if command -v hyperfine >/dev/null 2>&1; then
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/h.json" "$*" >/dev/null 2>&1
    python3 -c "import json;print('%.4f'%json.load(open('$WORK/h.json'))['results'][0]['mean'])"
  else
    "$@" >/dev/null 2>&1 || true
    local t0 t1
    t0=$(date +%s.%N)
    for _ in $(seq 1 "$RUNS"); do "$@" >/dev/null 2>&1 || true; done
    t1=$(date +%s.%N)
    echo "scale=4; ($t1 - $t0) / $RUNS" | bc
  fi
}

printf '%-8s %10s %10s %8s\n' case make rmake ratio
for c in parse noop noop-r; do
  case $c in
    parse)  args="-n" ;;
    noop)   args="" ;;
    noop-r) args="-r" ;;
  esac
  # shellcheck disable=SC2086
  m=$(mean make $args)
  # shellcheck disable=SC2086
  r=$(mean "$RMAKE" --local $args)
  printf '%-8s %10s %10s %8s\n' "$c" "$m" "$r" "$(echo "scale=2; $r / $m" | bc)"
done
