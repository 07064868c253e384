#!/bin/sh
# supervise_test.sh - `scansim run` notices its own failures (run_supervise.c).
#
# usage: supervise_test.sh SCANSIM CASE
#   worker_killed  SIGKILL one worker process mid-run: it is named at once with its devices
#                  and cause, its devices count as offline, their unfinished items go to
#                  live devices (nothing lost, nothing twice), exit 1.
#   broker_killed  SIGKILL the embedded mosquitto mid-run: named at once with its pid and
#                  cause, the run stops well before its --duration, exit 3.
# Waits for conditions with time-outs (no fixed sleeps); kills only the processes the run
# it started made, by pid.
set -u
SCANSIM=$1
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
CHECK="python3 $HERE/fleet_json_check.py"
T=$(mktemp -d /tmp/supervise_test.XXXXXX)
RUN=""
cleanup() {
    [ -n "$RUN" ] && kill "$RUN" 2>/dev/null && wait "$RUN" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL ($CASE): $*"; for f in "$T"/*.out "$T"/*.err; do [ -f "$f" ] && { echo "--- $f"; tail -40 "$f"; }; done; exit 1; }

. "$HERE/test_lib.sh"

# the last progress line's registered count is at least $1
registered_at_least() {
    r=$(grep -o '[0-9]* registered' "$T/run.out" | tail -1 | cut -d' ' -f1)
    [ -n "$r" ] && [ "$r" -ge "$1" ]
}

# child_of PARENT NAME-PATTERN: the pid of PARENT's child whose command line matches
child_of() {
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        if tr '\0' ' ' </proc/"$c"/cmdline 2>/dev/null | grep -q -- "$2"; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

case "$CASE" in
worker_killed)
    # each operator holds an item 50-150 ms, so that the kill always finds about a quarter
    # of the 800 unfinished items on the dead worker, however fast this machine registers
    "$SCANSIM" run --devices 400 --workers 4 --items 30000 --think 50ms-150ms \
        --json "$T/r.json" >"$T/run.out" 2>"$T/run.err" &
    RUN=$!
    wait_for 30 grep -q "online 400/400" "$T/run.out" || fail "the fleet did not come online"
    wait_for 30 registered_at_least 2000 || fail "nothing registered"
    W=$(child_of "$RUN" "--worker-index 1 ") || fail "no worker 2 among the run's children"
    kill -9 "$W"
    wait_for 5 grep -q "worker 2 (scanner-101..200) killed by signal 9" "$T/run.err" ||
        fail "the dead worker was not named at once"
    wait_for 5 grep -q "online 300/400" "$T/run.out" ||
        fail "the progress line did not count the dead worker's devices as offline"
    wait "$RUN"
    rc=$?
    RUN=""
    [ $rc -eq 1 ] || fail "exit code $rc, expected 1 (a worker died)"
    $CHECK "$T/r.json" workers_dead=1 devices_lost_with_workers=100 devices_connected=400 \
        devices_online_at_end=300 items_published=30000 items_registered=30000 items_lost=0 \
        duplicate_registrations=0 items_reassigned\>0 exit_code=1 || fail "report"
    grep -q "devices online at the end *300 of 400" "$T/run.out" || fail "summary: online at the end"
    grep -q "supervision .*worker 2 (scanner-101..200) killed by signal 9" "$T/run.out" ||
        fail "summary: the dead worker is not named"
    ;;
broker_killed)
    "$SCANSIM" run --devices 200 --duration 60s --item-rate 500/s --json "$T/r.json" \
        >"$T/run.out" 2>"$T/run.err" &
    RUN=$!
    wait_for 30 grep -q "online 200/200" "$T/run.out" || fail "the fleet did not come online"
    wait_for 30 registered_at_least 500 || fail "nothing registered"
    M=$(child_of "$RUN" "mosquitto -c") || fail "no embedded mosquitto among the run's children"
    kill -9 "$M"
    wait_for 5 grep -q "the embedded mosquitto (pid $M) exited: killed by signal 9" "$T/run.err" ||
        fail "the dead broker was not named at once"
    # the run must end by itself, far from its 60 s
    wait_for 15 sh -c "! kill -0 $RUN" || fail "the run went on without its broker"
    wait "$RUN"
    rc=$?
    RUN=""
    [ $rc -eq 3 ] || fail "exit code $rc, expected 3 (broker gone)"
    $CHECK "$T/r.json" broker_gone=true devices_online_at_end=0 exit_code=3 \
        duration_seconds\<30 || fail "report"
    grep -q "devices online at the end *0 of 200" "$T/run.out" || fail "summary: online at the end"
    ;;
*)
    echo "supervise_test.sh: unknown case '$CASE'" >&2
    exit 2
    ;;
esac
echo "PASS ($CASE)"
