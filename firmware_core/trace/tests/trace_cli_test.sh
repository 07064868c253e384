#!/usr/bin/env bash
# The trace tools' contract: a generated trace replays identically on the host build, and
# damaged files or wrong flags get exit code 2 and a message naming the file and offset.
# Usage: trace_cli_test.sh FW_TRACE_GEN FW_TRACE_REPLAY WORKDIR
set -euo pipefail
gen=$1 replay=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$gen" --seed 7 --events 2000 --out "$work/a.fwtrace"
"$gen" --seed 7 --events 2000 --out "$work/b.fwtrace"
cmp -s "$work/a.fwtrace" "$work/b.fwtrace" || fail "the same seed gave two different traces"
out=$("$replay" "$work/a.fwtrace") || fail "a fresh trace did not replay: $out"
grep -q "2000 events" <<<"$out" || fail "expected 2000 events: $out"

size=$(stat -c %s "$work/a.fwtrace")
head -c $((size - 3)) "$work/a.fwtrace" > "$work/cut.fwtrace"
set +e
err=$("$replay" "$work/cut.fwtrace" 2>&1); rc=$?
set -e
[[ $rc -eq 2 ]] || fail "a cut trace gave exit $rc, not 2"
grep -q "cut.fwtrace: offset [0-9]*: truncated record" <<<"$err" || fail "no file/offset: $err"

printf 'FWTQ\1\0\0\0' > "$work/magic.fwtrace"
set +e
err=$("$replay" "$work/magic.fwtrace" 2>&1); rc=$?
set -e
[[ $rc -eq 2 ]] && grep -q "magic.fwtrace: offset 0: not a trace" <<<"$err" || fail "bad magic: $rc $err"

dump=$("$replay" --dump "$work/a.fwtrace") || fail "--dump of a fresh trace failed"
grep -q "^       8 init device_id=\"gen-1\"" <<<"$dump" || fail "--dump does not start with init at 8"
set +e
err=$("$replay" --dump "$work/cut.fwtrace" 2>&1); rc=$?
set -e
[[ $rc -eq 2 ]] && grep -q "cut.fwtrace: offset [0-9]*: truncated" <<<"$err" || fail "--dump of a cut trace: $rc $err"

set +e
err=$("$gen" --seed x --out "$work/c.fwtrace" 2>&1); rc=$?
set -e
[[ $rc -eq 2 ]] && grep -q "usage" <<<"$err" || fail "a wrong flag value gave $rc: $err"
echo "trace_cli_test: OK"
