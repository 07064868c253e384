#!/bin/sh
# fleet_test.sh - broker tests of `scansim run` (the fleet, the backend role, the report).
#
# usage: fleet_test.sh SCANSIM CASE
# Each case starts what it needs (scansim's embedded mosquitto, or its own mosquitto on a
# free port), waits for conditions with time-outs (never fixed sleeps), and checks the JSON
# report with fleet_json_check.py. Cases: basic workers seed nobackend sigint usage
# unreachable operator rabbitmq qos2 commands.
set -u
SCANSIM=$1
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
CHECK="python3 $HERE/fleet_json_check.py"

. "$HERE/test_lib.sh"
test_setup

case "$CASE" in
rabbitmq)
    # The first items of each device are published right at time zero: on a broker that
    # binds subscriptions asynchronously they were lost while devices said "online" before
    # their SUBACKs (6 to 40 of 200 in each of 20 runs; 0 of 200 in 20 runs since).
    "$SCANSIM" run --broker-type rabbitmq --session clean --devices 20 --items 200 \
        --json "$T/r.json" >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 0 ] || fail "exit code $rc, expected 0"
    $CHECK "$T/r.json" devices_connected=20 items_published=200 items_registered=200 \
        items_lost=0 duplicate_registrations=0 exit_code=0 || fail "report"
    ;;
qos2)
    # -q 2 on both client libraries, against a mosquitto that logs every packet: the items
    # and registrations go at QoS 2 (PUBREL on the wire), nothing lost, nothing twice, and
    # no duplicate delivery.
    for tr in mosquitto paho; do
        PORT=$(free_port)
        start_mosquitto "m-$tr" "listener $PORT 127.0.0.1" "allow_anonymous true" \
            "log_type all" "log_dest stdout"
        "$SCANSIM" run --broker "tcp://127.0.0.1:$PORT" --transport $tr -q 2 --devices 100 \
            --items 1000 --json "$T/$tr.json" >"$T/$tr.out" 2>"$T/$tr.err"
        rc=$?
        [ $rc -eq 0 ] || fail "$tr: exit code $rc, expected 0: $(cat "$T/$tr.err")"
        $CHECK "$T/$tr.json" items_published=1000 items_registered=1000 items_lost=0 \
            duplicate_registrations=0 ledger_duplicate_deliveries=0 exit_code=0 ||
            fail "$tr: report"
        grep -q "Received PUBLISH from scanner-1 (d0, q2, r0, m[0-9]*, 'scanners/scanner-1/item_registered'" \
            "$T/m-$tr.log" || fail "$tr: no QoS 2 registration from scanner-1 on the wire"
        grep -q "Received PUBREL from scanner-1 " "$T/m-$tr.log" || fail "$tr: no PUBREL from scanner-1"
        grep -q "Sending PUBLISH to scanner-1 (d0, q2, " "$T/m-$tr.log" ||
            fail "$tr: no QoS 2 item to scanner-1"
        echo "ok: $tr: 1000 items at QoS 2, registered once each"
    done
    ;;
basic)
    "$SCANSIM" run --devices 20 --items 100 --json "$T/r.json" >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 0 ] || fail "exit code $rc, expected 0"
    $CHECK "$T/r.json" devices_requested=20 devices_connected=20 items_published=100 \
        items_registered=100 items_lost=0 duplicate_registrations=0 latency_ms.p50\>0 \
        latency_ms.max\>=@latency_ms.p50 peak_rss_kib\>0 exit_code=0 \
        cpu_us_per_registration.scansim_process\>=0 cpu_us_per_registration.broker\>=0 \
        cpu_us_per_registration.all\>=@cpu_us_per_registration.scansim_process || fail "report"
    grep -q "items lost *0" "$T/run.out" || fail "no summary table on stdout"
    ;;
workers)
    "$SCANSIM" run --devices 20 --items 100 --workers 2 --json "$T/r.json" >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 0 ] || fail "exit code $rc, expected 0"
    $CHECK "$T/r.json" workers=2 worker_program=scansim-worker devices_requested=20 devices_connected=20 items_published=100 \
        items_registered=100 items_lost=0 duplicate_registrations=0 registrations_acked=100 \
        items_received=100 exit_code=0 cpu_us_per_registration.device_processes\>=0 \
        cpu_us_per_registration.backend_process\>=0 || fail "report"
    ;;
seed)
    "$SCANSIM" run --layout seed --devices 3 --items 5 --json "$T/r.json" >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 0 ] || fail "exit code $rc, expected 0 (several registrations are expected in the seed layout)"
    # every device sees every item: 5 items, each registered by all 3 devices
    $CHECK "$T/r.json" layout=seed items_published=5 items_registered=5 items_lost=0 \
        items_registered_by_several_devices=5 registrations_acked=15 items_received=15 || fail "report"
    grep -q "registered by several devices *5 (expected" "$T/run.out" || fail "summary does not say it is expected"
    ;;
