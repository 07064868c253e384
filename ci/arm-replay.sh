#!/usr/bin/env bash
# Replays device traces recorded on Linux against firmware_core on an emulated Cortex-M
# (QEMU mps2-an385, the RP2040's Cortex-M0+ code on its Cortex-M3) and fails unless every
# port call comes out byte for byte the same (docs/trace.md). The traces:
#   - a seeded random run of 10,000 events (fw_trace_gen: hostile payloads, acks,
#     refusals, losses, reboots, flash failures);
#   - the happy_path, hostile_payloads and offline_outbox scenarios, recorded by
#     `scansim test --trace` against a real mosquitto, one trace per device.
# Each is replayed on the host build first (a trace Linux cannot replay is a recorder
# bug), then on the board, which also prints the target's figures: RAM per device, the
# codec's heaviest payloads, and per event type the instructions (-icount), the painted
# stack depth and cJSON's heap. Output: BUILD_ARM/reports/arm-replay.txt.
# Usage: ci/arm-replay.sh [host build dir] [ARM build dir]   (defaults build, build/arm;
#        ci/build.sh builds both: the host build cross-builds the image as fw_arm, and
#        runs this script as the CTest test arm_replay, label arm)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
host=$(cd "${1:-$root/build}" && pwd)
arm=$(cd "${2:-$root/build/arm}" && pwd)
image=$arm/firmware_core/arm/fw_arm_replay.elf
gen=$host/firmware_core/trace/fw_trace_gen
replay=$host/firmware_core/trace/fw_trace_replay
for f in "$image" "$gen" "$replay" "$host/app/scansim"; do
  [[ -x $f || -f $f ]] || { echo "arm-replay: $f missing (build it first)" >&2; exit 2; }
done
command -v qemu-system-arm >/dev/null || { echo "arm-replay: qemu-system-arm not found (bash ci/install-deps.sh)" >&2; exit 2; }

traces=$arm/traces
rm -rf "$traces" && mkdir -p "$traces" "$arm/reports"
echo "-- recording traces"
"$gen" --seed "${ARM_REPLAY_SEED:-20261202}" --events 10000 --out "$traces/random-10000.fwtrace"
"$host/app/scansim" test --trace "$traces/scenarios" \
  "$root/scenarios/happy_path.scn" "$root/scenarios/hostile_payloads.scn" \
  "$root/scenarios/offline_outbox.scn"
# Paths relative to the traces folder: QEMU's semihosting opens them from its own cwd.
(cd "$traces" && find . -name '*.fwtrace' | sort > list.txt)
echo "   $(wc -l < "$traces/list.txt") traces, $(du -sh "$traces" | cut -f1)"

echo "-- replay on the host build"
(cd "$traces" && "$replay" @list.txt > "$arm/reports/host-replay.txt") ||
  { cat "$arm/reports/host-replay.txt"; echo "arm-replay: the host build does not replay its own traces" >&2; exit 1; }

echo "-- replay on QEMU mps2-an385 (-icount shift=6)"
set +e
(cd "$traces" && timeout "${ARM_REPLAY_TIMEOUT:-300}" qemu-system-arm -M mps2-an385 -nographic \
   -icount shift=6 -semihosting-config enable=on,target=native,arg=fw_arm_replay,arg=@list.txt \
   -kernel "$image") > "$arm/reports/arm-replay.txt"
rc=$?
set -e
grep -v '^== \./' "$arm/reports/arm-replay.txt" | grep -v ': [0-9]* events, .*identical$' || true
echo "   $(grep -c 'identical$' "$arm/reports/arm-replay.txt") of $(wc -l < "$traces/list.txt") traces identical on the board"
if ((rc == 3)); then
  # The image faulted: name the faulting function and its caller.
  read -r pc lr < <(sed -n 's/.*fault .*pc=\(0x[0-9a-f]*\) lr=\(0x[0-9a-f]*\).*/\1 \2/p' \
                    "$arm/reports/arm-replay.txt" | head -1) || true
  [[ -n ${pc:-} ]] && arm-none-eabi-addr2line -f -p -e "$image" "$pc" "$lr" | sed 's/^/   at /'
fi
if ((rc == 3)); then
  echo "arm-replay: FAIL: the firmware faulted on the board, see above and $arm/reports/arm-replay.txt" >&2
  exit 1
elif ((rc != 0)); then
  echo "arm-replay: FAIL (exit $rc): the board's calls differ from Linux's, see above and $arm/reports/arm-replay.txt" >&2
  exit 1
fi
echo "arm-replay: OK"
