#!/usr/bin/env bash
#! tests/compose/run.sh: end-to-end test of the docker-compose farm (Dockerfile, docker-compose.yml):
#! a coordinator and 3 workers in containers, builds from the host compared with GNU make, a killed
#! worker, a partitioned worker, a restarted coordinator. Tears everything down on exit.
#
# Usage: tests/compose/run.sh
#
# Skips (exit 0, "SKIP: ...") when docker or compose is not available; otherwise any failure
# exits non-zero with what went wrong, the containers' logs, and everything torn down.
#
# Environment:
#   BASE                 base image (default rmake-base:bookworm, built by scripts/base-image.sh
#                        when absent; debian:bookworm-slim needs a registry)
#   CARGO_TARGET_DIR     where the release binaries are built (default <repo>/target-release)
#   RMAKE_E2E_NO_BUILD=1 use the binaries already in $CARGO_TARGET_DIR/release (no cargo build)
#   RMAKE_E2E_KEEP=1     keep the work directory (logs, trees) after the run
#   RMAKE_E2E_WORKERS    number of workers (default 3)
#
# Comparisons with GNU make that differ are all reported (MISMATCH: ...) and fail the run at the
# end, so one run shows every difference; a farm that does not come up fails at once.
# The images are tagged rmake-coordinator:e2e and rmake-worker:e2e and kept between runs as the
# build cache (the previous image is removed when a build replaces it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/compose
SEED_CASE=$ROOT/tests/golden/seeds/nonrecursive_kj_test.case
WORKERS=${RMAKE_E2E_WORKERS:-3}
JOBS=16

T0=$(date +%s.%N)
say() { printf '[compose-e2e %6ss] %s\n' "$(secs "$T0")" "$*"; }
fail() {
    printf '\nFAIL: %s\n' "$*" >&2
    exit 1
}
MISMATCHES=()
mismatch() {
    printf 'MISMATCH: %s\n' "$*" >&2
    MISMATCHES+=("$*")
}
secs() { echo "$(date +%s.%N) $1" | awk '{printf "%.1f", $1 - $2}'; }

# ---- 0. is there a docker to test with? ----
if ! command -v docker >/dev/null 2>&1; then
    echo "SKIP: docker is not installed (tests/compose/run.sh needs Docker and Compose)"
    exit 0
fi
if ! docker info >/dev/null 2>&1; then
    echo "SKIP: the Docker engine does not answer (not running, or this user may not use it)"
    exit 0
fi
if docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_CMD=(docker-compose)
else
    echo "SKIP: neither 'docker compose' nor 'docker-compose' is installed"
    exit 0
fi
for tool in python3 make cc cargo; do
    command -v "$tool" >/dev/null 2>&1 || fail "this test needs '$tool' on the host"
done

