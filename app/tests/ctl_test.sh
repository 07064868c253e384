#!/bin/sh
# ctl_test.sh - broker test of `scansim ctl`: remote commands to a running fleet.
#
# usage: ctl_test.sh SCANSIM
# Starts a private mosquitto on a free port and `scansim run --no-backend --devices 5`
# against it, waits until the five devices are online (their retained status), then checks
# what ctl prints and its exit codes: every device answering, a refusal the device makes
# (out_of_range), a device that is not there, --json, a plain mosquitto_pub command, a bad
# flag and an unreachable broker; and that replies count only for their cmd_id and device,
# once. The client library is the process's default
# (SCANSIM_TRANSPORT=paho for the Paho pass of ci/test.sh), for the fleet and ctl alike.
set -u
SCANSIM=$1
CASE=ctl
HERE=$(cd "$(dirname "$0")" && pwd)

. "$HERE/test_lib.sh"
test_setup

PORT=$(free_port)
start_mosquitto broker "listener $PORT 127.0.0.1" "allow_anonymous true"
B="--broker tcp://127.0.0.1:$PORT"

"$SCANSIM" run --no-backend --devices 5 $B --duration 120s \
    >"$T/run.out" 2>"$T/run.err" &
RUN=$!
PIDS="$PIDS $RUN"
online5() {
    mosquitto_sub -p "$PORT" -t 'scanners/+/status' -v -W 1 >"$T/status.txt" 2>/dev/null
    [ "$(grep -c ' online$' "$T/status.txt")" -eq 5 ]
}
wait_for 15 online5 || fail "the 5 devices did not come online"

# 1. a range: five devices, five ok, exit 0
"$SCANSIM" ctl status 'scanner-1..5' $B >"$T/1.out" 2>"$T/1.err"
rc=$?
[ $rc -eq 0 ] || fail "status scanner-1..5: exit $rc, expected 0"
grep -q '^5 ok, 0 refused, 0 did not answer within 5 s$' "$T/1.out" || fail "status: no '5 ok' summary"
[ "$(grep -c '^scanner-[1-5]  *ok ' "$T/1.out")" -eq 5 ] || fail "status: not one ok row per device"
grep -q 'screen=idle' "$T/1.out" || fail "status: no key fields in the table"

# 2. a message, its text positional
"$SCANSIM" ctl message scanner-2 "Go to dock 3" $B >"$T/2.out" 2>"$T/2.err"
rc=$?
[ $rc -eq 0 ] || fail "message: exit $rc, expected 0"
grep -q '^scanner-2  *ok ' "$T/2.out" || fail "message: no ok row"

# 3. the device range-checks: keepalive 2 is out_of_range, exit 1
"$SCANSIM" ctl config scanner-1 keepalive=2 $B >"$T/3.out" 2>"$T/3.err"
rc=$?
[ $rc -eq 1 ] || fail "config keepalive=2: exit $rc, expected 1"
grep -q 'out_of_range' "$T/3.out" || fail "config: the refusal's reason is not shown"
grep -q 'field=keepalive' "$T/3.out" || fail "config: the refused field is not named"

# 4. a device that is not there: exit 1, said so, after --timeout
"$SCANSIM" ctl status scanner-99 $B --timeout 1 >"$T/4.out" 2>"$T/4.err"
rc=$?
[ $rc -eq 1 ] || fail "status scanner-99: exit $rc, expected 1"
grep -q '^scanner-99  *-  *no answer' "$T/4.out" || fail "scanner-99: no 'no answer' row"
grep -q '1 did not answer within 1 s' "$T/4.out" || fail "scanner-99: summary does not say it did not answer"

# 5. --json: one document, five ok entries with their data
"$SCANSIM" ctl status 'scanner-1..5' $B --json >"$T/5.out" 2>"$T/5.err"
rc=$?
[ $rc -eq 0 ] || fail "--json: exit $rc, expected 0"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
ok = [e for e in d["devices"] if e["result"] == "ok" and e["answered"] and "version" in e["data"]]
assert len(ok) == 5, d
assert d["summary"] == {"addressed": 5, "ok": 5, "refused": 0, "no_answer": 0}, d["summary"]
assert d["exit_code"] == 0
assert len({e["cmd_id"] for e in d["devices"]}) == 5, "cmd_ids not unique"
' "$T/5.out" || fail "--json document"

