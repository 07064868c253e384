#!/usr/bin/env bash
# demo_tmux_test.sh - drives `scansim demo` in a detached tmux session (160x50 unless a mode
# says otherwise, UTF-8) the way a person would, reading the screen with capture-pane and the
# broker with mosquitto_sub.
#
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB small    the README's first command at 80x24:
#                                                    add -> tag -> confirm, pending (not lost),
#                                                    n, the help, resize to 100x30 and 200x55
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB race     --devices 3 --layout seed at 200x55: two
#                                                    scanners register one item, the ledger
#                                                    shows it twice; n cuts only the chosen one
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB offline  why a scanner is offline: refused by the
#                                                    broker, broker gone (MOSQUITTO_BIN env)
#
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB flow     add -> tag -> confirm, cancel, inventory,
#                                                    network cut and restore, quit
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB signals  SIGTERM and Ctrl-C power off cleanly;
#                                                    SIGSEGV, SIGABRT (crashes) still restore the
#                                                    terminal
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB layouts  half blocks, braille, too small, resize,
#                                                    ASCII on a non-UTF-8 locale
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB errors   unreachable broker (exit 3 / on screen),
#                                                    no password shown, bad keys and tags
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB mqtt5    -V 5 --layout per-device --id: the same
#                                                    add -> tag -> confirm on per-device topics
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB tls      ssl:// with --cafile/--cert/--key (mutual
#                                                    TLS, ci/make-pki.sh): direct link, n off
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB flash    --flash DIR and --broker: the outbox
#                                                    survives a power-off (MOSQUITTO_BIN env)
#   demo_tmux_test.sh SCANSIM MOSQUITTO_SUB commands the command keys S L M I R: replies on
#                                                    the broker, lock / message / reboot shown
#
# mosquitto_sub runs under stdbuf -oL: its -d lines (SUBACK) are not flushed otherwise.
# Exit 0 pass, 1 fail, 77 skip (no tmux). Each wait has a time-out; no fixed sleeps decide
# anything. A private tmux server (-L) per run keeps parallel runs apart.
set -u
export LC_ALL=C.UTF-8 LANG=C.UTF-8 # character-wise string cuts; tmux in UTF-8
bin=$1
sub_bin=$2
mode=${3:-flow}

command -v tmux >/dev/null 2>&1 || { echo "SKIP: tmux is not installed"; exit 77; }

tmp=$(mktemp -d /tmp/scansim-demo-test-XXXXXX)
sock="scansim-demo-$$"
T() { tmux -u -L "$sock" "$@"; }
sub_pid=
mosq_pid=
# Whatever happens, the tmux server, mosquitto_sub, the test's mosquitto and the folder go.
cleanup() {
    [[ -n ${sub_pid:-} ]] && kill "$sub_pid" 2>/dev/null
    [[ -n ${mosq_pid:-} ]] && kill "$mosq_pid" 2>/dev/null
    T kill-server 2>/dev/null
    rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$sock" # tmux leaves the socket file behind
    rm -rf "$tmp"
}
trap cleanup EXIT

# A session that lives for the whole run, so killing the demo's session never takes the
# server down while the next one starts.
if ! T new-session -d -s keep "exec sleep 600" 2> "$tmp/tmux.err"; then
    sleep 0.5 # one retry: a server of a finished run may still be going away
    T new-session -d -s keep "exec sleep 600" 2>> "$tmp/tmux.err" ||
        { echo "FAIL: tmux could not start a server: $(cat "$tmp/tmux.err")"; exit 1; }
fi

cap() { T capture-pane -p -t demo; }
fail() {
    echo "FAIL: $*"
    echo "----- screen -----"
    cap
    echo "------------------"
    [[ -s $tmp/sub.txt ]] && { echo "----- mosquitto_sub -----"; cat "$tmp/sub.txt"; }
    exit 1
}
# wait_for REGEX [SECONDS]: until the screen matches (extended regex).
wait_for() {
    local re=$1 limit=${2:-20} end=$((SECONDS + ${2:-20}))
    while ((SECONDS < end)); do
        cap | grep -qE -- "$re" && return 0
        sleep 0.1
    done
    fail "the screen did not show /$re/ within ${limit}s"
}
# wait_file FILE REGEX [SECONDS]
wait_file() {
    local f=$1 re=$2 end=$((SECONDS + ${3:-20}))
    while ((SECONDS < end)); do
        [[ -f $f ]] && grep -qE -- "$re" "$f" && return 0
        sleep 0.1
    done
    fail "$f did not get /$re/ within ${3:-20}s"
}
key() { T send-keys -t demo "$@"; }
# wait_count REGEX N SECONDS WHAT: until the screen shows REGEX exactly N times.
wait_count() {
    local end=$((SECONDS + $3))
    until [[ $(cap | grep -oE -- "$1" | wc -l) == "$2" ]]; do
        ((SECONDS < end)) || fail "$4 within $3s"
        sleep 0.2
    done
}
# resize_to W H REGEX: the pane becomes WxH and the screen, laid out again, matches.
resize_to() { T resize-window -t demo -x "$1" -y "$2"; wait_for "$3" 10; }
# The OLED panel: the 32 rows inside its border, the first 128 cells after the left border.
oled() { local l; cap | sed -n '3,34p' | while IFS= read -r l; do echo "${l:1:128}"; done; }

