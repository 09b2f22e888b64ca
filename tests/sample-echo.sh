#!/bin/sh
# The echo sample against a real client (OpenBSD netcat): lines come back,
# a last line without terminator too, a custom terminator works, an
# over-long line gets an error, a client that reads nothing cannot make the
# server buffer without bound, and SIGTERM ends the server with status 0,
# within a grace period even then.
set -u
builddir=${top_builddir:-.}
echo_bin="$builddir/samples/echo"
command -v nc >/dev/null 2>&1 || { echo "SKIP: nc (netcat-openbsd) not installed"; exit 77; }

server_bin=$echo_bin
. "$(dirname "$0")/sample-lib.sh"

start_server
printf 'hello\nworld\n\nlast without newline' | nc -N 127.0.0.1 "$port" >"$tmp/got"
printf 'hello\nworld\n\nlast without newline' >"$tmp/want"
cmp "$tmp/want" "$tmp/got" || fail "echo differs: got '$(cat "$tmp/got")'"

# 20,000 lines in one go, then 4 MiB of 20,000-byte lines (read past
# libevent's 4 KiB per read, into one piece), then both mixed on one
# connection: nothing lost or reordered, through either hook (-b: lines
# as bytes) and through both (-B: short lines as bytes, long ones as
# buffers).
seq 1 20000 >"$tmp/many"
head -c 3000000 /dev/urandom | base64 -w 20000 >"$tmp/long"
cat "$tmp/many" "$tmp/long" "$tmp/many" >"$tmp/mixed"
for mode in "" -b -B; do
	[ -z "$mode" ] || { stop_server; start_server "$mode"; }
	nc -N 127.0.0.1 "$port" <"$tmp/many" >"$tmp/got"
	cmp "$tmp/many" "$tmp/got" || fail "20000 lines did not come back intact ($mode)"
	nc -N 127.0.0.1 "$port" <"$tmp/long" >"$tmp/got"
	cmp "$tmp/long" "$tmp/got" || fail "long lines did not come back intact ($mode)"
	nc -N 127.0.0.1 "$port" <"$tmp/mixed" >"$tmp/got"
	cmp "$tmp/mixed" "$tmp/got" || fail "mixed lines did not come back intact ($mode)"
done
stop_server

start_server -t '\r\n' -m 8
printf 'ab\r\ncd\nef\r\n' | nc -N 127.0.0.1 "$port" >"$tmp/got"
printf 'ab\r\ncd\nef\r\n' >"$tmp/want"
cmp "$tmp/want" "$tmp/got" || fail "CRLF echo differs"
printf '0123456789\r\n' | nc -N 127.0.0.1 "$port" >"$tmp/got"
grep -q 'error: line too long' "$tmp/got" || fail "no error for a 10-byte line with -m 8"
stop_server

# A client that sends 64 MiB of lines and reads nothing: the server stops
# reading from it instead of buffering the replies (its memory stays
# bounded), and SIGTERM still ends it within its 5 s grace for a close.
start_server
rss_before=$(server_kib VmRSS)
python3 - "$port" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.setblocking(False)
line, sent, end = b"a line of some 32 bytes, and so\n" * 1024, 0, time.time() + 10
try:
    while sent < 64 << 20 and time.time() < end:
        try:
            sent += s.send(line)
        except BlockingIOError:
            time.sleep(0.01)
    time.sleep(30)  # holds the connection, unread, until killed
except ConnectionError:
    pass  # the server gave up on us at its shutdown: expected
PY
client_pid=$!
sleep 3
rss_after=$(server_kib VmRSS)
if memory_measurable "memory bound"; then
	[ "$((rss_after - rss_before))" -lt 16384 ] ||
		fail "a client that reads nothing grew the server from $rss_before to $rss_after KiB"
fi
started=$(date +%s)
stop_server
[ "$(($(date +%s) - started))" -le 8 ] || fail "SIGTERM took over 8 s with a client that reads nothing"
kill "$client_pid" 2>/dev/null
wait "$client_pid" 2>/dev/null

echo "sample-echo: all checks passed"
