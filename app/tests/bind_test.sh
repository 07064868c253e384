#!/bin/sh
# bind_test.sh - `scansim run --bind ADDR,...`: the devices' source addresses.
#
# usage: bind_test.sh SCANSIM CASE
#   spread   30 devices in 3 worker processes with --bind 127.0.0.2,127.0.0.3,127.0.0.4
#            against a private mosquitto on 127.0.0.1 (free_port checked that address; 0.0.0.0
#            could meet another test's client port on 127.0.0.x): the broker's log shows every
#            address used by exactly 10 devices (round-robin by id, the same in every
#            worker), nothing lost or twice.
#   usage    a bad address, an empty word and --transport paho exit 2 naming why; an
#            address that is not this machine's is named in the connection problem.
set -u
SCANSIM=$1
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
CHECK="python3 $HERE/fleet_json_check.py"
. "$HERE/test_lib.sh"
test_setup

PORT=$(free_port)
start_mosquitto b0 "listener $PORT 127.0.0.1" "allow_anonymous true" "max_queued_messages 0" \
    "connection_messages true"
URI=tcp://127.0.0.1:$PORT

case "$CASE" in
spread)
    "$SCANSIM" run --broker "$URI" --devices 30 --items 300 --workers 3 \
        --bind 127.0.0.2,127.0.0.3,127.0.0.4 --json "$T/r.json" >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 0 ] || fail "exit code $rc, expected 0"
    $CHECK "$T/r.json" devices_connected=30 items_published=300 items_registered=300 \
        items_lost=0 duplicate_registrations=0 ledger_unknown_items=0 || fail "report"
    # mosquitto: "New client connected from 127.0.0.3:40123 as scanner-7 (...)"
    for a in 127.0.0.2 127.0.0.3 127.0.0.4; do
        n=$(grep -c "New client connected from $a:[0-9]* as scanner-" "$T/b0.log")
        [ "$n" -eq 10 ] || fail "$n devices connected from $a, expected 10"
    done
    n=$(grep -c "New client connected from 127.0.0.1:[0-9]* as scanner-" "$T/b0.log")
    [ "$n" -eq 0 ] || fail "$n devices connected from 127.0.0.1, the address not given"
    # round-robin by id: scanner-3 (3 % 3 = 0) from the first address, scanner-4 the second
    grep -q "from 127.0.0.2:[0-9]* as scanner-3 " "$T/b0.log" || fail "scanner-3 not from 127.0.0.2"
    grep -q "from 127.0.0.3:[0-9]* as scanner-4 " "$T/b0.log" || fail "scanner-4 not from 127.0.0.3"
    ;;
usage)
    for arg in "127.0.0.2,127.0.0.300" "127.0.0.2,,127.0.0.3" "localhost"; do
        "$SCANSIM" run --broker "$URI" --devices 3 --bind "$arg" >"$T/u.out" 2>"$T/u.err"
        rc=$?
        [ $rc -eq 2 ] || fail "--bind $arg: exit $rc, expected 2"
        grep -q "scansim run: --bind" "$T/u.err" || fail "--bind $arg: no clear message"
    done
    grep -q "'localhost' is not a numeric" "$T/u.err" || fail "the bad word is not named"
    "$SCANSIM" run --broker "$URI" --devices 3 --bind 127.0.0.2 --transport paho \
        >"$T/u.out" 2>"$T/u.err"
    rc=$?
    [ $rc -eq 2 ] || fail "--bind with --transport paho: exit $rc, expected 2"
    grep -q "Paho MQTTAsync has no option for a connection's source address" "$T/u.err" ||
        fail "--bind with Paho: the reason is not given"
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: named, exit 3 (no device connected)
    "$SCANSIM" run --broker "$URI" --devices 2 --bind 192.0.2.1 --connect-timeout 2s \
        >"$T/n.out" 2>"$T/n.err"
    rc=$?
    [ $rc -eq 3 ] || fail "--bind 192.0.2.1: exit $rc, expected 3"
    grep -q "the source address 192.0.2.1 is not one of this machine's" "$T/n.out" "$T/n.err" ||
        fail "--bind 192.0.2.1: the address is not named"
    "$SCANSIM" run --help | grep -q -- "--bind ADDR" || fail "--help does not show --bind"
    ;;
*)
    echo "bind_test.sh: unknown case '$CASE'" >&2
    exit 2
    ;;
esac
echo "PASS ($CASE)"