# launch_demo ARGS...: the demo in a pane of DEMO_SIZE (default 160x50), in a shell that
# records how it ended. DEMO_LOCALE (default C.UTF-8) is the pane's locale. The shell ignores SIGINT so that a
# Ctrl-C reaches only scansim (which installs its own handler) and the shell lives on to
# record the exit code and the terminal settings.
launch_demo() {
    local args="$*" loc=${DEMO_LOCALE:-C.UTF-8} size=${DEMO_SIZE:-160x50}
    rm -f "$tmp"/rc "$tmp"/stty.* "$tmp"/stderr.txt
    T new-session -d -s demo -x "${size%x*}" -y "${size#*x}" \
        "env LANG=$loc LC_ALL=$loc sh -c 'trap \"\" INT; stty -g > $tmp/stty.before; \
         $bin demo $args 2> $tmp/stderr.txt; echo \$? > $tmp/rc; stty -g > $tmp/stty.after; \
         echo DEMO-ENDED; exec sleep 600'" 2> "$tmp/tmux.err" ||
        fail "tmux could not start a session: $(cat "$tmp/tmux.err")"
}
start_demo() { # start_demo ARGS...: launch and wait until the device is online
    launch_demo "$@"
    wait_for 'link +ONLINE' 30
    port=$(cap | sed -nE 's/.*broker (tcp|ssl):\/\/127\.0\.0\.1:([0-9]+).*/\2/p' | head -1)
    [[ -n $port ]] || fail "no broker port on the title line"
}

# expect_restored CODE_REGEX: the demo ended with an exit code matching, and the terminal
# settings are what they were before it started.
expect_restored() {
    wait_file "$tmp/rc" '.' 20
    local rc; rc=$(cat "$tmp/rc")
    [[ $rc =~ ^($1)$ ]] || fail "scansim demo exited $rc, expected $1; stderr: $(cat "$tmp/stderr.txt")"
    wait_file "$tmp/stty.after" '.' 10
    cmp -s "$tmp/stty.before" "$tmp/stty.after" ||
        fail "terminal settings not restored: before $(cat "$tmp/stty.before") after $(cat "$tmp/stty.after")"
    wait_for 'DEMO-ENDED' 10
    [[ $(T display -p -t demo '#{alternate_on}') == 0 ]] || fail "still on the alternate screen"
    echo "ok: exit code $rc, terminal settings and main screen restored"
}

# quit_expecting REGEX...: q, the terminal restored with exit code 0, and each REGEX in the
# power-off summary left on the screen.
quit_expecting() {
    key q
    expect_restored 0
    for re in "$@"; do
        grep -q -- "$re" <(cap) || fail "no power-off summary /$re/"
    done
}

# The scansim process of this run: its --flash folder is unique to the run.
demo_pid() { pgrep -f "^$bin demo .*--flash $tmp/flash" | head -1; }

