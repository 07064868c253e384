#!/usr/bin/env bash
# scenario_cli_test.sh - the contract of `scansim test` (CTest scenario_cli).
#   usage: scenario_cli_test.sh SCANSIM SCENARIOS_DIR WORK_DIR [TSHARK]
# Checks: a wrong scenario file gives file:line:column: message and exit 2, and nothing
# runs; usage errors give 2; a failing scenario gives exit 1, its timeline, the replay line
# with the seed, the summary line and a JUnit <failure>; --seed replaces the seed;
# --keep + --pcap leave the artefacts and a capture that tshark decodes as MQTT PUBLISH;
# against a broker it did not start, skips are reasons, broker actions run commands
# that inherit none of the runner's sockets, and -j N runs the scenarios there in turn.
# Exits 77 (skip) only when tshark is absent, after everything else passed.
set -u
scansim=$1
work=$3
tshark=${4:-}
rm -rf "$work"
mkdir -p "$work"
fails=0
check() { # check DESCRIPTION CONDITION...
    local what=$1
    shift
    if "$@"; then
        echo "ok   - $what"
    else
        echo "FAIL - $what"
        fails=$((fails + 1))
    fi
}

# 1. A wrong file: file:line:column exactly as the parser gives it, exit 2, nothing runs.
cat >"$work/bad.scn" <<'SCN'
scenario bad
timeout 10s

group fleet of 1 device

at soon broker kill
SCN
"$scansim" test "$work/bad.scn" >"$work/bad.out" 2>"$work/bad.err"
rc=$?
check "a wrong file exits 2 (got $rc)" test "$rc" -eq 2
check "the error is file:line:column: message" \
    grep -qx "$work/bad.scn:6:4: expected a duration such as 500ms or 2s, found 'soon'" "$work/bad.err"
check "nothing ran (no summary line)" bash -c "! grep -q 'passed' '$work/bad.out'"

# 2. Usage errors.
"$scansim" test --bogus >/dev/null 2>&1
check "an unknown option exits 2" test $? -eq 2
"$scansim" test --pcap "$work/bad.scn" >/dev/null 2>&1
check "--pcap without --keep exits 2" test $? -eq 2
"$scansim" test "$work/missing.scn" >/dev/null 2>"$work/missing.err"
check "a missing file exits 2" test $? -eq 2
"$scansim" test --help >"$work/help.out" 2>&1
check "--help exits 0 and names the exit codes" grep -q "Exit codes" "$work/help.out"

# 3. A scenario that must fail: exit 1, timeline, replay line, summary, JUnit failure.
cat >"$work/must_fail.scn" <<'SCN'
scenario must_fail
seed 5
timeout 20s

group fleet of 1 device
  layout per-device
  operator auto think 10ms..20ms

at 0s publish 1 item to device 1
wait until ledger registered_once == 1 within 10s
expect ledger published == 2
expect ledger lost == 0
expect ledger published == 3 within 200ms + 0.5 * startup
SCN
"$scansim" test "$work/must_fail.scn" --seed 42 --junit "$work/junit.xml" >"$work/fail.out" 2>&1
rc=$?
check "a failing scenario exits 1 (got $rc)" test "$rc" -eq 1
check "FAIL line" grep -q "^FAIL must_fail (" "$work/fail.out"
check "the failed step with what was measured" \
    grep -q "must_fail.scn:11:1: then: expect ledger published == 2: ledger published = 1, expected == 2" "$work/fail.out"
check "the other expectations still ran" grep -q "ok .*line 12 .*expect ledger lost == 0" "$work/fail.out"
check "the replay line carries the --seed used" \
    grep -q "replay: scansim test $work/must_fail.scn --seed 42" "$work/fail.out"
# A window with 'startup' in it: 200 ms + half of this run's time to time zero.
win=$(sed -n 's/.*FAILED line 13 .*(window \([0-9.]*\)s with startup \([0-9.]*\)s).*/\1 \2/p' "$work/fail.out")
check "a failed window names what it came to with startup ($win)" \
    awk -v w="${win% *}" -v s="${win#* }" 'BEGIN { d = w - (0.2 + s / 2); exit !(s > 0 && d < 0.002 && d > -0.002) }'
check "the summary line" grep -qx "0 passed, 1 failed" "$work/fail.out"
check "JUnit testcase with a failure" grep -q '<failure message="' "$work/junit.xml"
check "JUnit names the scenario" grep -q 'name="must_fail"' "$work/junit.xml"

# 4. Replay: the same seed draws the same random devices; the seed is printed.
cat >"$work/replay.scn" <<'SCN'
scenario replay
seed 3
timeout 20s

group fleet of 12 devices
  operator manual

at 0s power off random 3 devices
after 0ms power on all devices
expect no will for all devices
SCN
for run in a b; do
    "$scansim" test "$work/replay.scn" --seed 77 --keep "$work/replay-$run" >/dev/null 2>&1
done
"$scansim" test "$work/replay.scn" --keep "$work/replay-c" >/dev/null 2>&1
drew() { grep -o "drew .*" "$work/replay-$1/replay/timeline.txt"; }
check "a random selector drew devices" test -n "$(drew a)"
check "the same --seed draws the same devices" test "$(drew a)" = "$(drew b)"
check "the timeline names the seed used" grep -q "seed 77" "$work/replay-a/replay/timeline.txt"
check "without --seed the file's seed is used" grep -q "seed 3" "$work/replay-c/replay/timeline.txt"

# 5. TLS and mutual TLS brokers (a throw-away PKI from ci/make-pki.sh per run).
for variant in tls mtls; do
    cat >"$work/$variant.scn" <<SCN
scenario ${variant}_fleet
timeout 30s

broker $variant

