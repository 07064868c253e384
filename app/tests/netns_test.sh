#!/bin/sh
# netns_test.sh - a multi-machine run on one machine: two shards, each in its own network
# namespace with its own address, against a mosquitto in a third, and `scansim merge`.
#
# usage: netns_test.sh SCANSIM [netns|fallback]
#   netns     (default) namespaces ssn<PID>b (the broker: a bridge, 10.201.0.1/24),
#             ssn<PID>s0 and ssn<PID>s1 (the shards: 10.201.0.10 and .11, each a veth to
#             the bridge). `scansim run --shard 0/2` and `--shard 1/2` each run in their
#             own namespace (ip netns exec); the broker's log shows each shard's devices
#             coming from its own address; the merge is exactly the sum, nothing lost or
#             twice. The namespaces (and with them the links) go at exit, failed or not.
#             Where namespaces cannot be made (not root, no `ip`, `ip netns add` refused)
#             it says so and runs the fallback.
#   fallback  the same with separate processes on this namespace: shard 0 with
#             --bind 127.0.0.2, shard 1 with --bind 127.0.0.3, the broker on 127.0.0.1.
set -u
SCANSIM=$1
MODE=${2:-netns}
CASE=$MODE
HERE=$(cd "$(dirname "$0")" && pwd)
CHECK="python3 $HERE/fleet_json_check.py"
. "$HERE/test_lib.sh"
test_setup

NS_B=ssn$$b
NS_0=ssn$$s0
NS_1=ssn$$s1
NS_MADE=""
netns_cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    PIDS=""
    for ns in $NS_MADE; do ip netns del "$ns" 2>/dev/null; done
    NS_MADE=""
}
trap 'netns_cleanup; cleanup' EXIT
trap 'exit 1' INT TERM HUP PIPE

DEVICES=200
ITEMS=2000
PORT=1883

# make_namespaces: the broker namespace with its bridge, a shard namespace per shard with
# a veth to it. Returns 1 (saying why in $WHY) when namespaces cannot be made here.
make_namespaces() {
    if [ "$(id -u)" -ne 0 ]; then WHY="not root"; return 1; fi
    if ! command -v ip >/dev/null 2>&1; then WHY="no 'ip' command"; return 1; fi
    if ! ip netns add "$NS_B" 2>"$T/ns.err"; then
        WHY="ip netns add: $(head -1 "$T/ns.err")"; return 1
    fi
    NS_MADE="$NS_B"
    ip -n "$NS_B" link set lo up &&
        ip -n "$NS_B" link add br0 type bridge &&
        ip -n "$NS_B" addr add 10.201.0.1/24 dev br0 &&
        ip -n "$NS_B" link set br0 up || { WHY="no bridge in a namespace"; return 1; }
    i=0
    for ns in "$NS_0" "$NS_1"; do
        ip netns add "$ns" || { WHY="ip netns add $ns failed"; return 1; }
        NS_MADE="$NS_MADE $ns"
        ip -n "$ns" link set lo up &&
            ip link add eth0 netns "$ns" type veth peer name port$i netns "$NS_B" &&
            ip -n "$NS_B" link set port$i master br0 &&
            ip -n "$NS_B" link set port$i up &&
            ip -n "$ns" addr add 10.201.0.1$i/24 dev eth0 &&
            ip -n "$ns" link set eth0 up || { WHY="no veth link to $ns"; return 1; }
        i=$((i + 1))
    done
    return 0
}

# start_broker_in NS ADDR: mosquitto on ADDR:$PORT (in namespace NS: on 0.0.0.0 there, or
# here for ""); returns once ADDR:$PORT accepts connections from that namespace.
start_broker_in() {
    ns=$1 addr=$2 listen=$2
    [ -n "$ns" ] && listen=0.0.0.0
    { [ "$(id -u)" -eq 0 ] && echo "user root"
      printf '%s\n' "listener $PORT $listen" "allow_anonymous true" "max_queued_messages 0" \
          "connection_messages true"; } >"$T/b.conf"
    if [ -n "$ns" ]; then
        ip netns exec "$ns" mosquitto -c "$T/b.conf" >"$T/b.log" 2>&1 &
    else
        mosquitto -c "$T/b.conf" >"$T/b.log" 2>&1 &
    fi
    PIDS="$PIDS $!"
    probe="import socket; socket.create_connection(('$addr',$PORT),1)"
    if [ -n "$ns" ]; then
        wait_for 5 ip netns exec "$ns" python3 -c "$probe" || fail "mosquitto did not start in $ns"
    else
        wait_for 5 python3 -c "$probe" || fail "mosquitto did not start"
    fi
}