if [[ $mode == signals ]]; then
    # SIGTERM: the same clean power-off as q.
    start_demo --no-backend --seed 3 --flash "$tmp/flash"
    pid=$(demo_pid); [[ -n $pid ]] || fail "no scansim process"
    kill -TERM "$pid"
    expect_restored 0
    grep -q "powered off cleanly" <(cap) || fail "no power-off summary after SIGTERM"
    T kill-session -t demo
    # Ctrl-C: SIGINT from the terminal, the same clean power-off: the device itself says
    # "offline" before it disconnects (the embedded broker has its own process group, so
    # the Ctrl-C does not reach it).
    start_demo --no-backend --seed 5 --flash "$tmp/flash" --broker-log "$tmp/broker.log"
    stdbuf -oL "$sub_bin" -h 127.0.0.1 -p "$port" -v -t 'scanners/scanner-1/status' \
        > "$tmp/status.txt" 2>&1 &
    sub_pid=$!
    wait_file "$tmp/status.txt" '^scanners/scanner-1/status online' 10
    key C-c
    expect_restored 0
    grep -q "powered off cleanly" <(cap) || fail "no power-off summary after Ctrl-C"
    wait_file "$tmp/status.txt" '^scanners/scanner-1/status offline' 10
    # The broker saw a DISCONNECT (a Will would say the same "offline" to subscribers). On
    # libmosquitto about 1 power-off in 6 ends without it in the broker's log (the link
    # closes first); the retained "offline" above came from the device either way. Known,
    # being looked into (issue 12's note); Paho's must always show it.
    if [[ ${SCANSIM_TRANSPORT:-mosquitto} == paho ]]; then
        wait_file "$tmp/broker.log" 'Client scanner-1 disconnected\.' 15
        ! grep -qE 'scanner-1 closed its connection|error on client scanner-1' "$tmp/broker.log" ||
            fail "the broker saw scanner-1 vanish without DISCONNECT: $(grep scanner-1 "$tmp/broker.log")"
    else
        wait_file "$tmp/broker.log" 'Client scanner-1 (disconnected\.|closed its connection)' 15
        grep -q 'Client scanner-1 disconnected\.' "$tmp/broker.log" ||
            echo "note: the broker logged no DISCONNECT from scanner-1 this time (known on libmosquitto)"
    fi
    echo "ok: Ctrl-C -> retained offline published by the device, then the link closed (broker log)"
    T kill-session -t demo
    # SIGSEGV, as a crash of the firmware under test would raise: the terminal comes back
    # and the process still dies of the signal (or of the sanitizer's report).
    start_demo --no-backend --seed 4 --flash "$tmp/flash"
    pid=$(demo_pid); [[ -n $pid ]] || fail "no scansim process"
    kill -SEGV "$pid"
    expect_restored '1|134|139' # 134: a sanitizer build with abort_on_error aborts on its report
    grep -q "the terminal was restored" "$tmp/stderr.txt" || fail "no crash note on stderr"
    T kill-session -t demo
    # SIGABRT, as a failed assert() in the firmware would raise.
    start_demo --no-backend --seed 6 --flash "$tmp/flash"
    pid=$(demo_pid); [[ -n $pid ]] || fail "no scansim process"
    kill -ABRT "$pid"
    expect_restored '1|134'
    grep -q "the terminal was restored" "$tmp/stderr.txt" || fail "no crash note on stderr"
    echo "PASS: signals"
    exit 0
fi

if [[ $mode == layouts ]]; then
    # Half blocks at 160x50; braille when smaller; a note when too small; back on resize.
    start_demo --no-backend --flash "$tmp/flash"
    wait_for 'OLED 128x64 - pixel-true, half blocks' 5
    grep -q '[▀▄█]' <<<"$(oled)" || fail "no half-block pixels"
    # A UTF-8 item name from someone else's backend: shown as text, a C1 control as '?'.
    "${sub_bin%_sub}_pub" -h 127.0.0.1 -p "$port" -q 1 -t item_registration \
        -m "$(printf '{"item_id":7,"item_name":"Caf\xc3\xa9 \xe2\x9c\x93 \xc2\x85x","tag_quantity":1}')"
    wait_for 'item +#7 Café ✓ \?x │' 10
    echo "ok: UTF-8 item name on the state panel, C1 control neutralised"
    resize_to 100 30 'pixel-true, braille'
    cap | grep -qP '[\x{2801}-\x{28FF}]' || fail "no braille pixels on the small OLED"
    wait_for 'link +ONLINE' 5
    resize_to 60 15 'terminal too small \(60x15\)'
    resize_to 160 50 'OLED 128x64 - pixel-true, half blocks'
    echo "ok: half blocks -> braille -> too small -> half blocks on resize"
    key q
    expect_restored 0
    T kill-session -t demo
    # Not UTF-8: ASCII, and the panel says so.
    DEMO_LOCALE=C start_demo --no-backend --flash "$tmp/flash"
    wait_for 'ASCII, approximated \(terminal is not UTF-8\)' 5
    o=$(oled)
    grep -q '#' <<<"$o" || fail "no ASCII pixels"
    ! grep -q '[▀▄█]' <<<"$o" || fail "half blocks on a non-UTF-8 terminal"
    echo "ok: ASCII OLED on a C locale"
    cap
    key q
    expect_restored 0
    echo "PASS: layouts"
    exit 0
fi

