#!/bin/sh
# identity_test.sh - per-device identities against a broker with per-device ACLs.
#
# usage: identity_test.sh SCANSIM CASE
#   certs      1,000 devices, each with its own client certificate (ci/make-pki.sh), against
#              a mosquitto with require_certificate + use_identity_as_username and the ACL
#              deploy/mosquitto/per-device.acl: every item registered once. Then a device
#              that presents another's certificate is refused its topics (never online),
#              and a missing certificate is a clear error, exit 2.
#   passwords  devices logging in as their id with their own password (--password-file,
#              --id-as-username) against password_file + the same ACL; the password is
#              never printed; a device without a line is exit 2.
set -u
SCANSIM=$1
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CHECK="python3 $HERE/fleet_json_check.py"
. "$HERE/test_lib.sh"
test_setup

# start_broker CONF-LINES...: mosquitto on $PORT with the per-device ACL
start_broker() {
    start_mosquitto m "per_listener_settings false" "max_queued_messages 0" \
        "acl_file $ROOT/deploy/mosquitto/per-device.acl" "$@"
}

PORT=$(free_port)
case "$CASE" in
certs)
    bash "$ROOT/ci/make-pki.sh" "$T/pki" 1000 >/dev/null || fail "make-pki.sh"
    P=$T/pki
    start_broker "listener $PORT 127.0.0.1" "cafile $P/ca.crt" "certfile $P/server.crt" \
        "keyfile $P/server.key" "require_certificate true" "use_identity_as_username true"
    URI=ssl://127.0.0.1:$PORT
    "$SCANSIM" run --broker "$URI" --cafile "$P/ca.crt" --cert "$P/backend.crt" \
        --key "$P/backend.key" --cert-dir "$P" --devices 1000 --items 2000 \
        --json "$T/r.json" >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 0 ] || fail "exit code $rc, expected 0"
    $CHECK "$T/r.json" devices_connected=1000 items_published=2000 items_registered=2000 \
        items_lost=0 duplicate_registrations=0 || fail "report"
    # scanner-2 presenting scanner-1's certificate is user scanner-1: its own topics refused
    mkdir "$T/swapped"
    cp "$P/scanner-1.crt" "$P/scanner-1.key" "$T/swapped/"
    cp "$P/scanner-1.crt" "$T/swapped/scanner-2.crt"
    cp "$P/scanner-1.key" "$T/swapped/scanner-2.key"
    "$SCANSIM" run --broker "$URI" --cafile "$P/ca.crt" --cert "$P/backend.crt" \
        --key "$P/backend.key" --cert-dir "$T/swapped" --devices 2 --workers 1 --items 4 \
        --connect-timeout 5s --grace 2s --session clean --json "$T/swap.json" >"$T/swap.out" 2>"$T/swap.err"
    rc=$?
    [ $rc -ne 0 ] || fail "a device with another's certificate: exit 0"
    # mosquitto lets it in (the certificate is good) and then drops it at its first use of
    # its own topics: its items are lost, the run says so
    $CHECK "$T/swap.json" exit_code=1 items_registered=2 items_lost=2 || fail "the swapped device worked"
    rm "$T/swapped/scanner-2.key"
    "$SCANSIM" run --broker "$URI" --cafile "$P/ca.crt" --cert-dir "$T/swapped" --devices 2 \
        --workers 1 >"$T/miss.out" 2>"$T/miss.err"
    rc=$?
    [ $rc -eq 2 ] || fail "a missing key: exit $rc, expected 2"
    grep -q "device scanner-2 has no key .*scanner-2.key" "$T/miss.err" || fail "the missing key is not named"
    ;;
passwords)
    : >"$T/passwd"
    : >"$T/ids"
    for i in $(seq 1 20); do echo "scanner-$i:pw-$i-secret" >>"$T/ids"; done
    cp "$T/ids" "$T/passwd"
    echo "backend:backend-secret" >>"$T/passwd"
    mosquitto_passwd -U "$T/passwd" || fail "mosquitto_passwd"
    start_broker "listener $PORT 127.0.0.1" "allow_anonymous false" "password_file $T/passwd"
    URI=tcp://127.0.0.1:$PORT
    SCANSIM_MQTT_PASSWORD=backend-secret "$SCANSIM" run --broker "$URI" -u backend \
        --password-file "$T/ids" --id-as-username --devices 20 --items 200 \
        --json "$T/r.json" >"$T/run.out" 2>"$T/run.err"
    rc=$?
    [ $rc -eq 0 ] || fail "exit code $rc, expected 0"
    $CHECK "$T/r.json" devices_connected=20 items_registered=200 items_lost=0 || fail "report"
    grep -q "secret" "$T/run.out" "$T/run.err" && fail "a password was printed"
    head -5 "$T/ids" >"$T/few"
    "$SCANSIM" run --broker "$URI" -u backend --password-file "$T/few" --id-as-username \
        --devices 6 >"$T/few.out" 2>"$T/few.err"
    rc=$?
    [ $rc -eq 2 ] || fail "a device without a password: exit $rc, expected 2"
    grep -q "no password for device scanner-6" "$T/few.err" || fail "the device without a password is not named"
    ;;
*)
    echo "identity_test.sh: unknown case '$CASE'" >&2
    exit 2
    ;;
esac
echo "PASS ($CASE)"
