#!/bin/sh
# ci/bench.sh - the fleet benchmark: build scansim in Release and run `scansim bench`.
#
# usage: ci/bench.sh [BUILD_DIR] [-- scansim bench options]
#   BUILD_DIR  defaults to build-bench (a Release build of its own)
# Measures on one embedded mosquitto: the raw QoS 1 ceiling (one Paho publisher, one
# subscriber) and `scansim run` with 1,000 and 10,000 devices, 3 runs each, medians.
# Takes a few minutes; not part of the test suite. Figures depend on the machine and on
# what else runs on it: run it on an idle machine.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target scansim >/dev/null
# every device is a socket, here and in the broker (started by scansim, it inherits this)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$BUILD/app/scansim" bench "$@"
