#!/bin/sh
# The chat sample against real clients (socat, and python3 for clients that
# never read): joining, broadcasting, /who, /nick, /quit, refused nicks, a
# CR that cannot inject a line, an over-long line; then the slow-reader
# property: while three clients never read, 50,000 lines from one client
# reach another in full and in order, the server's memory (VmHWM in
# /proc, so Linux only) stays bounded, and a slow client, once it reads,
# is told how many lines it missed. Finally SIGTERM ends the server with
# status 0, a client that never reads holding it up 2 s at most.
set -u
builddir=${top_builddir:-.}
chat_bin="$builddir/samples/chat"
for tool in socat python3 timeout; do
	command -v "$tool" >/dev/null 2>&1 ||
		{ echo "SKIP: $tool not installed"; exit 77; }
done
# The interpreter itself: a version manager's shim can take a second to
# start on a busy machine.
python=$(python3 -c 'import sys; print(sys.executable)') || exit 77

tmp=$(mktemp -d)
server_pid=
client_pids=
cleanup() {
	for pid in $server_pid $client_pids; do
		kill "$pid" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The whole test must stay quick: each wait gives up after this long.
limit=5
# Except the flood's, a guard against a hang and not a speed check: 25 MB
# through a sanitizer build at nice 10, beside a test suite on both CPUs,
# has taken longer than 5 s.
flood_limit=60

"$chat_bin" -h >/dev/null || fail "-h did not exit 0"
"$chat_bin" -x 2>/dev/null; [ $? -eq 2 ] || fail "a bad option did not exit 2"

# The server runs at a lower priority than its clients: on a busy machine
# a reader must not be starved of CPU by the very server that feeds it, or
# it would fall behind like a slow reader, and lose lines as one (the
# flood below comes as fast as the server can take it).
nice -n 10 "$chat_bin" -p 0 >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
for _ in $(seq 1 100); do
	port=$(sed -n '1s/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/server.out")
	[ -n "$port" ] && break
	sleep 0.05
done
[ -n "$port" ] || fail "server did not print its port: $(cat "$tmp/server.err")"

# open NAME FD: a client whose input is written to file descriptor FD
# (through a fifo) and whose output collects in $tmp/NAME.raw. socat exits
# soon after the server closes the connection.
open() {
	mkfifo "$tmp/$1.in"
	socat -b 65536 -t 0.5 - "TCP:127.0.0.1:$port" <"$tmp/$1.in" \
		>"$tmp/$1.raw" &
	client_pids="$client_pids $!"
	eval "pid_$1=\$!"
	eval "exec $2>\"\$tmp/\$1.in\""
}

# send FD LINE: LINE and a LF.
send() { printf '%s\n' "$2" >&"$1"; }

# got NAME LINE: NAME has received exactly LINE (the server ends lines
# with CRLF).
got() { tr -d '\r' <"$tmp/$1.raw" | grep -qxF -- "$2"; }

# wait_for NAME LINE: until NAME has received LINE.
wait_for() {
	for _ in $(seq 1 $((limit * 20))); do
		got "$1" "$2" && return 0
		sleep 0.05
	done
	fail "$1 did not get '$2'; it got, last: $(tail -n 5 "$tmp/$1.raw" |
		cut -c1-100 | tr -d '\r')"
}

# wait_exit PID WHAT: until process PID has ended.
wait_exit() {
	for _ in $(seq 1 $((limit * 20))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	fail "$2"
}

# --- the protocol ------------------------------------------------------
open alice 3
wait_for alice '* welcome to evchat; say NICK name'
send 3 'hello before my nick'
wait_for alice 'error: say NICK name first'
send 3 '/who'
send 3 'NICK bad nick!'
wait_for alice "error: a nick is 1 to 16 letters, digits, '-' or '_'"
got alice '* online:' && fail "/who answered before NICK"
send 3 'NICK alice'
wait_for alice '* hello alice, 1 online; /who lists them, /nick NAME renames you, /quit leaves'

open bob 4
printf 'NICK bob\r\n' >&4 # CRLF is accepted too
wait_for bob '* hello bob, 2 online; /who lists them, /nick NAME renames you, /quit leaves'
wait_for alice '* bob joined'

open carol 5
send 5 'NICK ALICE'
wait_for carol 'error: the nick ALICE is taken'
send 5 'NICK carol'
wait_for alice '* carol joined'
wait_for bob '* carol joined'

send 3 'hello from alice'
wait_for bob '<alice> hello from alice'
wait_for carol '<alice> hello from alice'
send 3 '/who' # answered after the broadcast, so it is a sync point
wait_for alice '* online: alice bob carol'
got alice '<alice> hello from alice' && fail "the sender got its own line"

send 3 '/frobnicate'
wait_for alice 'error: unknown command; try /who, /nick NAME, /quit'
got bob '<alice> /frobnicate' && fail "an unknown command was broadcast"

send 4 '/nick robert'
wait_for bob '* you are now robert'
wait_for alice '* bob is now robert'
send 5 '/nick Robert'
wait_for carol 'error: the nick Robert is taken'
send 5 '/who'
wait_for carol '* online: alice robert carol'
# Renaming to one's own nick is no news for the others.
send 4 '/nick robert'
wait_for bob '* you are already robert'
send 4 '/who'
wait_for bob '* online: alice robert carol'
got alice '* robert is now robert' && fail "a rename to the same nick was broadcast"

# A lone CR in a message stays inside it, shown as '?': no line of its own,
# and no bare CR that would let a terminal draw over the line.
printf 'one\rtwo\r\n' >&3
wait_for bob '<alice> one?two'
got bob 'two' && fail "a CR injected a line"
awk '{ sub(/\r$/, "") } index($0, "\r") { bad = 1 } END { exit bad }' \
	"$tmp/bob.raw" || fail "a bare CR reached a client"
# ESC, DEL and the C1 controls (0x9b is an 8-bit "ESC [" to some
# terminals), raw or encoded in UTF-8, are shown as '?' too; other UTF-8
# (an e acute, a euro sign whose bytes include 0x82) and lone high bytes
# go through.
printf 'a\033[31mb\177 c\302\233d \233e \303\251 \342\202\254 \351\r\n' >&3
wait_for bob "$(printf '<alice> a?[31mb? c?d ?e \303\251 \342\202\254 \351')"

# /quit: a goodbye, then the server closes; the others see the leave.
send 5 '/quit'
wait_for carol '* bye, carol'
wait_for alice '* carol left'
wait_for bob '* carol left'
wait_exit "$pid_carol" "the server did not close carol's connection after /quit"
exec 5>&-

# A line over 1 KiB: an error line, then the connection is closed.
open dave 5
send 5 'NICK dave'
wait_for alice '* dave joined'
head -c 3000 /dev/zero | tr '\0' x >&5
send 5 ''
wait_for dave 'error: line too long (more than 1024 bytes)'
wait_for alice '* dave left'
wait_exit "$pid_dave" "the server did not close the connection after a long line"
exec 5>&-

# A client that just goes away (its input ends) is announced as leaving.
exec 4>&-
wait_for alice '* robert left'

# --- slow readers stall nobody and cost bounded memory ------------------
# Three clients that do not read: slow will read later, stuck will vanish,
# mute stays to the end. slow.py NICK: joins, then reads nothing at all
# until the file NICK.go
# exists (meanwhile the kernel's buffers take a few MB, then the server's);
# then reads until the notice of dropped lines, creates NICK.caught-up, and
# reads on until alice's "after the flood", saving all it got in NICK.raw.
cat >"$tmp/slow.py" <<'EOF'
import os, socket, sys, time
port, nick, tmp = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.connect(("127.0.0.1", port))
s.sendall(b"NICK " + nick.encode() + b"\n")
while not os.path.exists(f"{tmp}/{nick}.go"):
    time.sleep(0.05)
s.settimeout(5)
got = b""
told = False
while b"<alice> after the flood\r\n" not in got:
    data = s.recv(65536)
    if not data:
        break
    got += data
    if not told and b"messages dropped while you were not reading" in got:
        told = True
        open(f"{tmp}/{nick}.caught-up", "w").close()
open(f"{tmp}/{nick}.raw", "wb").write(got)
s.close()
EOF
"$python" "$tmp/slow.py" "$port" slow "$tmp" &
slow_pid=$!
client_pids="$client_pids $slow_pid"
wait_for alice '* slow joined'
"$python" "$tmp/slow.py" "$port" stuck "$tmp" &
stuck_pid=$!
client_pids="$client_pids $stuck_pid"
wait_for alice '* stuck joined'
"$python" "$tmp/slow.py" "$port" mute "$tmp" &
client_pids="$client_pids $!"
wait_for alice '* mute joined'

open recv 4
send 4 'NICK recv'
wait_for alice '* recv joined'
open flood 5
send 5 'NICK flood'
wait_for recv '* flood joined'

# 50,000 lines of 500 bytes: 25 MB for each reader, which a server that
# queued everything for its three stuck readers would have to hold.
lines=50000
awk -v n=$lines 'BEGIN {
	pad = sprintf("%493s", ""); gsub(/ /, "x", pad)
	for (i = 1; i <= n; i++) printf "%06d %s\n", i, pad
}' >"$tmp/flood.txt"
start=$(date +%s)
timeout $flood_limit cat "$tmp/flood.txt" >&5 || fail "the server did not take the flood in time"
last=$(printf '<flood> %06d' $lines)
for _ in $(seq 1 $((flood_limit * 20))); do
	tail -c 2000 "$tmp/recv.raw" | grep -q "^$last " && break
	sleep 0.05
done
tail -c 2000 "$tmp/recv.raw" | grep -q "^$last " ||
	fail "recv did not get all $lines lines in time ($(wc -l <"$tmp/recv.raw") lines)"
echo "flood of $lines lines delivered in about $(($(date +%s) - start)) s"
tr -d '\r' <"$tmp/recv.raw" | awk -v n=$lines '
	/^<flood> / { if ($2 + 0 != ++seen) { print "line " seen " is " $2; exit 1 } }
	END { if (seen != n) { print seen " lines"; exit 1 } }' ||
	fail "recv did not get every flood line in order"

hwm=$(sed -n 's/^VmHWM:[ \t]*\([0-9]*\) kB$/\1/p' "/proc/$server_pid/status")
rss=$(sed -n 's/^VmRSS:[ \t]*\([0-9]*\) kB$/\1/p' "/proc/$server_pid/status")
echo "server memory with three stuck readers: VmRSS $rss kB, peak VmHWM $hwm kB"
# A sanitizer build keeps freed memory in quarantine (256 MB with ASan),
# so its footprint says nothing about ours; the plain build checks it.
if grep -q __asan_init "$chat_bin" 2>/dev/null; then
	echo "(AddressSanitizer build: memory bound not checked)"
else
	[ "$hwm" -lt 32768 ] || fail "server peak memory $hwm kB: slow readers made it grow"
fi

# The slow reader reads at last: what was queued before it got stuck, then
# one notice for the rest, then new lines as usual.
touch "$tmp/slow.go"
for _ in $(seq 1 $((limit * 20))); do
	[ -e "$tmp/slow.caught-up" ] && break
	sleep 0.05
done
[ -e "$tmp/slow.caught-up" ] || fail "slow was never told of dropped lines"
# The stuck reader vanishes with unread bytes (a reset): announced, and
# the server goes on.
kill "$stuck_pid"
wait_for alice '* stuck left'
send 3 'after the flood'
wait_exit "$slow_pid" "slow did not get alice's line after catching up"
[ -s "$tmp/slow.raw" ] || fail "slow got nothing"
tr -d '\r' <"$tmp/slow.raw" | awk -v n=$lines '
	/^<flood> / { if ($2 + 0 != ++seen + dropped) { print "line " $2; exit 1 } }
	/^\* [0-9]+ messages dropped while you were not reading$/ { dropped += $2 }
	END {
		printf "slow got %d flood lines and was told of %d dropped\n", seen, dropped
		exit !(seen + dropped == n && dropped > 0)
	}' || fail "slow's flood lines and dropped counts do not add up to $lines"
got slow '<alice> after the flood' || fail "slow did not get alice's line"
wait_for alice '* slow left'
wait_for recv '<alice> after the flood'
send 3 '/who'
wait_for alice '* online: alice mute recv flood'

# --- shutdown ----------------------------------------------------------
# Everyone is told; mute, who never reads its goodbye, holds the server
# up for 2 s at most.
kill -TERM "$server_pid"
for _ in $(seq 1 $((limit * 20))); do
	state=$(sed 's/.*) //' "/proc/$server_pid/stat" 2>/dev/null | cut -c1)
	[ -z "$state" ] || [ "$state" = Z ] && break
	sleep 0.05
done
[ -z "$state" ] || [ "$state" = Z ] ||
	fail "server still running $limit s after SIGTERM"
wait "$server_pid"
status=$?
server_pid=
[ "$status" -eq 0 ] || fail "server exited with $status after SIGTERM"
got alice '* the server is shutting down, bye' || fail "alice was not told of the shutdown"
got recv '* the server is shutting down, bye' || fail "recv was not told of the shutdown"
[ -s "$tmp/server.err" ] && fail "server complained: $(cat "$tmp/server.err")"

echo "sample-chat: all checks passed"