nobackend)
    port=$(free_port)
    mosquitto -p "$port" >"$T/mosq.err" 2>&1 &
    PIDS="$PIDS $!"
    wait_for 10 python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" || fail "mosquitto did not start"
    mosquitto_sub -p "$port" -v -t 'scanners/+/item_registered' -t 'scanners/+/status' >"$T/sub.out" 2>&1 &
    PIDS="$PIDS $!"
    "$SCANSIM" run --no-backend --devices 2 --broker "tcp://127.0.0.1:$port" --json "$T/r.json" \
        >"$T/run.out" 2>"$T/run.err" &
    RUN=$!
    wait_for 20 grep -q "scanners/scanner-1/status online" "$T/sub.out" || fail "scanner-1 not online"
    wait_for 20 grep -q "scanners/scanner-2/status online" "$T/sub.out" || fail "scanner-2 not online"
    mosquitto_pub -p "$port" -q 1 -t scanners/scanner-1/item_registration -m '{"item_id": 7, "item_name": "Pallet jack", "tag_quantity": 1}'
    mosquitto_pub -p "$port" -q 1 -t scanners/scanner-1/item_registration -m '{"item_id": 8, "item_name": "Drill", "tag_quantity": 2}'
    mosquitto_pub -p "$port" -q 1 -t scanners/scanner-2/item_registration -m '{"item_id": 9, "item_name": "Ladder", "tag_quantity": 1}'
    three() { [ "$(grep -c '/item_registered ' "$T/sub.out")" -ge 3 ]; }
    wait_for 20 three || fail "3 registrations not seen by mosquitto_sub"
    grep -q 'scanners/scanner-1/item_registered {"item_id":8' "$T/sub.out" || fail "item 8 not registered by scanner-1"
    grep -q 'scanners/scanner-2/item_registered {"item_id":9' "$T/sub.out" || fail "item 9 not registered by scanner-2"
    # the devices count what they acknowledged once a second: wait for the figures, then stop
    kill -INT $RUN
    wait $RUN; rc=$?
    [ $rc -eq 0 ] || fail "exit code $rc after Ctrl-C without a backend, expected 0"
    $CHECK "$T/r.json" backend=false items_published=null items_received=3 \
        registrations_confirmed=3 registrations_acked=3 devices_connected=2 || fail "report"
    ;;
sigint)
    "$SCANSIM" run --devices 5 --item-rate 20/s --grace 5s --json "$T/r.json" >"$T/run.out" 2>"$T/run.err" &
    RUN=$!
    some() { grep -Eq ' [1-9][0-9]* registered' "$T/run.out"; }
    wait_for 30 some || fail "no registrations while running"
    kill -INT $RUN
    wait $RUN; rc=$?
    [ -f "$T/r.json" ] || fail "no JSON after Ctrl-C"
    grep -q "items lost" "$T/run.out" || fail "no summary after Ctrl-C"
    lost=$(python3 -c "import json;print(json.load(open('$T/r.json'))['items_lost'])")
    want=0; [ "$lost" -gt 0 ] && want=1
    [ $rc -eq $want ] || fail "exit code $rc with $lost items lost, expected $want"
    $CHECK "$T/r.json" interrupted=true items_published\>0 exit_code=$rc || fail "report"
    ;;
usage)
    for args in "--devices 0" "--bogus" "--think 2s-1s" "--cancel-rate 1.5" "--layout diagonal" \
                "--no-backend --items 5" "--window 17" "extra"; do
        # shellcheck disable=SC2086
        "$SCANSIM" run $args >"$T/u.out" 2>"$T/u.err"
        rc=$?
        [ $rc -eq 2 ] || fail "'run $args' exited $rc, expected 2"
        grep -q "scansim run: " "$T/u.err" || fail "'run $args' gave no clear message: $(cat "$T/u.err")"
    done
    "$SCANSIM" run --help >"$T/h.out" 2>&1 || fail "--help failed"
    grep -q -- "--item-rate" "$T/h.out" || fail "--help does not list --item-rate"
    ;;
unreachable)
    port=$(free_port)
    "$SCANSIM" run --devices 2 --broker "tcp://127.0.0.1:$port" --connect-timeout 3s \
        --json "$T/r.json" >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 3 ] || fail "exit code $rc for an unreachable broker, expected 3"
    grep -q "127.0.0.1:$port" "$T/run.err" || fail "the message does not name the broker"
    "$SCANSIM" run --no-backend --devices 2 --broker "tcp://127.0.0.1:$port" --connect-timeout 3s \
        --json "$T/r.json" >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 3 ] || fail "exit code $rc with no device connected, expected 3"
    $CHECK "$T/r.json" devices_connected=0 exit_code=3 || fail "report"
    ;;