# run_shard I NS|"" URI [ARGS...]: scansim run --shard I/2 in the background; pid in S<I>
run_shard() {
    i=$1 ns=$2 uri=$3; shift 3
    if [ -n "$ns" ]; then
        ip netns exec "$ns" "$SCANSIM" run --broker "$uri" --devices $DEVICES --items $ITEMS \
            --shard "$i/2" --json "$T/shard-$i.json" "$@" >"$T/shard-$i.out" 2>"$T/shard-$i.err" &
    else
        "$SCANSIM" run --broker "$uri" --devices $DEVICES --items $ITEMS \
            --shard "$i/2" --json "$T/shard-$i.json" "$@" >"$T/shard-$i.out" 2>"$T/shard-$i.err" &
    fi
    eval "S$i=\$!"
}

if [ "$MODE" = netns ] && ! make_namespaces; then
    echo "netns unavailable ($WHY): fallback to source addresses"
    netns_cleanup
    MODE=fallback
elif [ "$MODE" = fallback ]; then
    echo "netns not asked for: fallback to source addresses"
fi

if [ "$MODE" = netns ]; then
    echo "namespaces $NS_B (broker 10.201.0.1), $NS_0 (10.201.0.10), $NS_1 (10.201.0.11)"
    start_broker_in "$NS_B" 10.201.0.1
    URI=tcp://10.201.0.1:$PORT
    run_shard 0 "$NS_0" "$URI"
    run_shard 1 "$NS_1" "$URI"
    FROM0=10.201.0.10 FROM1=10.201.0.11
else
    PORT=$(free_port)
    start_broker_in "" 127.0.0.1
    URI=tcp://127.0.0.1:$PORT
    # Source addresses are libmosquitto's alone (Paho has no bind option): this fallback
    # runs on it whatever SCANSIM_TRANSPORT says.
    echo "fallback: --transport mosquitto (--bind needs it)"
    run_shard 0 "" "$URI" --bind 127.0.0.2 --transport mosquitto
    run_shard 1 "" "$URI" --bind 127.0.0.3 --transport mosquitto
    FROM0=127.0.0.2 FROM1=127.0.0.3
fi
wait "$S0"; r0=$?
wait "$S1"; r1=$?
[ $r0 -eq 0 ] && [ $r1 -eq 0 ] || fail "shard exit codes $r0 $r1, expected 0 0"

# each shard's devices came from its own machine's address
half=$((DEVICES / 2))
for i in 0 1; do
    eval "from=\$FROM$i"
    n=$(grep -c "New client connected from $from:[0-9]* as scanner-" "$T/b.log")
    [ "$n" -eq $half ] || fail "$n devices connected from $from (shard $i), expected $half"
done
grep -q "from $FROM0:[0-9]* as scanner-1 " "$T/b.log" || fail "scanner-1 not from shard 0's address"
grep -q "from $FROM1:[0-9]* as scanner-$DEVICES " "$T/b.log" ||
    fail "scanner-$DEVICES not from shard 1's address"

$CHECK "$T/shard-0.json" shard.index=0 devices_connected=$half items_registered=$((ITEMS / 2)) \
    items_lost=0 duplicate_registrations=0 ledger_unknown_items=0 || fail "shard 0 report"
$CHECK "$T/shard-1.json" shard.index=1 devices_connected=$half items_registered=$((ITEMS / 2)) \
    items_lost=0 duplicate_registrations=0 ledger_unknown_items=0 || fail "shard 1 report"
"$SCANSIM" merge --json "$T/merged.json" "$T/shard-0.json" "$T/shard-1.json" >"$T/merge.out" 2>&1 ||
    fail "merge exit code $?, expected 0"
$CHECK "$T/merged.json" shards=2 shards_given=2 devices_requested=$DEVICES \
    devices_connected=$DEVICES items_published=$ITEMS items_registered=$ITEMS items_lost=0 \
    duplicate_registrations=0 missing_shards_count=0 latency_histogram.count=$ITEMS exit_code=0 ||
    fail "merged report"
echo "PASS ($MODE: 2 shards x $half devices from $FROM0 and $FROM1, merged $ITEMS of $ITEMS)"