if [[ $mode == small ]]; then
    # The README's first command in a classic 80x24 terminal: the braille OLED, a state line,
    # the narrow ledger, log lines and a key line that fits; the whole operator flow works.
    DEMO_SIZE=80x24 start_demo --seed 7 --flash "$tmp/flash"
    ! cap | grep -q 'terminal too small' || fail "80x24 is called too small"
    wait_for 'OLED 128x64 - pixel-true, braille' 5
    cap | grep -qP '[\x{2801}-\x{28FF}]' || fail "no braille pixels at 80x24"
    wait_for '^a item  t tag  T type  Enter ok  c cancel  i look-up  n net  \? help  q quit *$' 5
    wait_for '│published +0│' 5
    echo "ok: 80x24: braille OLED, state line, narrow ledger, every key on the key line"
    key a
    wait_for 'link ONLINE  screen item  item #1 Pallet jack' 20
    # An item waiting for its operator is pending: nobody has given up on it.
    wait_for '│pending +1│' 5
    wait_for '│lost +0│' 5
    echo "ok: a -> item 1 on the state line; the ledger says pending 1, lost 0"
    key t
    wait_for 'screen confirm ' 10
    key Enter
    wait_for 'acked 1' 20
    wait_for '│registered +1│' 10
    wait_for '│pending +0│' 5
    echo "ok: t, Enter -> acked, the ledger says registered 1, pending 0"
    key n
    wait_for 'link OFFLINE: cut by the demo \(n restores\)' 15
    wait_for ' n RESTORE  \? help  q quit' 5
    key n
    wait_for 'link ONLINE ' 40
    echo "ok: n -> offline, cut by the demo; n -> online again"
    key '?'
    wait_for 'keys - any key closes this help' 5
    for k in 'a +the backend publishes' 'Enter +CONFIRM button' 'n +cut the chosen' 'q +clean power-off'; do
        wait_for "│ $k" 2
    done
    key x
    sleep 0.3 # the key is consumed by the help, not reported as unknown
    ! cap | grep -q 'keys - any key closes' || fail "the help did not close"
    ! cap | grep -q "key 'x' does nothing" || fail "the key that closed the help did something"
    echo "ok: ? shows every key; any key closes it"
    resize_to 100 30 '─ device state ─'
    wait_for '─ backend ledger ─' 5
    wait_for 'pixel-true, braille' 5
    wait_for '1 +Pallet jack +registered' 5
    resize_to 200 55 'OLED 128x64 - pixel-true, half blocks'
    wait_for '─ MQTT traffic and events' 5
    wait_for 'published 1  pending 0  registered 1  twice 0  lost 0' 5
    resize_to 60 15 'terminal too small \(60x15\): the OLED needs at least 66x22'
    resize_to 80 24 '│registered +1│'
    echo "ok: 80x24 -> 100x30 (state, ledger) -> 200x55 (half blocks) -> too small -> 80x24"
    cap
    quit_expecting "scanner-1 powered off cleanly"
    echo "PASS: small"
    exit 0
fi

if [[ $mode == commands ]]; then
    # The command keys: the backend sends each command to the scanner, the OLED and the
    # state panel show its effect, and the reply is on the broker for anyone to read.
    start_demo --seed 5
    stdbuf -oL "$sub_bin" -h 127.0.0.1 -p "$port" -d -v -t 'scanners/+/command/reply' \
        -t 'scanners/+/status' > "$tmp/sub.txt" 2>&1 &
    sub_pid=$!
    wait_file "$tmp/sub.txt" 'SUBACK' 10
    key a
    wait_for 'item +#1 ' 10
    key S
    wait_file "$tmp/sub.txt" '"result":"ok","reason":"","data":\{"version":"[0-9.]+"' 10
    echo "ok: S -> a status reply with the firmware version"
    key L
    wait_for 'screen +locked' 10
    wait_file "$tmp/sub.txt" '"data":\{"locked":true\}' 10
    key t
    key Enter
    key S
    wait_file "$tmp/sub.txt" '"screen":"locked","locked":true' 10
    wait_for 'screen +locked' 5
    key L
    wait_for 'screen +item' 10
    wait_file "$tmp/sub.txt" '"data":\{"locked":false\}' 10
    echo "ok: L locks (a tag and a button change nothing), L again unlocks"
    key M
    wait_for 'screen +message' 10
    key Enter
    wait_for 'screen +item' 10
    echo "ok: M shows a message until a button"
    key I
    wait_file "$tmp/sub.txt" '"data":\{"seconds":5\}' 10
    # scansim ctl drives the demo's scanner as it drives any other
    "$bin" ctl status scanner-1 --broker "tcp://127.0.0.1:$port" --timeout 5 > "$tmp/ctl.txt" 2>&1 ||
        fail "scansim ctl status against the demo exited $?: $(cat "$tmp/ctl.txt")"
    grep -q "1 ok, 0 refused, 0 did not answer" "$tmp/ctl.txt" || fail "ctl: $(cat "$tmp/ctl.txt")"
    "$bin" ctl config scanner-1 contrast=300 --broker "tcp://127.0.0.1:$port" --timeout 5 \
        > "$tmp/ctl.txt" 2>&1 && fail "ctl config contrast=300 exited 0"
    grep -q "out_of_range" "$tmp/ctl.txt" || fail "ctl: $(cat "$tmp/ctl.txt")"
    echo "ok: scansim ctl talks to the demo's scanner (status ok, a bad config refused)"
    key R
    wait_file "$tmp/sub.txt" '^scanners/scanner-1/status offline' 10
    wait_count_file() { # FILE REGEX N SECS: at least N matching lines
        local end=$((SECONDS + $4))
        while ((SECONDS < end)); do
            (($(grep -cE -- "$2" "$1") >= $3)) && return 0
            sleep 0.1
        done
        fail "$1: fewer than $3 lines /$2/ within $4s"
    }
    wait_count_file "$tmp/sub.txt" '^scanners/scanner-1/status online' 2 20
    wait_for 'pending queue +1' 10
    wait_for 'screen +item' 10
    echo "ok: R reboots; the scanner is back online with its pending item"
    [[ $(grep -c '"result":"ok"' "$tmp/sub.txt") -ge 7 ]] || fail "fewer than 7 ok replies: $(cat "$tmp/sub.txt")"
    quit_expecting "powered off cleanly"
    exit 0
