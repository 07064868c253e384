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
for cmd in demo run test bench; do
    if "$bin" --help | grep -qE "^  $cmd "; then
        expect 0 "usage: scansim $cmd" -- "$cmd" --help
        expect 2 "(unrecognized|unknown) option" -- "$cmd" --no-such-flag
    fi
done
if "$bin" --help | grep -qE '^  run '; then
    expect 2 "--qos: expected a whole number from 0 to 1, got '7'" -- run --qos 7
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
exit $fail
