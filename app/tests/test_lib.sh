# test_lib.sh - helpers the broker tests of scansim run share (sourced; POSIX sh).
# test_setup (with $CASE set) makes $T (the test's temporary folder, removed at exit),
# $PIDS (pids ended at exit) and fail() (says why, shows the outputs and logs, exits 1).
test_setup() {
    T=$(mktemp -d "/tmp/$(basename "$0" .sh).XXXXXX")
    PIDS=""
    cleanup() {
        for p in $PIDS; do kill "$p" 2>/dev/null; done
        for p in $PIDS; do wait "$p" 2>/dev/null; done
        rm -rf "$T"
    }
    trap cleanup EXIT
    fail() { echo "FAIL ($CASE): $*"; for f in "$T"/*.out "$T"/*.err "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -40 "$f"; }; done; exit 1; }
}

# wait_for SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds
wait_for() {
    n=$(($1 * 10)); shift
    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1; n=$((n - 1))
    done
    return 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_mosquitto NAME CONF-LINES...: mosquitto with these config lines on $PORT (set by
# the caller), its log in $T/NAME.log; returns once the port accepts connections
start_mosquitto() {
    name=$1; shift
    { [ "$(id -u)" -eq 0 ] && echo "user root" # else it drops to 'mosquitto', who cannot read $T
      printf '%s\n' "$@"; } >"$T/$name.conf"
    mosquitto -c "$T/$name.conf" >"$T/$name.log" 2>&1 &
    PIDS="$PIDS $!"
    wait_for 5 python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),1)" ||
        fail "mosquitto $name did not start"
}