fi

if [[ $mode == race ]]; then
    # The seed's hazard, watched: in the seed layout every scanner gets every item, so two
    # operators can register the same item with two tags. Three scanners at 200x55.
    DEMO_SIZE=200x55 launch_demo --devices 3 --layout seed --seed 11 --flash "$tmp/flash"
    wait_for '3 scanners \(seed layout\)' 30
    wait_count 'link ONLINE' 3 30 "not all three scanners came online"
    port=$(cap | sed -nE 's/.*broker tcp:\/\/127\.0\.0\.1:([0-9]+).*/\1/p' | head -1)
    [[ -n $port ]] || fail "no broker port on the title line"
    wait_for '>> 1 scanner-1 << keys' 5
    wait_for '─ 2 scanner-2 - pixel-true, braille' 5
    wait_for '─ 3 scanner-3 - pixel-true, braille' 5
    echo "ok: three OLEDs side by side, scanner 1 chosen"
    stdbuf -oL "$sub_bin" -h 127.0.0.1 -p "$port" -d -v -t item_registered -t 'scanners/+/status' \
        > "$tmp/sub.txt" 2>&1 &
    sub_pid=$!
    wait_file "$tmp/sub.txt" 'SUBACK' 10
    key a
    wait_count 'item #1 Pallet jack' 3 20 "item 1 did not reach all three scanners"
    wait_for '1 +Pallet jack +pending' 5
    echo "ok: a -> item 1 on every scanner (seed layout), pending in the ledger"
    key t
    key Enter
    wait_for '1 +Pallet jack +registered$|1 +Pallet jack +registered +│' 20
    key 2
    wait_for '>> 2 scanner-2 << keys' 5
    wait_for 'state of 2 scanner-2' 5
    key t
    key Enter
    wait_for '1 +Pallet jack +twice: registered by 2 devices' 20
    wait_for ' [0-9A-F]+ by scanner-2 ' 5
    wait_for ' [0-9A-F]+ by scanner-1 ' 5
    wait_for 'published 1  pending 0  registered 1  twice 1  lost 0' 5
    wait_file "$tmp/sub.txt" '^item_registered \{"item_id":1,.*"device_id":"scanner-1"' 10
    wait_file "$tmp/sub.txt" '^item_registered \{"item_id":1,.*"device_id":"scanner-2"' 10
    echo "ok: scanners 1 and 2 registered item 1: the ledger shows it twice, by 2 devices"
    # Tab to scanner 3, whose operator still sees item 1; n cuts only its link.
    key Tab
    wait_for '>> 3 scanner-3 << keys' 5
    key n
    wait_for 'link OFFLINE: cut by the demo \(n restores\)' 15
    wait_file "$tmp/sub.txt" '^scanners/scanner-3/status offline' 15
    [[ $(cap | grep -o 'link ONLINE' | wc -l) == 2 ]] || fail "n cut more than the chosen scanner"
    key n
    wait_count 'link ONLINE' 3 40 "scanner 3 did not come back"
    key Tab
    wait_for '>> 1 scanner-1 << keys' 5
    echo "ok: Tab -> 3; n cut only scanner-3 (its Will on the wire), n restored it; Tab wraps to 1"
    # Smaller terminals show fewer OLEDs, the chosen one always, the others named.
    resize_to 80 24 '>> 1 scanner-1 << keys'
    wait_for 'not shown \(Tab or 1-3\):  2 scanner-2 ONLINE  3 scanner-3 ONLINE' 5
    key 3
    wait_for '>> 3 scanner-3 << keys' 5
    wait_for 'not shown \(Tab or 1-3\):  1 scanner-1 ONLINE  2 scanner-2 ONLINE' 5
    echo "ok: at 80x24 the chosen scanner's OLED and a roster of the others"
    resize_to 200 55 '─ backend ledger ─'
    cap
    quit_expecting "scanner-1 powered off cleanly" "scanner-2 powered off cleanly" \
        "scanner-3 powered off cleanly"
    echo "PASS: race"
    exit 0
fi

