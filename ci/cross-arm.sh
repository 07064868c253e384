#!/usr/bin/env bash
# Cross-compiles firmware_core for the RP2040's core (Cortex-M0+, arm-none-eabi-gcc +
# newlib, -Os) with cmake/arm-none-eabi.cmake and the same source list as the host build,
# cJSON compiled for the target from Debian's source package (cmake/debian_cjson.cmake),
# and reports the footprint:
#   flash: firmware_core's objects (.text + .rodata), cJSON's, and a linked board program
#          keeping every entry point (fw_footprint.elf, --gc-sections), split by origin;
#   RAM per device: sizeof(struct fw_device) on ARM + the library's own .data + .bss;
#   the largest stack frame (-fstack-usage).
# Fails if one device needs more than 8 KiB of RAM. Also builds the QEMU test image
# (fw_arm_replay.elf) that ci/arm-replay.sh runs; the stack, instruction and heap figures
# come from there.
# Usage: ci/cross-arm.sh [build dir]   (default build/arm, where the host build's fw_arm
#        sub-build lives; any working directory)
#   FW_ARM_CFLAGS="-DFW_OUTBOX_LEN=64 ..." tries other fw_config.h sizes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/build/arm}
ram_limit=$((8 * 1024))

for tool in arm-none-eabi-gcc arm-none-eabi-size arm-none-eabi-nm cmake python3; do
  command -v "$tool" >/dev/null || { echo "cross-arm: $tool not found (bash ci/install-deps.sh)" >&2; exit 2; }
done

echo "== cross-compile firmware_core for RP2040 (Cortex-M0+), $(arm-none-eabi-gcc -dumpversion)"
cmake -S "$root" -B "$out" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/arm-none-eabi.cmake" \
      -DSCANSIM_FW_CFLAGS="${FW_ARM_CFLAGS:-}" | grep -E "cJSON for the target" || true
cmake --build "$out" -j"$(nproc)" >/dev/null

fw_objs=("$out"/firmware_core/CMakeFiles/fw_core.dir/src/*.obj)
mapfile -t cj_objs < <(find "$out/CMakeFiles/cjson_target.dir" -name '*.obj')
sum_sections() { # $1 = awk regex of section names, then objects
  local re=$1; shift
  arm-none-eabi-size -A "$@" | awk -v re="$re" '$1 ~ re { s += $2 } END { print s + 0 }'
}
text=$(sum_sections '^\.text' "${fw_objs[@]}")
rodata=$(sum_sections '^\.rodata' "${fw_objs[@]}")
data=$(sum_sections '^\.data' "${fw_objs[@]}")
bss=$(sum_sections '^\.bss|^COMMON' "${fw_objs[@]}")
cj_flash=$(sum_sections '^\.text|^\.rodata' "${cj_objs[@]}")

elf=$out/firmware_core/arm/fw_footprint.elf
read -r linked_text linked_data linked_bss _ < <(arm-none-eabi-size "$elf" | tail -1)
# sizeof(struct fw_device): the footprint program's one static device.
device_hex=$(arm-none-eabi-nm -S "$elf" | awk '$4 == "device" { print $2 }')
device=$((16#$device_hex))
ram=$((device + data + bss))

echo "-- footprint (Cortex-M0+, -Os)"
printf '   firmware_core objects (.text + .rodata): %6d bytes  (.text %d, .rodata %d)\n' \
       $((text + rodata)) "$text" "$rodata"
printf '   cJSON object, whole file (.text + .rodata): %5d bytes  (Debian %s)\n' "$cj_flash" \
       "$(sed -n 's/^SCANSIM_CJSON_VERSION:STRING=//p' "$out/CMakeCache.txt")"
printf '   linked board program, flash (text + data): %6d bytes  (fw_footprint.elf; .bss %d)\n' \
       $((linked_text + linked_data)) "$linked_bss"
# What the linked program's flash is made of, from the linker map.
python3 - "$out/firmware_core/arm/fw_footprint.map" <<'PY'
import collections, re, sys
text = open(sys.argv[1]).read()
text = text[text.index("Linker script and memory map"):]
size = collections.Counter()
pending = False
for line in text.splitlines():
    if re.match(r"^ \.(text|rodata|data)\S*\s*$", line):
        pending = True
        continue
    m = re.match(r"^ (\.(?:text|rodata|data)\S*)?\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)", line)
    if m and (m.group(1) or pending):
        f = m.group(3)
        who = ("firmware_core" if "libfw_core" in f else "cJSON" if "cjson" in f.lower()
               else re.sub(r"\(.*", "", f.rsplit("/", 1)[-1]))
        size[who] += int(m.group(2), 16)
    pending = False
print("     of which: " + ", ".join(f"{who} {n}" for who, n in size.most_common(5)))
PY
printf '   sizeof(struct fw_device): %5d bytes\n' "$device"
printf '   library .data + .bss:    %6d bytes\n' $((data + bss))
printf '   RAM per device instance: %6d bytes  (limit %d)\n' "$ram" "$ram_limit"
biggest=$(cat "$out"/firmware_core/CMakeFiles/fw_core.dir/src/*.su | sort -t$'\t' -k2,2n | tail -1 |
          awk -F'\t' '{ print $2 " bytes in " $1 }')
echo "   largest stack frame:     $biggest"
if ((ram > ram_limit)); then
  echo "cross-arm: FAIL: one device needs $ram bytes of RAM, more than $ram_limit" >&2
  exit 1
fi
echo "cross-arm: OK ($out)"