# 5b. all: one publish on command/all, every device answers on its own topic
"$SCANSIM" ctl identify all seconds=1 $B --timeout 1 >"$T/5b.out" 2>"$T/5b.err"
rc=$?
[ $rc -eq 0 ] || fail "identify all: exit $rc, expected 0"
grep -q '^5 ok, 0 refused, 5 answered within 1 s' "$T/5b.out" || fail "identify all: not 5 answers"

# 5c. replies are matched by cmd_id and device: a stranger's cmd_id, a second reply and a
#     reply on another device's topic do not count (ghost-1 and ghost-2 are played here)
stdbuf -oL mosquitto_sub -d -p "$PORT" -t scanners/ghost-1/command -C 1 -W 5 >"$T/5c-cmd.out" 2>&1 &
SUB=$!
wait_for 5 grep -q 'received SUBACK' "$T/5c-cmd.out" || fail "mosquitto_sub (ghost-1) not subscribed"
"$SCANSIM" ctl status ghost-1,ghost-2,ghost-1 $B --timeout 2 --json >"$T/5c.out" 2>"$T/5c.err" &
CTL=$!
wait $SUB
id=$(sed -n 's/.*{"cmd_id":"\([^"]*\)".*/\1/p' "$T/5c-cmd.out")
[ -n "$id" ] || fail "no command seen for ghost-1"
r() { mosquitto_pub -p "$PORT" -q 1 -t "scanners/$1/command/reply" \
        -m "{\"cmd_id\":\"$2\",\"device_id\":\"$1\",\"result\":\"$3\",\"reason\":\"\",\"data\":{}}"; }
r ghost-1 someone-elses-1 error
r ghost-2 "$id" ok
r ghost-1 "$id" ok
r ghost-1 "$id" error
wait $CTL; rc=$?
[ $rc -eq 1 ] || fail "ghosts: exit $rc, expected 1 (ghost-2 did not answer its own cmd_id)"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
ids = [e["device_id"] for e in d["devices"]]
assert ids == ["ghost-1", "ghost-2"], ids
g1, g2 = d["devices"]
assert g1["answered"] and g1["result"] == "ok", g1
assert not g2["answered"] and g2["result"] is None, g2
assert d["summary"] == {"addressed": 2, "ok": 1, "refused": 0, "no_answer": 1}, d["summary"]
' "$T/5c.out" || fail "ghosts: replies not matched by cmd_id and device, once each"

# 6. any MQTT client can command a device (the protocol, not ctl): wait for the SUBACK
#    (stdbuf: mosquitto_sub -d buffers its log when it writes to a file)
stdbuf -oL mosquitto_sub -d -p "$PORT" -t scanners/scanner-3/command/reply -C 1 -W 5 >"$T/6.out" 2>&1 &
SUB=$!
wait_for 5 grep -q 'received SUBACK' "$T/6.out" || fail "mosquitto_sub not subscribed"
mosquitto_pub -p "$PORT" -q 1 -t scanners/scanner-3/command -m '{"cmd_id":"p1","cmd":"status"}' ||
    fail "mosquitto_pub"
wait $SUB
grep '"cmd_id":"p1"' "$T/6.out" | grep -q '"result":"ok"' || fail "no ok reply to p1"

# 7. usage and broker errors
"$SCANSIM" ctl status scanner-1 --no-such-flag $B >"$T/7a.out" 2>"$T/7a.err"
rc=$?
[ $rc -eq 2 ] || fail "bad flag: exit $rc, expected 2"
grep -q "unknown option '--no-such-flag'" "$T/7a.err" || fail "bad flag: no clear message"
"$SCANSIM" ctl frobnicate scanner-1 $B >"$T/7b.out" 2>"$T/7b.err"
rc=$?
[ $rc -eq 2 ] || fail "unknown command: exit $rc, expected 2"
grep -q "unknown command 'frobnicate': expected one of identify, message, status" "$T/7b.err" ||
    fail "unknown command: the commands are not listed"
DEAD=$(free_port)
"$SCANSIM" ctl status scanner-1 --broker "tcp://127.0.0.1:$DEAD" >"$T/7c.out" 2>"$T/7c.err"
rc=$?
[ $rc -eq 3 ] || fail "unreachable broker: exit $rc, expected 3"
grep -q "tcp://127.0.0.1:$DEAD.*cannot be reached" "$T/7c.err" ||
    fail "unreachable broker: the message does not name the broker and the cause"
# The fleet first, while its broker is there (with the broker gone, a Paho client's
# clean stop waits out its time-outs, ~10 s).
kill "$RUN"
wait "$RUN"
echo "ok: ctl"