if [[ $mode == errors ]]; then
    # The backend cannot reach the broker: exit code 3 and words, before the screen opens.
    launch_demo --broker tcp://127.0.0.1:1 --flash "$tmp/flash"
    wait_file "$tmp/rc" '.' 30
    [[ $(cat "$tmp/rc") == 3 ]] || fail "unreachable broker: exit $(cat "$tmp/rc"), expected 3"
    grep -q 'could not connect.*tcp://127.0.0.1:1' "$tmp/stderr.txt" ||
        fail "no words for the unreachable broker: $(cat "$tmp/stderr.txt")"
    echo "ok: unreachable broker with the backend -> exit 3: $(head -1 "$tmp/stderr.txt")"
    T kill-session -t demo
    # Without a backend the device keeps trying and says why on screen; no password shown.
    launch_demo --no-backend --broker tcp://127.0.0.1:1 -u alice -P s3cr3t-pw --flash "$tmp/flash"
    wait_for 'link +OFFLINE' 20
    wait_for 'connect failed: connection to tcp://127.0.0.1:[0-9]+ failed' 20
    wait_for 'connect failures +2 ' 20
    ! cap | grep -q 's3cr3t-pw' || fail "the password is on screen"
    key a
    wait_for 'no backend \(--no-backend\): publish an item yourself' 5
    key x
    wait_for "key 'x' does nothing" 5
    key T
    key -l 04a1z
    wait_for 'only hex digits' 5
    key Escape
    wait_for 'tag entry cancelled' 5
    key T
    key -l 04A1B
    key Enter
    wait_for 'odd number of hex digits' 5
    echo "ok: offline device explains itself; bad keys and bad tags get words"
    key q
    expect_restored 0
    echo "PASS: errors"
    exit 0
fi

# start_mosquitto [CONFIG LINES...]: a mosquitto of the test's own on a free port ($port),
# with the extra config lines after the listener; stopped at exit. MOSQ_ANON=false refuses
# clients without a user name.
start_mosquitto() {
    local mosq=${MOSQUITTO_BIN:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
    for try in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 40000))
        { printf 'listener %s 127.0.0.1\nallow_anonymous %s\n' "$port" "${MOSQ_ANON:-true}"
          # As root mosquitto would drop to the 'mosquitto' user, who cannot read our files.
          [[ $(id -u) == 0 ]] && echo "user root"
          printf '%s\n' "$@"; } > "$tmp/mosq.conf"
        "$mosq" -c "$tmp/mosq.conf" > "$tmp/mosq.log" 2>&1 &
        mosq_pid=$!
        for _ in $(seq 50); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            kill -0 "$mosq_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$mosq_pid" 2>/dev/null && return 0 # else the port was taken: try another
    done
    fail "could not start mosquitto: $(cat "$tmp/mosq.log")"
}

if [[ $mode == offline ]]; then
    # The state says why a scanner is offline. A broker that refuses it (no anonymous
    # clients: CONNACK 5, not authorised), then a broker that goes away under it.
    MOSQ_ANON=false start_mosquitto
    launch_demo --no-backend --broker "tcp://127.0.0.1:$port" --flash "$tmp/flash"
    wait_for 'link OFFLINE: refused by the broker \(code 5\)' 20
    wait_for '│   refused by the broker +│' 5 # the state panel, under 'why'
    echo "ok: a refusing broker -> 'refused by the broker (code 5)'"
    key q
    expect_restored 0
    T kill-session -t demo
    kill "$mosq_pid"; wait "$mosq_pid" 2>/dev/null; mosq_pid=
    start_mosquitto
    start_demo --no-backend --broker "tcp://127.0.0.1:$port" --flash "$tmp/flash"
    kill "$mosq_pid"; wait "$mosq_pid" 2>/dev/null; mosq_pid=
    wait_for 'link OFFLINE: broker gone' 20
    wait_for '│ why +broker gone │' 5
    # It stays gone through the device's own reconnect attempts (each refused by the OS).
    wait_for 'connect failures +[1-9]' 20
    wait_for 'link OFFLINE: broker gone' 5
    echo "ok: the broker killed -> 'broker gone', through the reconnect attempts"
    quit_expecting "powered off while offline"
    echo "PASS: offline"
    exit 0
fi

