#!/bin/sh
# shard_test.sh - shards that share nothing but the broker, and `scansim merge`.
#
# usage: shard_test.sh SCANSIM CASE
#   merge     two shards (--shard 0/2, 1/2) of one fleet against one private mosquitto:
#             each sees only its own devices' registrations, the merge is exactly their
#             sum with nothing lost or twice; a missing shard, a doctored file and a wrong
#             --shard are named with exit 1, 2 and 2.
#   brokers   one run spread over two mosquittos (--broker twice): every device's items
#             through the backend on its own broker, nothing lost.
set -u
SCANSIM=$1
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
CHECK="python3 $HERE/fleet_json_check.py"
. "$HERE/test_lib.sh"
test_setup

# start_broker NAME: a private mosquitto on a free port; its port in $PORT
start_broker() {
    PORT=$(free_port)
    start_mosquitto "$1" "listener $PORT 127.0.0.1" "allow_anonymous true" "max_queued_messages 0"
}

case "$CASE" in
merge)
    start_broker b0
    URI=tcp://127.0.0.1:$PORT
    for i in 0 1; do
        "$SCANSIM" run --broker "$URI" --devices 300 --items 3000 --shard $i/2 \
            --json "$T/shard-$i.json" >"$T/shard-$i.out" 2>"$T/shard-$i.err" &
        eval "S$i=\$!"
    done
    wait "$S0"; r0=$?
    wait "$S1"; r1=$?
    [ $r0 -eq 0 ] && [ $r1 -eq 0 ] || fail "shard exit codes $r0 $r1, expected 0 0"
    # each shard ran its own half and saw no registration of the other's devices
    $CHECK "$T/shard-0.json" shard.index=0 shard.id_first=1 shard.id_last=150 \
        devices_requested=150 items_published=1500 items_registered=1500 \
        ledger_unknown_items=0 latency_histogram.count=1500 || fail "shard 0 report"
    $CHECK "$T/shard-1.json" shard.index=1 shard.id_first=151 shard.id_last=300 \
        items_published=1500 items_registered=1500 ledger_unknown_items=0 || fail "shard 1 report"
    "$SCANSIM" merge --json "$T/merged.json" "$T/shard-0.json" "$T/shard-1.json" >"$T/merge.out" 2>&1 ||
        fail "merge exit code $?, expected 0"
    $CHECK "$T/merged.json" shards=2 shards_given=2 devices_requested=300 devices_connected=300 \
        items_published=3000 items_registered=3000 items_lost=0 duplicate_registrations=0 \
        missing_shards_count=0 latency_histogram.count=3000 latency_ms.p99\>=@latency_ms.p50 \
        exit_code=0 || fail "merged report"
    grep -q "scanner-151..300" "$T/merge.out" || fail "no row for shard 1"
    # a missing shard is named, exit 1
    "$SCANSIM" merge "$T/shard-0.json" >"$T/missing.out" 2>&1
    rc=$?
    [ $rc -eq 1 ] || fail "merge of one shard of two: exit $rc, expected 1"
    grep -q "shard 1 of 2: no report given" "$T/missing.out" || fail "the missing shard is not named"
    # a doctored file: its histogram no longer adds up
    python3 - "$T/shard-1.json" "$T/bad.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["latency_histogram"]["count"] += 1
json.dump(r, open(sys.argv[2], "w"))
PY
    "$SCANSIM" merge "$T/shard-0.json" "$T/bad.json" >"$T/bad.out" 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "merge of a doctored file: exit $rc, expected 2"
    grep -q "bad.json: the latency buckets add up to" "$T/bad.out" || fail "no reason for the bad file"
    # --connect-rate is the whole fleet's: a shard's workers share half of it
    "$SCANSIM" run --broker "$URI" --devices 40 --items 40 --shard 1/2 --workers 2 \
        --connect-rate 400/s -v >"$T/rate.out" 2>"$T/rate.err" || fail "the rate run: exit $?"
    grep -q "worker 0: 10 devices from id 21, connect rate 100.0/s" "$T/rate.err" ||
        fail "a worker of shard 1/2 of 2 workers does not connect at 400/2/2 a second"
    "$SCANSIM" run --broker "$URI" --devices 10 --shard 2/2 >"$T/usage.out" 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "--shard 2/2: exit $rc, expected 2"
    grep -q "shard 2 of 2 does not exist" "$T/usage.out" || fail "--shard 2/2 not explained"
    ;;
brokers)
    start_broker b0
    U0=tcp://127.0.0.1:$PORT
    start_broker b1
    U1=tcp://127.0.0.1:$PORT
    "$SCANSIM" run --broker "$U0" --broker "$U1" --devices 200 --items 2000 --json "$T/r.json" \
        >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 0 ] || fail "exit code $rc, expected 0"
    $CHECK "$T/r.json" devices_connected=200 items_published=2000 items_registered=2000 \
        items_lost=0 duplicate_registrations=0 ledger_unknown_items=0 || fail "report"
    # round-robin by id (its number modulo 2): even ids on the first broker, odd on the second
    for b in b0 b1; do
        n=$(grep -c "New client connected .* as scanner-" "$T/$b.log")
        [ "$n" -eq 100 ] || fail "broker $b saw $n devices connect, expected 100"
    done
    grep -q "as scanner-2 " "$T/b0.log" || fail "scanner-2 did not connect to the first broker"
    grep -q "as scanner-1 " "$T/b1.log" || fail "scanner-1 did not connect to the second broker"
    ;;
*)
    echo "shard_test.sh: unknown case '$CASE'" >&2
    exit 2
    ;;
esac
echo "PASS ($CASE)"