group fleet of 2 devices
  layout per-device
  operator auto think 10ms..20ms

backend
  items 6

wait until ledger registered_once == 6 within 15s
expect ledger lost == 0
SCN
    "$scansim" test "$work/$variant.scn" >"$work/$variant.out" 2>&1
    check "broker $variant: devices register over TLS (exit $?)" grep -qx "1 passed, 0 failed" "$work/$variant.out"
done

# 6. A broker scansim did not start (--broker): a scenario that configures its broker is
#    skipped with the reason (exit 0, JUnit <skipped>); broker kill/restart run the user's
#    commands; the device ids' retained status from an earlier run is cleared first.
ext_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npid_file %s/ext.pid\nuser %s\n' "$ext_port" "$work" "$(id -un)" >"$work/ext.conf"
mosquitto -c "$work/ext.conf" -d
for _ in $(seq 50); do [ -s "$work/ext.pid" ] && break; sleep 0.1; done
# An earlier run's leftovers: a persistent session of scanner-1 with an item queued in it.
mosquitto_sub -p "$ext_port" -c -i scanner-1 -q 1 -t item_registration -E
mosquitto_pub -p "$ext_port" -q 1 -t item_registration -m '{"item_id":999,"item_name":"stale","tag_quantity":1}'
cat >"$work/ext_acl.scn" <<'SCN'
scenario ext_acl
timeout 10s
broker acl
group fleet of 1 device
expect online == true on all devices
SCN
cat >"$work/ext_crash.scn" <<'SCN'
scenario ext_crash
timeout 40s
group fleet of 2 devices
  operator manual
at 0s expect retained status of all devices == online
expect items_received == 0 on all devices
after 0ms broker kill
after 500ms broker restart
wait until reconnects >= 1 on all devices within 20s
expect online == true on all devices within 5s
SCN
"$scansim" test --broker "tcp://127.0.0.1:$ext_port" --junit "$work/ext.xml" \
    --broker-kill "kill -9 \$(cat $work/ext.pid)" \
    --broker-start "ls -l /proc/\$\$/fd/ >$work/start_fds.txt; mosquitto -c $work/ext.conf -d" \
    "$work/ext_acl.scn" "$work/ext_crash.scn" >"$work/ext.out" 2>&1
rc=$?
check "an external broker run with a skip exits 0 (got $rc)" test "$rc" -eq 0
check "the skip names its reason" grep -q "^SKIP ext_acl: it configures its broker (variant acl" "$work/ext.out"
check "the summary counts the skip" grep -qx "1 passed, 0 failed, 1 skipped" "$work/ext.out"
check "JUnit reports the skip" grep -q '<skipped message="it configures its broker' "$work/ext.xml"
check "JUnit counts it" grep -q 'skipped="1"' "$work/ext.xml"
# The broker a command starts holds none of the runner's sockets (it would keep closed
# connections up, and their epoll registrations alive in the runner).
check "the broker-start command ran" test -s "$work/start_fds.txt"
check "it inherited no socket of the runner" bash -c "! grep -q 'socket:' '$work/start_fds.txt'"
"$scansim" test --broker-kill "true" "$work/ext_crash.scn" >/dev/null 2>&1
check "--broker-kill without --broker exits 2" test $? -eq 2
"$scansim" test --broker "tcp://127.0.0.1:$ext_port" "$work/ext_crash.scn" >"$work/ext2.out" 2>&1
check "broker kill without a command is a skip, not a pass" \
    grep -q "^SKIP ext_crash: it runs 'broker kill' on a broker scansim did not start: give --broker-kill CMD" "$work/ext2.out"
# Scenarios on one broker would take over each other's client ids and receive each
# other's items: with -j 2 they run one after another there, and both pass.
"$scansim" test -j 2 --broker "tcp://127.0.0.1:$ext_port" "$2/happy_path.scn" \
    "$2/hostile_payloads.scn" >"$work/ext_jobs.out" 2>&1
check "-j 2 on one external broker: both scenarios pass" grep -qx "2 passed, 0 failed" "$work/ext_jobs.out"
kill "$(cat "$work/ext.pid")" 2>/dev/null

# 7. --keep + --pcap: artefacts and a capture tshark decodes as MQTT.
cat >"$work/capture.scn" <<'SCN'
scenario capture
timeout 20s

group fleet of 1 device
  layout per-device
  link proxy
  operator auto think 10ms..20ms

at 0s publish 2 items to device 1
wait until ledger registered_once == 2 within 10s
SCN
"$scansim" test "$work/capture.scn" --keep "$work/keep" --pcap >"$work/keep.out" 2>&1
rc=$?
check "the capture scenario passes (got $rc)" test "$rc" -eq 0
k="$work/keep/capture"
for f in mosquitto.conf mosquitto.log ledger.sqlite timeline.txt status.log devices.log; do
    check "--keep left $f" test -s "$k/$f"
done
pcap=$(ls "$k"/pcap/*.pcap 2>/dev/null | head -n 1)
check "--pcap left a capture of the device link" test -n "$pcap"
if [ -z "$tshark" ] || [ ! -x "$tshark" ]; then
    echo "tshark not found: the decode check is skipped"
    [ "$fails" -eq 0 ] && exit 77
    exit 1
fi
port=$(awk '/^listener/ {print $2; exit}' "$k/mosquitto.conf")
"$tshark" -r "$pcap" -d "tcp.port==$port,mqtt" -Y mqtt >"$work/tshark.out" 2>&1
check "tshark decodes MQTT PUBLISH in the capture" grep -q "Publish" "$work/tshark.out"
check "tshark decodes the CONNECT" grep -q "Connect Command" "$work/tshark.out"

echo "$fails check(s) failed"
[ "$fails" -eq 0 ]