if [[ $mode == tls ]]; then
    # ssl:// with mutual TLS: the device connects directly (the proxy cannot read TLS), the
    # screen says why n is off, and the registration still goes through; the backend uses the
    # same --cafile/--cert/--key.
    pki=$tmp/pki
    "$(dirname "$0")/../../ci/make-pki.sh" "$pki" 1 > "$tmp/pki.log" 2>&1 ||
        fail "make-pki.sh failed: $(cat "$tmp/pki.log")"
    start_mosquitto "cafile $pki/ca.crt" "certfile $pki/server.crt" "keyfile $pki/server.key" \
        "require_certificate true"
    start_demo --broker "ssl://127.0.0.1:$port" --cafile "$pki/ca.crt" --cert "$pki/scanner-1.crt" \
        --key "$pki/scanner-1.key" --flash "$tmp/flash"
    wait_for 'network +direct' 5
    wait_for "watch the registrations: mosquitto_sub -h 127.0.0.1 -p $port --cafile " 5
    wait_for 'the network cut \(n\) needs a tcp:// broker' 5
    key n
    wait_for 'no network cut: the device connects directly' 5
    key a
    wait_for 'item +#1 Pallet jack' 20
    key t
    wait_for 'screen +confirm ' 10
    key Enter
    wait_for 'registrations acked +1 ' 20
    wait_for "1 +Pallet jack +registered" 20
    wait_for " [0-9A-F]+ by scanner-1" 5
    echo "ok: mutual TLS: item, tag, registration acked and in the ledger; n explains why it is off"
    key q
    expect_restored 0
    echo "PASS: tls"
    exit 0
fi

if [[ $mode == flash ]]; then
    # --flash DIR: a registration confirmed while the link is cut waits in the outbox, which
    # survives a power-off; the next run with the same folder sends it. Both runs use one
    # broker of ours (--broker), so the message can be watched across the restart.
    start_mosquitto
    broker="tcp://127.0.0.1:$port"

    start_demo --broker "$broker" --flash "$tmp/flash" --seed 5
    key a
    wait_for 'screen +item ' 20
    key t
    wait_for 'screen +confirm ' 10
    tag=$(cap | sed -nE 's/.* tag +([0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20}) +│.*/\1/p' | head -1)
    key n
    wait_for 'link +OFFLINE ' 15
    key Enter
    wait_for 'outbox +1 ' 10
    wait_for 'registrations sent +0 ' 5
    key q
    expect_restored 0
    grep -q "powered off while offline.*1 left in the outbox kept in $tmp/flash" <(T capture-pane -p -J -t demo) || fail "no outbox note at power-off"
    [[ -s $tmp/flash/scanner-1/outbox ]] || fail "no outbox in $tmp/flash/scanner-1"
    echo "ok: registration of $tag confirmed offline, kept in $tmp/flash across the power-off"
    T kill-session -t demo

    stdbuf -oL "$sub_bin" -h 127.0.0.1 -p "$port" -d -v -t item_registered > "$tmp/sub.txt" 2>&1 &
    sub_pid=$!
    wait_file "$tmp/sub.txt" 'SUBACK' 10
    start_demo --broker "$broker" --flash "$tmp/flash" --no-backend
    wait_for 'registrations acked +1 ' 20
    wait_for 'outbox +0 ' 5
    wait_file "$tmp/sub.txt" "^item_registered \\{\"item_id\":1,\"tag_quantity\":[1-3],\"tag\":\"$tag\"" 10
    echo "ok: after the restart the outbox was sent: $(grep '^item_registered' "$tmp/sub.txt")"
    key q
    expect_restored 0
    echo "PASS: flash"
    exit 0
fi

if [[ $mode == mqtt5 ]]; then
    # MQTT 5 and the per-device layout: the backend publishes to this device's own topic.
    start_demo -V 5 --layout per-device --id dock-7 --flash "$tmp/flash"
    wait_for 'MQTT 5 QoS 1' 5
    stdbuf -oL "$sub_bin" -V 5 -h 127.0.0.1 -p "$port" -d -v -t 'scanners/+/item_registered' \
        -t 'scanners/+/item_registration' > "$tmp/sub.txt" 2>&1 &
    sub_pid=$!
    wait_file "$tmp/sub.txt" 'SUBACK' 10
    key a
    wait_for 'item +#1 Pallet jack' 20
    wait_file "$tmp/sub.txt" '^scanners/dock-7/item_registration \{"item_id":1' 5
    key t
    wait_for 'screen +confirm ' 10
    tag=$(cap | sed -nE 's/.* tag +([0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20}) +│.*/\1/p' | head -1)
    key Enter
    wait_for 'registrations acked +1 ' 20
    wait_for "1 +Pallet jack +registered" 20
    wait_for " $tag by dock-7" 5
    wait_file "$tmp/sub.txt" "^scanners/dock-7/item_registered \\{\"item_id\":1,\"tag_quantity\":[1-3],\"tag\":\"$tag\",\"device_id\":\"dock-7\"" 10
    echo "ok: MQTT 5, per-device layout: item on scanners/dock-7/item_registration, registration of $tag acked and in the ledger"
    key q
    expect_restored 0
    echo "PASS: mqtt5"
    exit 0
fi

# wait_oled_is_firmware_frame: the OLED panel on screen equals, cell for cell, the firmware's
# latest frame as sim_display_ascii() renders it (--oled-dump): the panel is pixel-true.
wait_oled_is_firmware_frame() {
    local end=$((SECONDS + 10))
    while ((SECONDS < end)); do
        [[ -f $tmp/oled.txt && "$(oled)" == "$(cat "$tmp/oled.txt")" ]] && return 0
        sleep 0.1
    done
    diff <(oled) "$tmp/oled.txt" | head -20
    fail "the OLED panel is not the firmware's frame"
}