operator)
    # scripted operators that scan wrong tags, cancel items and look tags up; flash in files
    "$SCANSIM" run --devices 6 --items 60 --think 0-30ms --wrong-tag-rate 0.3 --cancel-rate 0.2 \
        --inventory-rate 0.3 --seed 7 --flash "$T/flash" --json "$T/r.json" >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 0 ] || fail "exit code $rc, expected 0 (cancelled items are not lost items)"
    $CHECK "$T/r.json" items_published=60 items_cancelled\>0 wrong_tags\>0 inventory_queries\>0 \
        inventory_answers=@inventory_queries items_lost=@items_cancelled duplicate_registrations=0 || fail "report"
    [ -d "$T/flash/scanner-1" ] && [ -d "$T/flash/scanner-6" ] || fail "no flash folder per device under --flash"
    ;;
commands)
    # --command-rate under load, on both client libraries: every command answered ok,
    # nothing lost; the summary has its line. Replies that never come: exit 1. Without a
    # backend, or at rate 0: usage (2).
    for tr in mosquitto paho; do
        "$SCANSIM" run --transport $tr --devices 50 --items 500 --command-rate 100 --seed 3 \
            --json "$T/$tr.json" >"$T/$tr.out" 2>"$T/$tr.err"
        rc=$?
        [ $rc -eq 0 ] || fail "$tr: exit code $rc, expected 0: $(cat "$T/$tr.err")"
        $CHECK "$T/$tr.json" commands.sent\>0 commands.ok=@commands.sent commands.refused=0 \
            commands.unanswered=0 commands.duplicates=0 commands.latency_ms.max\>=@commands.latency_ms.p50 \
            items_published=500 items_registered=500 items_lost=0 exit_code=0 || fail "$tr: report"
        grep -Eq "commands \(--command-rate 100/s\) +[1-9][0-9]* sent, [1-9][0-9]* ok, 0 refused, 0 unanswered" \
            "$T/$tr.out" || fail "$tr: no commands line in the summary"
        echo "ok: $tr: $(grep -o '[0-9]* sent, [0-9]* ok' "$T/$tr.out")"
    done
    # two brokers, devices in two worker processes: each command goes to its device's broker
    PORT=$(free_port); P1=$PORT; start_mosquitto b1 "listener $PORT 127.0.0.1" "allow_anonymous true"
    PORT=$(free_port); P2=$PORT; start_mosquitto b2 "listener $PORT 127.0.0.1" "allow_anonymous true"
    "$SCANSIM" run --broker "tcp://127.0.0.1:$P1" --broker "tcp://127.0.0.1:$P2" --workers 2 \
        --devices 20 --items 400 --item-rate 400/s --command-rate 200 --json "$T/b.json" \
        >"$T/b.out" 2>"$T/b.err"
    rc=$?
    [ $rc -eq 0 ] || fail "two brokers: exit code $rc, expected 0: $(cat "$T/b.err")"
    $CHECK "$T/b.json" commands.sent\>50 commands.ok=@commands.sent commands.unanswered=0 \
        items_lost=0 exit_code=0 || fail "two brokers: report"
    # replies the broker never delivers (its ACL): every command unanswered, exit 1, said so
    printf 'topic readwrite #\ntopic deny scanners/+/command/reply\n' >"$T/noreply.acl"
    PORT=$(free_port)
    start_mosquitto b3 "listener $PORT 127.0.0.1" "allow_anonymous true" "acl_file $T/noreply.acl"
    "$SCANSIM" run --broker "tcp://127.0.0.1:$PORT" --devices 5 --items 50 --item-rate 100/s \
        --command-rate 5 --json "$T/n.json" >"$T/n.out" 2>"$T/n.err"
    rc=$?
    [ $rc -eq 1 ] || fail "replies withheld: exit code $rc, expected 1"
    $CHECK "$T/n.json" commands.sent\>0 commands.ok=0 commands.unanswered=@commands.sent \
        items_lost=0 exit_code=1 || fail "replies withheld: report"
    grep -q "commands failed .* without a reply within 5 s" "$T/n.out" || fail "replies withheld: the summary does not say why"
    for args in "--no-backend --command-rate 5" "--command-rate 0" "--command-rate 100001" \
                "--command-rate fast"; do
        # shellcheck disable=SC2086
        "$SCANSIM" run $args >"$T/u.out" 2>"$T/u.err"
        rc=$?
        [ $rc -eq 2 ] || fail "'run $args' exited $rc, expected 2"
        grep -q "scansim run: .*--command-rate" "$T/u.err" || fail "'run $args': no clear message: $(cat "$T/u.err")"
    done
    ;;
*)
    echo "fleet_test.sh: unknown case '$CASE'" >&2
    exit 2
    ;;
esac
echo "PASS ($CASE)"
exit 0