# ---- the run's own names: nothing here collides with another run or a real farm ----
RUN_ID="$(date +%s)-$$"
PROJECT="rmake-e2e-$RUN_ID"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rmake-compose-e2e.XXXXXX")
CTX=$WORK/context
random_token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
export RMAKE_TAG="${RMAKE_E2E_TAG:-e2e}"
RMAKE_TOKENS="client:$(random_token)"
RMAKE_WORKER_TOKEN="$(random_token)"
export RMAKE_TOKENS RMAKE_WORKER_TOKEN
export RMAKE_PUBLISH="127.0.0.1:"
# Leases are logged at debug; the test counts them.
export RMAKE_LOG="rmake=info,rmake_coordinator=info,rmake_coordinator::sched::leases=debug,rmake_worker=info,rmake_cas=warn"
export BASE="${BASE:-rmake-base:bookworm}"
CLIENT_TOKEN=${RMAKE_TOKENS#client:}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-release}
BIN=$TARGET_DIR/release

compose() { "${COMPOSE_CMD[@]}" -p "$PROJECT" -f "$CTX/docker-compose.yml" --project-directory "$CTX" "$@"; }

teardown() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [ -f "$CTX/docker-compose.yml" ]; then
        compose logs --no-color --timestamps >"$WORK/compose.log" 2>&1
        if [ "$rc" != 0 ]; then
            echo "---- container logs (last 40 lines each) ----" >&2
            compose logs --no-color --tail=40 >&2 2>&1
        fi
    fi
    say "teardown: compose down (containers, network, volumes)"
    [ -f "$CTX/docker-compose.yml" ] && compose down -v --remove-orphans >"$WORK/down.log" 2>&1
    if [ "${RMAKE_E2E_KEEP:-0}" = 1 ]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    if [ "$rc" = 0 ]; then say "PASS"; else say "FAILED (exit $rc)"; fi
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ---- helpers ----

# The coordinator's host port (it is published on an ephemeral loopback port, which changes
# when the container restarts).
coordinator_url() {
    local hp
    hp=$(compose port coordinator 8080 | tail -n1)
    [ -n "$hp" ] || fail "the coordinator's port is not published"
    echo "http://127.0.0.1:${hp##*:}"
}

# Asks the coordinator (python3, so the test needs neither curl nor jq):
#   farm healthz          exit 0 when GET /healthz answers {"status":"ok"}
#   farm live [NAME]      how many workers (named NAME) were heard from in the last 5 s
#   farm busy             the name of the worker holding the most leases (nothing if none)
#   farm dump             GET /v1/farm as it is
farm() {
    python3 - "$URL" "$CLIENT_TOKEN" "$@" <<'PY'
import json, sys, urllib.request
url, token, what, *rest = sys.argv[1:]
def get(path):
    req = urllib.request.Request(url + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
if what == "healthz":
    sys.exit(0 if get("/healthz").get("status") == "ok" else 1)
farm = get("/v1/farm")
workers = farm.get("workers", [])
if what == "live":
    print(sum(1 for w in workers if w["idle_ms"] < 5000 and (not rest or w["name"] == rest[0])))
elif what == "busy":
    busy = sorted((w for w in workers if w["leases"] > 0), key=lambda w: -w["leases"])
    print(busy[0]["name"] if busy else "")
elif what == "dump":
    print(json.dumps(farm, indent=1))
PY
}

# Waits until the coordinator container is healthy (Docker's own healthcheck) and answers.
wait_healthy() {
    local cid state
    cid=$(compose ps -q coordinator)
    for _ in $(seq 1 120); do
        state=$(docker inspect -f '{{.State.Health.Status}}' "$cid" 2>/dev/null || echo none)
        [ "$state" = healthy ] && break
        sleep 0.5
    done
    [ "$state" = healthy ] || fail "the coordinator is not healthy after 60s (state: $state)"
    URL=$(coordinator_url)
    farm healthz || fail "GET $URL/healthz failed from the host"
}

# Waits until N workers are registered and were heard from in the last few seconds.
wait_workers() {
    local want=$1 n
    for _ in $(seq 1 120); do
        n=$(farm live 2>/dev/null || echo 0)
        [ "$n" -ge "$want" ] && return 0
        sleep 0.5
    done
    farm dump >&2 || true
    fail "expected $want live workers, have $n after 60s"
}

# The container running the worker named $1 (a worker is named after its host name, which
# Docker sets to the container's short id).
worker_container() {
    local cid
    for cid in $(compose ps -q worker); do
        if [ "$(docker inspect -f '{{.Config.Hostname}}' "$cid")" = "$1" ]; then
            echo "$cid"
            return 0
        fi
    done
    return 1
}

# Waits until a worker holds a lease, prints its name.
busy_worker() {
    local name
    for _ in $(seq 1 200); do
        name=$(farm busy 2>/dev/null || true)
        [ -n "$name" ] && { echo "$name"; return 0; }
        sleep 0.1
    done
    return 1
}

# A manifest of a tree: every path with its type, executable bit and content digest.
manifest() {
    (
        cd "$1"
        find . -mindepth 1 -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' p; do
            if [ -L "$p" ]; then
                echo "L $p -> $(readlink "$p")"
            elif [ -d "$p" ]; then
                echo "D $p"
            else
                local x=-
                [ -x "$p" ] && x=x
                echo "F $x $(sha256sum <"$p" | cut -c1-16) $p"
            fi
        done
    )
}

# make's and rmake's messages name the program; the lines are compared as sets (-j order varies).
# rmake's summary line (RMAKE_SUMMARY=1) is not make's.
normalize_output() {
    grep -vE '^rmake-remote: [0-9]+ actions: ' "$1" |
        sed -E -e 's/^(make|rmake-remote)(\[[0-9]+\])?: /MAKE: /' | LC_ALL=C sort
}

# The summary line of a farm build: "N actions: H cache hits, R run remotely, L run locally; ...".
summary_of() { grep -hE '^rmake-remote: [0-9]+ actions: ' "$WORK/$1.rmake.err" | sed 's/^rmake-remote: //' | tail -n1; }

# Runs GNU make and rmake-remote (farm mode) on two copies of the same tree with the same
# arguments and compares exit status, files and messages. Sets RMAKE_SECS, MAKE_SECS, RMAKE_RC.
# Usage: build_and_compare LABEL SRC_TREE ARGS...
build_and_compare() {
    local label=$1 src=$2
    shift 2
    local a=$WORK/$label.rmake b=$WORK/$label.make t
    cp -a "$src" "$a"
    cp -a "$src" "$b"
    t=$(date +%s.%N)
    set +e
    (cd "$a" && RMAKE_COORDINATOR=$URL RMAKE_TOKEN=$CLIENT_TOKEN RMAKE_SUMMARY=1 "$BIN/rmake-remote" "$@" \
        >"$WORK/$label.rmake.out" 2>"$WORK/$label.rmake.err")
    RMAKE_RC=$?
    set -e
    RMAKE_SECS=$(secs "$t")
    compare_with_make "$label" "$@"
}

# The second half of build_and_compare, for a tree rmake-remote already built into
# $WORK/LABEL.rmake (exit status in RMAKE_RC).
compare_with_make() {
    local label=$1
    shift
    local a=$WORK/$label.rmake b=$WORK/$label.make t make_rc before=${#MISMATCHES[@]}
    t=$(date +%s.%N)
    set +e
    (cd "$b" && make "$@" >"$WORK/$label.make.out" 2>"$WORK/$label.make.err")
    make_rc=$?
    set -e
    MAKE_SECS=$(secs "$t")
    if [ "$RMAKE_RC" != "$make_rc" ]; then
        sed 's/^/  rmake-remote: /' "$WORK/$label.rmake.err" | tail -n 30 >&2
        mismatch "$label: rmake-remote exited $RMAKE_RC, GNU make $make_rc"
    fi
    manifest "$a" >"$WORK/$label.rmake.files"
    manifest "$b" >"$WORK/$label.make.files"
    if ! diff -u "$WORK/$label.make.files" "$WORK/$label.rmake.files" >"$WORK/$label.files.diff"; then
        cat "$WORK/$label.files.diff" >&2
        mismatch "$label: the trees differ (- GNU make, + rmake-remote)"
    fi
    cat "$WORK/$label.rmake.out" "$WORK/$label.rmake.err" >"$WORK/$label.rmake.all"
    cat "$WORK/$label.make.out" "$WORK/$label.make.err" >"$WORK/$label.make.all"
    if ! diff -u <(normalize_output "$WORK/$label.make.all") <(normalize_output "$WORK/$label.rmake.all") \
        >"$WORK/$label.out.diff"; then
        cat "$WORK/$label.out.diff" >&2
        mismatch "$label: the messages differ (- GNU make, + rmake-remote; sorted lines)"
    fi
    if [ "${#MISMATCHES[@]}" = "$before" ]; then
        VERDICT="same files, messages and exit status ($RMAKE_RC) as GNU make"
    else
        VERDICT="DIFFERS from GNU make (above)"
    fi
}

# What the coordinator logged since a time (date +%s.%N): leases granted, actions re-queued.
coordinator_log_since() { docker logs --since "$1" "$(compose ps -q coordinator)" 2>&1; }
leases_since() { coordinator_log_since "$1" | grep -cE ' leased ' || true; }
requeued_since() { coordinator_log_since "$1" | grep -cE ' re-queued ' || true; }
# Retries (attempt 2 or later) leased since a time to a worker other than $2.
retried_elsewhere_since() {
    coordinator_log_since "$1" | grep -E ' leased .*attempt=[2-9]' | grep -vcE "worker=$2( |$)" || true
}

# ---- 1. images and the farm ----
say "1. binaries: cargo build --release (target dir $TARGET_DIR)"
if [ "${RMAKE_E2E_NO_BUILD:-0}" != 1 ]; then
    t=$(date +%s.%N)
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet \
        -p rmake-coordinator -p rmake-worker -p rmake-cli) || fail "cargo build --release failed"
    say "   built in $(secs "$t")s"
fi
for b in rmake-coordinator rmake-worker rmake-remote; do
    [ -x "$BIN/$b" ] || fail "missing $BIN/$b"
done
mkdir -p "$CTX/dist"
cp "$ROOT/Dockerfile" "$ROOT/.dockerignore" "$ROOT/docker-compose.yml" "$CTX/"
cp "$BIN/rmake-coordinator" "$BIN/rmake-worker" "$CTX/dist/"

t=$(date +%s.%N)
case "$BASE" in
    rmake-base:*) "$ROOT/scripts/base-image.sh" "$BASE" || fail "scripts/base-image.sh $BASE failed" ;;
esac
BASE_SECS=$(secs "$t")
say "   base image $BASE ready in ${BASE_SECS}s"

t=$(date +%s.%N)
old_images=$(docker image inspect -f '{{.Id}}' "rmake-coordinator:$RMAKE_TAG" "rmake-worker:$RMAKE_TAG" 2>/dev/null || true)
compose build >"$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log" >&2; fail "compose build failed"; }
new_images=$(docker image inspect -f '{{.Id}}' "rmake-coordinator:$RMAKE_TAG" "rmake-worker:$RMAKE_TAG")
for id in $old_images; do
    grep -qF "$id" <<<"$new_images" || docker rmi "$id" >/dev/null 2>&1 || true
