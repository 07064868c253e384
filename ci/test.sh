#!/usr/bin/env bash
# The test command: installs dependencies, builds, runs every test (unit, broker
# integration, tmux, scenarios), then the whole suite again under ASan+UBSan, then the
# RP2040 cross-compile with its footprint. Each test starts the private mosquitto it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
# mosquitto's Debian package may start a system broker on 1883; our tests never use it.
mkdir -p build/reports
echo "== build"
bash ci/build.sh build
echo "== tests"
ctest --test-dir build --output-on-failure -j2 --output-junit reports/ctest.xml
echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
bash ci/build.sh build-asan -DSCANSIM_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2 -LE nosan
echo "== cross-compile firmware_core for RP2040 (Cortex-M0+)"
bash ci/cross-arm.sh
