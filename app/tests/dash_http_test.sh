#!/usr/bin/env bash
# dash_http_test.sh - the dashboard's HTTP rules against a live `scansim run --http`
# (CTest dash_http): every bad request gets its status and a reason, and the run goes on.
#   usage: dash_http_test.sh SCANSIM
# Cases: without a token, a Host header that names anything but loopback gets 421 (DNS
# rebinding); a POST without X-Scansim gets 403, a malformed form 400 with the field's
# rule, an oversize body 413, another method 405, a bad paging query 400, an unknown
# path 404, an unknown items filter 400; more figure requests than 50 a second (past a
# burst of 100) get 429 with Retry-After; with --http-token, no token gets 401, a Bearer token or ?token= (which sets
# the cookie) passes; a valid item is created (201) and counted by the run. With
# --workers, every worker's devices are listed, and a killed worker's shown offline; with
# two brokers, each item goes through the backend on its device's broker.
set -u
scansim=$1
CASE=setup
. "$(dirname "$0")/test_lib.sh"
test_setup

start() { # start NAME ARGS...: a run with a dashboard; sets URL to its base
    name=$1; shift
    "$scansim" run --devices 2 --duration 40s --item-rate 2/s "$@" >"$T/$name.out" 2>&1 &
    PIDS="$PIDS $!"
    wait_for 20 grep -q "dashboard on http://" "$T/$name.out" || fail "$name: no dashboard URL"
    URL=$(sed -n 's|.*dashboard on \(http://[^ ]*\).*|\1|p' "$T/$name.out" | head -n 1)
}
# expect STATUS REASON-SUBSTRING CURL-ARGS...: the response's status and its text
expect() {
    want=$1 words=$2; shift 2
    got=$(curl -s -o "$T/body" -w '%{http_code}' "$@")
    [ "$got" = "$want" ] || fail "curl $*: status $got, expected $want: $(cat "$T/body")"
    [ -z "$words" ] || grep -qF -- "$words" "$T/body" ||
        fail "curl $*: the answer does not say '$words': $(cat "$T/body")"
    echo "ok   - $want for $*"
}