done
IMAGES_SECS=$(secs "$t")
say "   images rmake-coordinator:$RMAKE_TAG and rmake-worker:$RMAKE_TAG built in ${IMAGES_SECS}s"

t=$(date +%s.%N)
compose up -d --scale "worker=$WORKERS" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "compose up failed"; }
wait_healthy
wait_workers "$WORKERS"
UP_SECS=$(secs "$t")
say "   project $PROJECT up: coordinator healthy at $URL, $WORKERS workers registered in ${UP_SECS}s"

# The images run as the non-root user.
for svc in coordinator worker; do
    cid=$(compose ps -q "$svc" | head -n1)
    user=$(docker exec "$cid" id -un)
    [ "$user" = rmake ] || fail "the $svc container runs as '$user', not rmake"
done
say "   both services run as user rmake"

# ---- 2. real projects, compared with GNU make ----
"$HERE/cproj.sh" "$WORK/cproj" >/dev/null
: >"$WORK/cproj/.rmake.toml"
t=$(date +%s.%N)
build_and_compare cproj "$WORK/cproj" -j$JOBS all
CPROJ_RMAKE_SECS=$RMAKE_SECS
CPROJ_MAKE_SECS=$MAKE_SECS
CPROJ_JOBS=$(wc -l <"$WORK/cproj.make.out")
CPROJ_LEASES=$(leases_since "$t")
say "2. C project (6 libraries x 8 sources, $CPROJ_JOBS jobs): rmake-remote -j$JOBS all ${RMAKE_SECS}s ($CPROJ_LEASES leases), make -j$JOBS ${MAKE_SECS}s; $VERDICT"
say "   client: $(summary_of cproj)"
[ "$CPROJ_LEASES" -ge "$CPROJ_JOBS" ] || mismatch "cproj: $CPROJ_JOBS jobs but only $CPROJ_LEASES ran on workers"

