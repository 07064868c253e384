#!/usr/bin/env bash
# CLI contract of scansim: --help, --version, wrong commands and flags give exit code 2 and
# a message that names the problem. Usage: cli_test.sh path/to/scansim
set -u
bin=$1
fail=0
expect() { # expect CODE PATTERN -- args...
    local code=$1 pattern=$2; shift 3
    local out rc
    out=$("$bin" "$@" 2>&1); rc=$?
    if [[ $rc -ne $code ]]; then
        echo "FAIL: scansim $* exited $rc, expected $code"; echo "$out" | head -5; fail=1; return
    fi
    if ! grep -qE -- "$pattern" <<<"$out"; then
        echo "FAIL: scansim $*: output lacks /$pattern/"; echo "$out" | head -5; fail=1; return
    fi
    echo "ok: scansim $* -> $rc"
}
expect 0 'usage: scansim' -- --help
expect 0 '^scansim [0-9]+\.[0-9]+' -- --version
expect 2 "unknown command 'frobnicate'" -- frobnicate
expect 2 'usage: scansim' --
for cmd in demo run test bench ctl; do
    if "$bin" --help | grep -qE "^  $cmd "; then
        expect 0 "usage: scansim $cmd" -- "$cmd" --help
        expect 2 "(unrecognized|unknown) option" -- "$cmd" --no-such-flag
    fi
done
if "$bin" --help | grep -qE '^  run '; then
    expect 2 "--qos: expected a whole number from 0 to 2, got '7'" -- run --qos 7
    expect 2 "--broker: expected a URI" -- run --broker localhost
    expect 2 "--protocol-version: expected 311" -- run -V 4
    expect 2 "--cafile: cannot read '/nonexistent/ca.crt': No such file or directory" -- \
        run --broker ssl://127.0.0.1:8883 --cafile /nonexistent/ca.crt
    expect 2 "--cert and --key go together" -- run --broker ssl://127.0.0.1:8883 --cert /etc/hostname
    # One process cannot hold more devices than its file descriptors: refused at once.
    expect 2 "devices in one process need about [0-9]+ file descriptors .* give --workers [0-9]+ or more" -- \
        run --devices 1000000 --workers 1 --items 1
    # An unreachable broker is reported in words with exit code 3, and the password never shows.
    out=$("$bin" run --broker tcp://127.0.0.1:1 -u alice -P s3cr3t-pw --devices 1 --items 1 --duration 3s 2>&1); rc=$?
    if [[ $rc -ne 3 && $rc -ne 1 ]]; then echo "FAIL: unreachable broker exited $rc"; fail=1; fi
    if grep -q 's3cr3t-pw' <<<"$out"; then echo "FAIL: the password was printed"; fail=1; fi
    echo "ok: unreachable broker -> $rc, password not printed"
fi
if "$bin" --help | grep -qE '^  ctl '; then
    # Malformed requests are refused before any connection, naming what is wrong.
    expect 2 "unknown command 'reboot-now': expected one of identify, message, status" -- \
        ctl reboot-now scanner-1
    expect 2 "bad range 'scanner-9..1'" -- ctl status 'scanner-9..1'
    expect 2 "'all' stands alone" -- ctl status all,scanner-1
    expect 2 "bad device id 'a/b'" -- ctl status a/b
    expect 2 "message needs its text" -- ctl message scanner-1
    expect 2 "bad argument 'keepalive': expected key=value" -- ctl config scanner-1 keepalive
    expect 2 "--force is for reboot and clear_queue, not status" -- ctl status scanner-1 --force
    expect 2 "--timeout: expected a number" -- ctl status scanner-1 --timeout soon
    expect 2 "expected <command> <selector>" -- ctl status
    out=$("$bin" ctl status scanner-1 --broker tcp://127.0.0.1:1 -u alice -P s3cr3t-pw 2>&1); rc=$?
    if [[ $rc -ne 3 ]]; then echo "FAIL: ctl, unreachable broker exited $rc, expected 3"; fail=1; fi
    if ! grep -q 'tcp://127.0.0.1:1 failed: the broker cannot be reached' <<<"$out"; then
        echo "FAIL: ctl, unreachable broker: $out"; fail=1; fi
    if grep -q 's3cr3t-pw' <<<"$out"; then echo "FAIL: ctl printed the password"; fail=1; fi
    echo "ok: ctl, unreachable broker -> $rc, password not printed"
fi
exit $fail