# ---------------------------------------------------------------- the operator's flow
start_demo --seed 42 --flash "$tmp/flash" --oled-dump "$tmp/oled.txt"
wait_for "watch the registrations: mosquitto_sub -h 127.0.0.1 -p $port -t 'item_registered' -v" 5
wait_for "│ +tcp://127\.0\.0\.1:$port │" 5 # the whole broker URI in the state panel
echo "ok: online, broker on port $port, the mosquitto_sub line to watch it is on screen"
stdbuf -oL "$sub_bin" -h 127.0.0.1 -p "$port" -d -v -t item_registered -t 'scanners/+/inventory/reply' \
    -t 'scanners/scanner-1/status' > "$tmp/sub.txt" 2>&1 &
sub_pid=$!
wait_file "$tmp/sub.txt" 'SUBACK' 10
wait_file "$tmp/sub.txt" '^scanners/scanner-1/status online' 10

# a: the backend publishes item 1; the device shows it.
wait_oled_is_firmware_frame
oled_idle=$(oled)
key a
wait_for 'screen +item ' 20
wait_for 'item +#1 Pallet jack' 5
wait_oled_is_firmware_frame
[[ "$(oled)" != "$oled_idle" ]] || fail "the OLED did not change for the item screen"
grep -q '[▀▄█]' <<<"$(oled)" || fail "no half-block pixels on the OLED"
echo "ok: a -> item 1 on the state panel; the OLED panel is the firmware's new frame, pixel for pixel"

# t: a random tag; the device asks for confirmation.
key t
wait_for 'screen +confirm ' 10
tag=$(cap | sed -nE 's/.* tag +([0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20}) +│.*/\1/p' | head -1)
[[ -n $tag ]] || fail "no tag on the state panel"
wait_oled_is_firmware_frame
echo "ok: t -> tag $tag, screen confirm"

# Enter: registered, acknowledged, in the ledger and on the wire.
key Enter
wait_for 'registrations acked +1 ' 20
wait_for "1 +Pallet jack +registered" 20
wait_for " $tag by scanner-1" 5
wait_file "$tmp/sub.txt" "^item_registered \\{\"item_id\":1,\"tag_quantity\":[1-3],\"tag\":\"$tag\",\"device_id\":\"scanner-1\",\"seq\":[0-9]+\\}" 10
echo "ok: Enter -> acked 1, ledger row for $tag, mosquitto_sub got the registration"
echo "----- screen after add -> scan -> confirm -----"
cap
echo "----------------------------------------------"

# c: item 2 arrives and is skipped.
wait_for 'screen +idle ' 10
key a
wait_for 'item +#2 ' 20
wait_for 'screen +item ' 10
key c
wait_for 'cancels +1 ' 10
wait_for 'screen +idle ' 10
wait_for 'pending queue +0 ' 5
echo "ok: c -> item 2 skipped, cancels 1"

# i: inventory look-up of the registered tag, answered by the backend.
key i
wait_for 'screen +inventory_scan ' 10
key T
wait_for 'tag UID in hex' 5
key -l "$tag"
key Enter
wait_for 'inventory q/answ/t-o +1/1/0 ' 15
wait_for 'screen +inventory_result ' 5
wait_file "$tmp/sub.txt" "^scanners/scanner-1/inventory/reply \\{\"tag\":\"$tag\",\"found\":true,\"item_id\":1" 10
wait_for 'inventory answered 1' 10
key c
wait_for 'screen +idle ' 10
echo "ok: i -> the backend found $tag as item 1"

# n: the link goes away (the broker publishes the Will), n: it comes back.
key n
wait_for 'link +OFFLINE ' 15
wait_for 'network +CUT' 5
wait_file "$tmp/sub.txt" '^scanners/scanner-1/status offline' 15
# While cut, the device's own reconnect attempt (1 s back-off, +-25 %) is refused.
wait_for 'connect failures +1 ' 15
echo "ok: n -> offline, the broker published the Will, a reconnect attempt was refused"
key n
wait_for 'link +ONLINE ' 40
wait_for 'reconnects +1 ' 5
echo "ok: n -> online again"

echo "----- final screen -----"
cap
echo "------------------------"
# q: clean power-off; the terminal is restored and the status says offline (not the Will:
# the device published it itself before DISCONNECT).
key q
expect_restored 0
grep -q "powered off cleanly" <(cap) || fail "no power-off summary on the restored screen"
[[ $(grep -c '^scanners/scanner-1/status offline' "$tmp/sub.txt") -ge 2 ]] ||
    fail "no retained offline status at power-off"
echo "PASS: flow"
