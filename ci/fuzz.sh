#!/usr/bin/env bash
# fuzz.sh [SECONDS] [TARGET...] - build the libFuzzer targets with clang and run each one.
#
# Configures build-fuzz/ (or $SCANSIM_FUZZ_BUILD) with clang and -DSCANSIM_FUZZ=ON, builds only
# the fuzz targets, and runs each for SECONDS (default 30; env FUZZ_SECONDS too) on a copy of
# its seed corpus fuzz/corpus/<target>/ (the repository is never modified), with its
# dictionary fuzz/<target>.dict, -rss_limit_mb=2048 and -timeout=10, as many targets at once
# as there are cores. Targets: fw_codec, scenario, mqtt_frame, fw_device, fw_trace (default:
# all five).
#
# Exit code: 0 when no target crashed, 1 when one did (the reproducer's path is printed:
# re-run it with `build-fuzz/fuzz/fuzz_<target> <file>`), 2 on a build failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-${FUZZ_SECONDS:-30}}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fw_codec scenario mqtt_frame fw_device fw_trace)
build=${SCANSIM_FUZZ_BUILD:-$root/build-fuzz}
case $secs in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;; esac

if ! command -v clang >/dev/null; then
    echo "fuzz.sh: clang not found; apt-get install clang (14) libclang-rt-14-dev" >&2
    exit 2
fi
echo "== configure $build (clang, SCANSIM_FUZZ=ON)"
if ! cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DSCANSIM_FUZZ=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1; then
    tail -30 "$build.configure.log" >&2
    echo "fuzz.sh: cmake configure failed (log: $build.configure.log)" >&2
    exit 2
fi
echo "== build"
if ! cmake --build "$build" --target "${targets[@]/#/fuzz_}" -j"$(nproc)"; then
    echo "fuzz.sh: building the fuzz targets failed; if the link of -fsanitize=fuzzer fails," \
         "apt-get install libclang-rt-14-dev" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/scansim-fuzz-XXXXXX")
# One target: fuzz it, then write what to print into $work/$t/report and 1 into
# $work/$t/failed when it crashed. The targets run side by side, one per core, each for
# the full SECONDS; their reports are printed in order afterwards.
fuzz_one() {
    local t=$1 bin=$build/fuzz/fuzz_$1 corpus=$work/$1/corpus artifacts=$work/$1/artifacts
    local dict=() rc found
    mkdir -p "$corpus" "$artifacts"
    cp -r "$root/fuzz/corpus/$t/." "$corpus/" 2>/dev/null || true
    [ -f "$root/fuzz/$t.dict" ] && dict=(-dict="$root/fuzz/$t.dict")
    {
        echo "== fuzz_$t for ${secs}s (corpus copy: $corpus)"
        # Leaks count as crashes (ASan's leak check runs at exit of each crashing/last input).
        "$bin" "$corpus" "${dict[@]}" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
            -max_len=4096 -artifact_prefix="$artifacts/" -print_final_stats=1 \
            >"$work/$t/fuzz.log" 2>&1
        rc=$?
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$work/$t/fuzz.log" |
            sed "s/^/   /"
        found=$(find "$artifacts" -type f | head -5)
        if [ $rc -ne 0 ] || [ -n "$found" ]; then
            echo 1 >"$work/$t/failed"
            echo "!! fuzz_$t FAILED (exit $rc). Log: $work/$t/fuzz.log"
            grep -E 'ERROR: |SUMMARY: |runtime error' "$work/$t/fuzz.log" | head -5
            for f in $found; do
                echo "!! reproducer: $f  (run: $bin $f)"
            done
        else
            echo "   fuzz_$t: no crash, corpus now $(find "$corpus" -type f | wc -l) inputs"
        fi
    } >"$work/$t.report" 2>&1
}
jobs_max=$(nproc)
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
        wait -n
    done
    fuzz_one "$t" &
done
wait
status=0
for t in "${targets[@]}"; do
    cat "$work/$t.report"
    [ -f "$work/$t/failed" ] && status=1
done
if [ $status -eq 0 ]; then
    rm -rf "$work"
    echo "== fuzz: all targets ran ${secs}s without a crash"
else
    echo "== fuzz: crashes found; inputs and logs kept in $work" >&2
fi
exit $status
