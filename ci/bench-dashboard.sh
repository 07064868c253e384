#!/usr/bin/env bash
# bench-dashboard.sh - what the dashboard costs the fleet: `scansim run` registrations/s
# with no page, with one page open (its event stream, devices page of 50 with their
# OLEDs), and under a flood of requests (F keep-alive clients fetching /api/state with 200
# devices and their OLEDs, and /metrics, RATE requests a second in all), once with the
# server's render limit (50 a second, the default) and once without it
# (SCANSIM_HTTP_RENDER_RATE=0); side by side in rounds, medians printed. The flood is
# paced, so its own CPU on this machine is the same with and without the limit; its
# requests, their rate and its CPU are printed beside the fleet's figures.
#   usage: ci/bench-dashboard.sh [DEVICES=10000] [ITEMS=100000] [ROUNDS=3] [FLOOD=4] [RATE=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
scansim=build/app/scansim
devices=${1:-10000} items=${2:-100000} rounds=${3:-3} flood=${4:-4} rate=${5:-1000}
tmp=$(mktemp -d /tmp/scansim-bench-dash-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

cat >"$tmp/load.py" <<'PY'
# load.py MODE PORT SECONDS CLIENTS RATE: "page" = one event stream; "flood" = CLIENTS
# keep-alive clients, RATE requests a second in all. Prints requests done, requests/s and
# the CPU seconds this used.
import http.client, os, signal, sys, threading, time
mode, port, secs, clients = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
gap = clients / float(sys.argv[5])
end = time.time() + secs
def stop(*_):
    global end
    end = 0
signal.signal(signal.SIGTERM, stop)
done = [0] * clients
def connect():
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10); c.connect(); return c
        except OSError:
            time.sleep(0.05)
    return None
def stream():
    c = connect()
    if not c:
        return
    c.request("GET", "/events?per=50")
    r = c.getresponse()
    while time.time() < end and r.read1(65536):
        done[0] += 1
def hammer(i):
    c = connect()
    paths = ["/api/state?per=200", "/metrics"]
    due = time.time()
    while c and time.time() < end:
        due += gap
        try:
            c.request("GET", paths[done[i] % 2]); c.getresponse().read(); done[i] += 1
        except (OSError, http.client.HTTPException):
            c = connect()
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
ts = [threading.Thread(target=stream if mode == "page" else hammer, args=() if mode == "page" else (i,))
      for i in range(1 if mode == "page" else clients)]
t0 = time.time()
for t in ts: t.daemon = True; t.start()
while any(t.is_alive() for t in ts) and time.time() < end:
    time.sleep(0.1)
cpu = os.times()
print(sum(done), sum(done) / (time.time() - t0), cpu.user + cpu.system)
PY

run_one() { # run_one MODE ROUND -> "rate cpu_us_per_reg requests req_per_s load_cpu_s"
    local mode=$1 r=$2 p json=$tmp/$1-$2.json limit=50
    p=$(port)
    [ "$mode" = flood0 ] && limit=0
    SCANSIM_HTTP_RENDER_RATE=$limit \
        "$scansim" run --devices "$devices" --items "$items" --http "127.0.0.1:$p" --json "$json" \
        >"$tmp/$mode-$r.out" 2>&1 &
    local run=$!
    local load=""
    if [ "$mode" != none ]; then
        python3 "$tmp/load.py" "${mode%0}" "$p" 600 "$flood" "$rate" >"$tmp/$mode-$r.load" &
        load=$!
    fi
    wait "$run" || { echo "run failed: $(tail -5 "$tmp/$mode-$r.out")" >&2; exit 1; }
    if [ -n "$load" ]; then kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true; fi
    python3 - "$json" "$tmp/$mode-$r.load" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
assert d["items_registered"] == d["items_published"] and d["items_lost"] == 0, "items lost"
load = open(sys.argv[2]).read().split() if os.path.exists(sys.argv[2]) else ["-", "0", "0"]
print(round(d["registrations_per_second"]), round(d["cpu_us_per_registration"]["all"]),
      load[0], round(float(load[1])), round(float(load[2]), 1))
PY
}

printf '%s devices, %s items, %s rounds, flood of %s clients at %s requests/s (this machine: %s cores)\n' \
    "$devices" "$items" "$rounds" "$flood" "$rate" "$(nproc)"
echo "modes: none, page (one event stream), flood (render limit 50/s), flood0 (no limit)"
declare -A rate cpu
for r in $(seq "$rounds"); do
    for mode in none page flood flood0; do
        read -r rt cu nreq rps lcpu < <(run_one "$mode" "$r")
        rate[$mode]+="$rt " cpu[$mode]+="$cu "
        printf '  round %d %-5s %7s reg/s %5s us CPU/reg | load: %s requests/events, %s/s, %s s CPU\n' \
            "$r" "$mode" "$rt" "$cu" "$nreq" "$rps" "$lcpu"
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${rate[none]}" | median)
for mode in none page flood flood0; do
    m=$(echo "${rate[$mode]}" | median)
    c=$(echo "${cpu[$mode]}" | median)
    printf '%-6s median %7s reg/s (%.2f x no page), %5s us CPU per registration\n' "$mode" "$m" \
        "$(echo "$m $base" | awk '{print $1 / $2}')" "$c"
done
