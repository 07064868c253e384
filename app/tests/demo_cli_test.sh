#!/usr/bin/env bash
# demo_cli_test.sh - the contract of `scansim demo` outside a terminal: --help names the keys,
# options and exit codes; bad flags and values (--devices 0 or 10 among
# them) give exit code 2 and say what is wrong; without
# a TTY it refuses with exit code 2 and suggests tmux (and starts no broker).
# Usage: demo_cli_test.sh path/to/scansim
set -u
bin=$1
fail=0
expect() { # expect CODE PATTERN -- args...   (stdin is /dev/null: not a TTY)
    local code=$1 pattern=$2; shift 3
    local out rc
    out=$("$bin" "$@" 2>&1 </dev/null); rc=$?
    if [[ $rc -ne $code ]]; then
        echo "FAIL: scansim $* exited $rc, expected $code"; echo "$out" | head -5; fail=1; return
    fi
    if ! grep -qE -- "$pattern" <<<"$out"; then
        echo "FAIL: scansim $*: output lacks /$pattern/"; echo "$out" | head -5; fail=1; return
    fi
    echo "ok: scansim $* -> $rc"
}
expect 0 'usage: scansim demo' -- demo --help
for word in '--no-backend' '--flash DIR' '--id ID' 'n +cut' 'T +type a tag' 'Exit codes' '--broker URI' \
            '--devices N' '--layout seed' 'Tab +choose the next scanner' '\? +show or hide this help' \
            '1-9 +choose scanner'; do
    expect 0 "$word" -- demo --help
done
expect 2 'unrecognized option' -- demo --frobnicate
expect 2 "--id: expected 1 to 47 printable ASCII characters" -- demo --id 'a/b'
expect 2 "--qos: expected a whole number from 0 to 2, got '3'" -- demo --qos 3
expect 2 "--seed: expected a whole number" -- demo --seed x
expect 2 "unexpected argument 'extra'" -- demo extra
expect 2 "--devices: expected a whole number from 1 to 9, got '0'" -- demo --devices 0
expect 2 "--devices: expected a whole number from 1 to 9, got '10'" -- demo --devices 10
expect 2 "--devices: expected a whole number from 1 to 9, got 'x'" -- demo --devices x
expect 2 "--id: '.*' is too long for 3 scanners" -- demo --devices 3 --id "$(printf 'a%.0s' {1..46})"
expect 2 'needs a terminal: stdin is not a TTY.*tmux new-session' -- demo
exit $fail
