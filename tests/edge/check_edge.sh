#!/usr/bin/env bash
# check_edge.sh - two rules of the MQTT edge, checked on the built programs and the tree:
#  1. no program defines a function that libc or a library it links also defines (the
#     dynamic linker would hand every library of the process our definition instead);
#  2. only the MQTT edge (sim/platform/src/mqtt_*.[ch]) includes a client library's header;
#     one exception: the fault proxy's tests use Paho's synchronous MQTTClient, because they
#     check what the proxy does to a client that re-sends its own in-flight message with DUP
#     after a reconnect, which the edge never does (harness/proxy/tests).
# usage: check_edge.sh SOURCE_DIR PROGRAM...
set -euo pipefail
src=$1; shift
fail=0

for prog in "$@"; do
  # The libraries the program loads, libc included.
  mapfile -t libs < <(ldd "$prog" | awk '/=> \//{print $3}')
  # Functions the program itself defines and exports to the dynamic linker's view; an
  # executable's own text symbols are what interposes, so take all defined text symbols.
  ours=$(nm --defined-only "$prog" | awk '$2 ~ /^[TW]$/ {print $3}' | sort -u)
  theirs=$(for l in "${libs[@]}"; do nm -D --defined-only "$l" 2>/dev/null; done |
           awk '$2 ~ /^[TWi]$/ {sub(/@.*/, "", $3); print $3}' | sort -u)
  # _init/_fini and the like are every ELF object's own.
  clash=$(comm -12 <(echo "$ours") <(echo "$theirs") |
          grep -v -x -E '_init|_fini|_start|main|__libc_csu_(init|fini)|_IO_stdin_used|__data_start|data_start|__dso_handle|_edata|_end|__bss_start' || true)
  if [[ -n $clash ]]; then
    echo "FAIL: $(basename "$prog") defines functions its libraries define too:" $clash
    fail=1
  else
    echo "ok: $(basename "$prog") defines no function of libc or of the ${#libs[@]} libraries it loads"
  fi
done

incl=$(cd "$src" && grep -rlE '#include *[<"](MQTTAsync|MQTTClient|mosquitto)\.h[>"]' \
         --include='*.c' --include='*.h' firmware_core sim harness app tests fuzz 2>/dev/null |
       grep -v -E '^sim/platform/src/mqtt_[a-z_]+\.[ch]$' || true)
if [[ -n $incl ]]; then
  echo "FAIL: outside the MQTT edge, these include a client library's header:" $incl
  fail=1
else
  echo "ok: only sim/platform/src/mqtt_*.c include MQTTAsync.h or mosquitto.h"
fi
exit $fail
