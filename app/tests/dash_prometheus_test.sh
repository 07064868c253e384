#!/usr/bin/env bash
# Debian's prometheus scrapes a live `scansim run --http` on loopback (its own config,
# data folder and free port in a temporary folder), and the test reads metrics back
# through Prometheus' HTTP API (/api/v1/query): a counter, a gauge and a quantile
# computed from the latency histogram.
# usage: dash_prometheus_test.sh SCANSIM
set -euo pipefail
scansim=$1
here=$(cd "$(dirname "$0")" && pwd)
command -v prometheus >/dev/null || bash "$here/../../ci/install-deps.sh"
tmp=$(mktemp -d /tmp/scansim-prom-XXXXXX)
run_pid="" prom_pid=""
cleanup() {
  [[ -n $prom_pid ]] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  [[ -n $run_pid ]] && kill "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- scansim:"; cat "$tmp/run.log"; echo "--- prometheus:"; tail -20 "$tmp/prom.log" 2>/dev/null; exit 1; }

"$scansim" run --devices 6 --duration 25s --item-rate 20/s --http 127.0.0.1:0 >"$tmp/run.log" 2>&1 &
run_pid=$!
for _ in $(seq 100); do
  port=$(sed -n 's|.*dashboard on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/run.log")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n ${port:-} ]] || fail "scansim printed no dashboard URL"
prom_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: scansim
    static_configs:
      - targets: ['127.0.0.1:$port']
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prom.log" 2>&1 &
prom_pid=$!

# query EXPR -> the first sample's value, or "" when there is none yet
query() {
  curl -sf --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}
# wait_for EXPR CONDITION(python on v) -> the value
wait_for() {
  for _ in $(seq 150); do
    v=$(query "$1")
    if [[ -n $v ]] && python3 -c "import sys; v=float(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$v"; then
      echo "$1 = $v"; return 0
    fi
    sleep 0.2
  done
  fail "Prometheus never saw $1 with $2 (last: '${v:-}')"
}
wait_for 'scansim_items_registered_total{job="scansim",command="run",layout="per-device"}' 'v >= 20'
wait_for 'scansim_devices_online' 'v == 6'
wait_for 'histogram_quantile(0.5, scansim_registration_latency_seconds_bucket)' 'v > 0 and v < 1'
wait_for 'scansim_items_registered_twice' 'v == 0'
echo PASS