mkdir -p "$WORK/seed"
awk -v dir="$WORK/seed" '
    /^-- (stdout|stderr) --$/ { out = ""; next }
    /^-- .* --$/ { name = substr($0, 4, length($0) - 6); out = dir "/" name;
                   d = out; sub(/\/[^\/]*$/, "", d); system("mkdir -p \"" d "\""); printf "" > out; next }
    out != "" { print > out }
' "$SEED_CASE"
[ -f "$WORK/seed/GNUmakefile" ] || fail "could not extract the tree of $SEED_CASE"
: >"$WORK/seed/.rmake.toml"
build_and_compare seed "$WORK/seed" -kj test
[ "$RMAKE_RC" = 2 ] || mismatch "seed: expected exit status 2 (one failing test), got $RMAKE_RC"
say "   non-recursive -kj test (seed 002): rmake-remote ${RMAKE_SECS}s, make ${MAKE_SECS}s; $VERDICT"

# ---- 3. a worker killed mid-build ----
run_in_background() { # LABEL ARGS...: starts rmake-remote on a fresh copy of the C project
    local label=$1
    shift
    cp -a "$WORK/cproj" "$WORK/$label.rmake"
    cp -a "$WORK/cproj" "$WORK/$label.make"
    BG_T=$(date +%s.%N)
    (cd "$WORK/$label.rmake" && exec env RMAKE_COORDINATOR="$URL" RMAKE_TOKEN="$CLIENT_TOKEN" RMAKE_SUMMARY=1 \
        "$BIN/rmake-remote" "$@" >"$WORK/$label.rmake.out" 2>"$WORK/$label.rmake.err") &
    BG_PID=$!
}
wait_background() {
    set +e
    wait "$BG_PID"
    RMAKE_RC=$?
    set -e
    RMAKE_SECS=$(secs "$BG_T")
}

