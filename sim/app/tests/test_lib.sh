# test_lib.sh - helpers the broker tests of scansim run share (sourced; POSIX sh).
# Expects $T (the test's temporary folder), $PIDS (pids to end at exit) and fail().

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
