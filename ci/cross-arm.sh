#!/usr/bin/env bash
# Cross-compiles firmware_core for the RP2040 (Cortex-M0+, arm-none-eabi-gcc + newlib) as
# proof that it is portable C11 with no OS underneath, and reports its footprint:
#   flash = .text + .rodata of the library, RAM per device = sizeof(struct fw_device) on
#   ARM + the library's own .data + .bss. Fails if one device needs more than 32 KiB of RAM.
# cJSON is not compiled: Debian ships only its header and a host library, no source; a
# board build adds cJSON.c (about 10 KB of flash with -Os) from upstream.
# Usage: ci/cross-arm.sh [output dir]   (any working directory)
#   FW_ARM_CFLAGS="-DFW_OUTBOX_LEN=64 ..." tries other fw_config.h sizes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/fw-arm.XXXXXX")}
mkdir -p "$out/obj" "$out/include"
ram_limit=$((32 * 1024))

CC=arm-none-eabi-gcc
for tool in "$CC" arm-none-eabi-ar arm-none-eabi-size; do
  command -v "$tool" >/dev/null || { echo "cross-arm: $tool not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)" >&2; exit 2; }
done
# The code includes <cjson/cJSON.h>; expose only that header, never the host's /usr/include.
ln -sfn /usr/include/cjson "$out/include/cjson"
[[ -f "$out/include/cjson/cJSON.h" ]] || { echo "cross-arm: /usr/include/cjson/cJSON.h missing (libcjson-dev)" >&2; exit 2; }

CFLAGS=(-mcpu=cortex-m0plus -mthumb -Os -Wall -Wextra -Werror -std=c11
        -ffunction-sections -fdata-sections -fstack-usage
        -I"$root/firmware_core/include" -I"$root/firmware_core/src" -isystem "$out/include")
# shellcheck disable=SC2206 # word splitting of the extra flags is intended
CFLAGS+=(${FW_ARM_CFLAGS:-})

echo "== cross-compile firmware_core for RP2040 (Cortex-M0+), $($CC -dumpversion)"
echo "   note: cJSON itself is not compiled (Debian ships no cJSON source), only its header is used"
objs=()
for src in "$root"/firmware_core/src/*.c; do
  obj="$out/obj/$(basename "${src%.c}").o"
  "$CC" "${CFLAGS[@]}" -c "$src" -o "$obj"
  objs+=("$obj")
done
rm -f "$out/libfw_core.a"
arm-none-eabi-ar rcs "$out/libfw_core.a" "${objs[@]}"
echo "-- arm-none-eabi-size -t $out/libfw_core.a"
arm-none-eabi-size -t "$out/libfw_core.a"

# Section totals straight from the objects (Berkeley "text" lumps .rodata in with .text).
sum_sections() { # $1 = awk regex of section names
  arm-none-eabi-size -A "${objs[@]}" | awk -v re="$1" '$1 ~ re { s += $2 } END { print s + 0 }'
}
text=$(sum_sections '^\.text')
rodata=$(sum_sections '^\.rodata')
data=$(sum_sections '^\.data')
bss=$(sum_sections '^\.bss|^COMMON')

# sizeof(struct fw_device) as the ARM compiler lays it out: one global instance in .bss.
cat > "$out/probe.c" <<'PROBE'
#include "fw/fw_device.h"
struct fw_device probe;
PROBE
"$CC" "${CFLAGS[@]}" -c "$out/probe.c" -o "$out/probe.o"
device=$(arm-none-eabi-size -A "$out/probe.o" | awk '$1 ~ /^\.bss/ { s += $2 } END { print s + 0 }')
ram=$((device + data + bss))

echo "-- footprint (Cortex-M0+, -Os)"
printf '   flash (.text + .rodata): %6d bytes  (.text %d, .rodata %d)\n' $((text + rodata)) "$text" "$rodata"
printf '   sizeof(struct fw_device): %5d bytes\n' "$device"
printf '   library .data + .bss:    %6d bytes\n' $((data + bss))
printf '   RAM per device instance: %6d bytes  (limit %d)\n' "$ram" "$ram_limit"
# -fstack-usage wrote one .su file per object: the largest single frame, for sizing stacks.
biggest=$(cat "$out"/obj/*.su | sort -t$'\t' -k2,2n | tail -1 | awk -F'\t' '{ print $2 " bytes in " $1 }')
echo "   largest stack frame:     $biggest"
if ((ram > ram_limit)); then
  echo "cross-arm: FAIL: one device needs $ram bytes of RAM, more than $ram_limit" >&2
  exit 1
fi
echo "cross-arm: OK ($out)"