t=$(date +%s.%N)
run_in_background kill -j$JOBS all VARIANT=1
victim=$(busy_worker) || fail "kill: no worker took a lease"
victim_cid=$(worker_container "$victim") || fail "kill: no container for worker $victim"
docker kill "$victim_cid" >/dev/null
say "3. killed worker $victim (container ${victim_cid:0:12}) while it held leases"
wait_background
[ "$RMAKE_RC" = 0 ] || { tail -n 20 "$WORK/kill.rmake.err" >&2; mismatch "kill: the build failed (exit $RMAKE_RC)"; }
compare_with_make kill -j$JOBS all VARIANT=1
elsewhere=$(retried_elsewhere_since "$t" "$victim")
say "   the build finished in ${RMAKE_SECS}s (exit $RMAKE_RC) (make: ${MAKE_SECS}s); $VERDICT; $(leases_since "$t") leases, $(requeued_since "$t") actions re-queued, $elsewhere retried on other workers"
[ "$elsewhere" -ge 1 ] || mismatch "kill: no action of the killed worker was retried on another worker"
docker start "$victim_cid" >/dev/null
wait_workers "$WORKERS"
say "   restarted the killed container: $WORKERS workers live again"

# ---- 4. a worker cut off the network mid-build ----
t=$(date +%s.%N)
run_in_background partition -j$JOBS all VARIANT=2
victim=$(busy_worker) || fail "partition: no worker took a lease"
victim_cid=$(worker_container "$victim") || fail "partition: no container for worker $victim"
net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{"\n"}}{{end}}' "$victim_cid" | head -n1)
docker network disconnect "$net" "$victim_cid"
say "4. disconnected worker $victim from $net while it held leases"
wait_background
[ "$RMAKE_RC" = 0 ] || { tail -n 20 "$WORK/partition.rmake.err" >&2; mismatch "partition: the build failed (exit $RMAKE_RC)"; }
compare_with_make partition -j$JOBS all VARIANT=2
requeued=$(requeued_since "$t")
elsewhere=$(retried_elsewhere_since "$t" "$victim")
say "   the build finished in ${RMAKE_SECS}s (exit $RMAKE_RC) (make: ${MAKE_SECS}s); $VERDICT; $(leases_since "$t") leases, $requeued actions re-queued, $elsewhere retried on other workers"
[ "$elsewhere" -ge 1 ] || mismatch "partition: no action of the cut-off worker was retried on another worker"
[ "$requeued" -ge 1 ] || mismatch "partition: no action was re-queued, so the cut-off worker held no lease"
t=$(date +%s.%N)
docker network connect "$net" "$victim_cid"
for _ in $(seq 1 120); do
    idle=$(farm live "$victim" 2>/dev/null || echo 0)
    [ "$idle" -ge 1 ] && break
    sleep 0.5