CASE=loopback
start open --http 127.0.0.1:0
base=${URL%/}
port=${base##*:}
expect 200 "" "$base/"
expect 200 "" -H "Host: localhost:$port" "$base/metrics"
expect 421 "loopback name or address" -H "Host: rebound.example:$port" "$base/"
expect 421 "loopback name or address" -H "Host: 127.0.0.1.rebound.example" "$base/api/state"
expect 403 "X-Scansim: 1" -d "name=box&quantity=3" "$base/api/items"
expect 400 "quantity: a whole number" -H "X-Scansim: 1" -d "name=box&quantity=lots" "$base/api/items"
expect 400 "name:" -H "X-Scansim: 1" -d "name=&quantity=3" "$base/api/items"
expect 400 "%" -H "X-Scansim: 1" -d "name=bad%zzescape&quantity=3" "$base/api/items"
head -c 5000 /dev/zero | tr '\0' a >"$T/big"
expect 413 "too large" -H "X-Scansim: 1" --data-binary "@$T/big" "$base/api/items"
expect 405 "only GET and POST" -X PUT "$base/"
expect 400 "" "$base/api/state?page=zero"
expect 404 "" "$base/nothing-here"
# To all devices: refused with a reason until every device is listed, then created.
created() { curl -sf -o /dev/null -H "X-Scansim: 1" -d "name=from-the-page&quantity=2" "$base/api/items"; }
wait_for 10 created || fail "an item for all devices was never created: $(cat "$T/body")"
echo "ok   - 201 for an item to all devices"
expect 400 "items: all, pending, registered, twice or lost" "$base/api/state?items=broken"
only_registered() {
    curl -s "$base/api/state?items=registered" | python3 -c 'import json,sys
d=json.load(sys.stdin)
sys.exit(0 if d["items_filter"] == "registered" and d["items_total"] >= 1 and d["items"] and
         all(i["state"] == "registered" for i in d["items"]) else 1)'
}
wait_for 10 only_registered || fail "items=registered did not list only registered items"
echo "ok   - items=registered lists registered items only, with their total"
# A flood: beyond the burst, figure requests get 429 with Retry-After; then it answers again.
python3 - "${base#http://}" <<'PY' || fail "the flood was not limited as it should be"
import http.client, sys, time
host, port = sys.argv[1].split(":")
c = http.client.HTTPConnection(host, int(port), timeout=10)
got = []
# Back to back until 100 were refused (the bucket refills meanwhile, more so on a busy
# machine: so not a fixed count), at most 3,000.
while sum(s == 429 for s, _ in got) < 100 and len(got) < 3000:
    c.request("GET", "/metrics"); r = c.getresponse(); r.read()
    got.append((r.status, r.getheader("Retry-After")))
ok, limited = sum(s == 200 for s, _ in got), [h for s, h in got if s == 429]
print("ok   - %d requests at once: %d answered, %d refused with 429" % (len(got), ok, len(limited)))
assert ok >= 100 and len(limited) >= 100 and all(h == "1" for h in limited), got[:3]
time.sleep(1.2)
c.request("GET", "/metrics"); r = c.getresponse(); r.read()
assert r.status == 200, r.status
print("ok   - a second later it answers again")
PY
online() { curl -s "$base/metrics" | grep -q '^scansim_devices_online{.*} 2$'; }
listed() { curl -s "$base/api/state" | grep -q '"name":"from-the-page"'; }
wait_for 10 online || fail "the run stopped answering after the bad requests"
echo "ok   - the run still serves its figures"
wait_for 10 listed ||
    fail "the item created through the API is not in the items list"
echo "ok   - the item created through the API is listed"

CASE=token
start tok --http 127.0.0.1:0 --http-token sesame-1234
base=$(printf '%s' "$URL" | sed 's|/?token=.*||; s|/$||')
expect 401 "a token is needed" "$base/"
expect 401 "a token is needed" -H "Authorization: Bearer wrong-token" "$base/metrics"
expect 200 "" -H "Authorization: Bearer sesame-1234" "$base/metrics"
# With a token the Host rule is the token's: another name passes with it.
expect 200 "" -H "Host: scanners.example" -H "Authorization: Bearer sesame-1234" "$base/metrics"
curl -s -c "$T/jar" -o /dev/null "$base/?token=sesame-1234"
grep -q "scansim_token" "$T/jar" || fail "?token= set no cookie"
expect 200 "" -b "$T/jar" "$base/metrics"

# Devices in worker processes: every one is listed, with its OLED, from the workers' shared
# rows; a killed worker's devices turn offline, "worker died".
CASE=workers
start workers --devices 30 --workers 3 --http 127.0.0.1:0
base=${URL%/}
state() { curl -s "$base/api/state?per=50" | python3 -c "$1"; }
all_listed() {
    state 'import json,sys; r=json.load(sys.stdin)["devices"]["rows"]
sys.exit(0 if len(r) == 30 and all(x["online"] and x["fb"] for x in r) else 1)'
}
wait_for 20 all_listed || fail "not every worker's device is listed online with its OLED"
echo "ok   - 30 devices of 3 workers listed online, each with its OLED"
run_pid=${PIDS##* }
victim=$(pgrep -P "$run_pid" -f -- "--worker-index 1( |$)")
[ -n "$victim" ] || fail "no worker 1 under the run (pid $run_pid)"
kill -9 "$victim"
dead_shown() {
    state 'import json,sys; r=json.load(sys.stdin)["devices"]["rows"]
dead=[x for x in r if x["state"] == "worker died"]
sys.exit(0 if len(dead) == 10 and not any(x["online"] for x in dead) and
         sum(x["online"] for x in r) == 20 else 1)'
}
wait_for 10 dead_shown || fail "the killed worker's 10 devices are not shown offline: $(state 'import json,sys; print([(x["id"], x["state"]) for x in json.load(sys.stdin)["devices"]["rows"]])')"
echo "ok   - the killed worker's 10 devices show 'worker died', the other 20 online"

# Two brokers (--broker twice, devices round-robin by id): an item from the page goes
# through the backend on its device's broker, and the list shows the items of both.
CASE=brokers
PORT=$(free_port); start_mosquitto b0 "listener $PORT 127.0.0.1" "allow_anonymous true"; U0=tcp://127.0.0.1:$PORT
PORT=$(free_port); start_mosquitto b1 "listener $PORT 127.0.0.1" "allow_anonymous true"; U1=tcp://127.0.0.1:$PORT
start two --broker "$U0" --broker "$U1" --devices 4 --item-rate 1/s --http 127.0.0.1:0
base=${URL%/}
post() { curl -sf -o "$T/body" -H "X-Scansim: 1" -d "$1" "$base/api/items"; }
wait_for 10 post "name=both-brokers&quantity=1" || fail "no item for all devices: $(cat "$T/body")"
post "name=odd-one&quantity=1&device=scanner-3" || fail "no item for scanner-3: $(cat "$T/body")"
registered() {
    curl -s "$base/api/state" | python3 -c 'import json,sys
it=json.load(sys.stdin)["items"]
both=[i for i in it if i["name"] == "both-brokers" and i["state"] == "registered"]
odd=[i for i in it if i["name"] == "odd-one" and i["state"] == "registered"]
sys.exit(0 if sorted(i["to"] for i in both) == ["scanner-%d" % k for k in (1, 2, 3, 4)] and
         [i["to"] for i in odd] == ["scanner-3"] and
         all(i["regs"][0][0] == i["to"] for i in both + odd) else 1)'
}
wait_for 15 registered || fail "the page's items were not all registered by their devices on both brokers: $(curl -s "$base/api/state" | python3 -c 'import json,sys; print([(i["name"], i["to"], i["state"]) for i in json.load(sys.stdin)["items"]])')"
echo "ok   - items to all 4 devices and to scanner-3 (second broker) registered, each by its own device"
echo PASS