done
[ "$idle" -ge 1 ] || { farm dump >&2; mismatch "partition: worker $victim did not rejoin after reconnecting"; }
say "   reconnected: worker $victim rejoined in $(secs "$t")s"

# ---- 5. the coordinator restarts with its cache ----
t=$(date +%s.%N)
compose stop coordinator >/dev/null 2>&1 || fail "compose stop coordinator failed"
STOP_SECS=$(secs "$t")
t=$(date +%s.%N)
compose start coordinator >/dev/null 2>&1 || fail "compose start coordinator failed"
wait_healthy
RESTART_SECS=$(secs "$t")
say "5. restarted the coordinator: stopped in ${STOP_SECS}s, healthy again ${RESTART_SECS}s after start, at $URL"
sleep 1
t=$(date +%s.%N)
build_and_compare rebuild "$WORK/cproj" -j$JOBS all
REBUILD_SECS=$RMAKE_SECS
REBUILD_LEASES=$(leases_since "$t")
say "   rebuild of a fresh copy: ${REBUILD_SECS}s (first build ${CPROJ_RMAKE_SECS}s): $CPROJ_JOBS jobs, $REBUILD_LEASES leases, $((CPROJ_JOBS - REBUILD_LEASES)) cache hits; $VERDICT"
say "   client: $(summary_of rebuild)"
[ "$REBUILD_LEASES" = 0 ] || mismatch "rebuild after the restart: $REBUILD_LEASES actions ran again instead of coming from the cache"
wait_workers "$WORKERS"
say "   $WORKERS workers registered again after the restart"

# After the restart the workers register again and take new work.
t=$(date +%s.%N)
build_and_compare after-restart "$WORK/cproj" -j$JOBS all VARIANT=3
say "   a new variant after the restart: ${RMAKE_SECS}s on the workers ($(leases_since "$t") leases)"

say "summary: base image ${BASE_SECS}s, images ${IMAGES_SECS}s, farm up ${UP_SECS}s, first build ${CPROJ_RMAKE_SECS}s (make ${CPROJ_MAKE_SECS}s), coordinator stop ${STOP_SECS}s + start ${RESTART_SECS}s, cached rebuild ${REBUILD_SECS}s"

if [ "${#MISMATCHES[@]}" != 0 ]; then
    printf '\n%d mismatch(es):\n' "${#MISMATCHES[@]}" >&2
    printf '  - %s\n' "${MISMATCHES[@]}" >&2
    fail "the farm did not behave as GNU make"
fi
