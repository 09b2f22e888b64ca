#!/bin/sh
# The resp sample against real Redis clients: redis-cli for each command
# and its reply, binary values, 100,000 commands through redis-cli --pipe,
# redis-benchmark plain and pipelined; netcat (OpenBSD) for inline
# commands, binary keys and malformed input, which must get a protocol
# error and a close. SIGTERM must end the server with status 0.
set -u
builddir=${top_builddir:-.}
resp_bin="$builddir/samples/resp"
command -v redis-cli >/dev/null 2>&1 || { echo "SKIP: redis-cli not installed"; exit 77; }
have_nc=yes
command -v nc >/dev/null 2>&1 || have_nc=no
have_benchmark=yes
command -v redis-benchmark >/dev/null 2>&1 || have_benchmark=no

server_bin=$resp_bin
. "$(dirname "$0")/sample-lib.sh"

# A guard against a hung client; without timeout(1) the test just trusts.
run() {
	if command -v timeout >/dev/null 2>&1; then
		timeout 20 "$@"
	else
		"$@"
	fi
}

# The usage conventions shared by the server samples.
"$resp_bin" -h >"$tmp/out" 2>&1 || fail "-h did not exit 0"
grep -q '^usage: resp' "$tmp/out" || fail "-h printed no usage"
"$resp_bin" -x >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "a bad option did not exit 2"
grep -q '^usage: resp' "$tmp/err" || fail "a bad option printed no usage"

start_server

# expect WANT ARG...: redis-cli's formatted output (--no-raw) for one
# command must be WANT, lines separated by "\n".
expect() {
	want=$(printf '%b' "$1")
	shift
	got=$(run redis-cli --no-raw -p "$port" "$@" 2>&1)
	[ "$got" = "$want" ] || fail "$*: expected '$want', got '$got'"
}

expect 'PONG' PING
expect '"hello there"' PING "hello there"
expect '"hello"' ECHO hello
expect 'OK' SET greeting hi
expect '"hi"' GET greeting
expect '(nil)' GET nothing
expect 'OK' SET empty ''
expect '""' GET empty
expect 'OK' SET other x
expect '(integer) 2' EXISTS greeting other
expect '(integer) 3' EXISTS greeting greeting other
expect '(integer) 2' DEL greeting other missing
expect '(integer) 0' EXISTS greeting
expect '(integer) 1' INCR counter
expect '(integer) 2' INCR counter
expect 'OK' SET counter 41
expect '(integer) 42' INCR counter
expect 'OK' SET word abc
expect '(error) ERR value is not an integer or out of range' INCR word
expect 'OK' SET spaced ' 1'
expect '(error) ERR value is not an integer or out of range' INCR spaced
expect 'OK' SET top 9223372036854775807
expect '(error) ERR increment or decrement would overflow' INCR top
expect 'OK' SET low -9223372036854775808
expect '(integer) -9223372036854775807' INCR low
expect '1) "42"\n2) (nil)\n3) "abc"' MGET counter missing word
expect "(error) ERR unknown command 'NOSUCH'" NOSUCH a b
expect "(error) ERR wrong number of arguments for 'get' command" GET
expect "(error) ERR wrong number of arguments for 'get' command" GET a b
expect "(error) ERR wrong number of arguments for 'ping' command" PING a b
expect '(error) ERR SET options are not supported by this server' SET a b EX 10
expect '(empty array)' COMMAND DOCS
expect '1) "appendonly"\n2) "no"' CONFIG GET appendonly
expect '(empty array)' CONFIG GET nosuchparameter

# Binary-safe values: NUL, CR and LF inside, through redis-cli -x (the
# value is stdin) and back with --raw, which adds one newline.
printf 'a\000b\r\nc\r\n\000\n\rz' >"$tmp/value"
expect 'OK' -x SET binary <"$tmp/value"
run redis-cli --raw -p "$port" GET binary >"$tmp/got"
printf 'a\000b\r\nc\r\n\000\n\rz\n' >"$tmp/want"
cmp "$tmp/want" "$tmp/got" || fail "a binary value did not come back intact"
# A value of 300 KiB: bigger than one read, one reply chunk.
head -c 307200 /dev/urandom >"$tmp/big" 2>/dev/null ||
	dd if=/dev/urandom of="$tmp/big" bs=1024 count=300 2>/dev/null
expect 'OK' -x SET big <"$tmp/big"
run redis-cli --raw -p "$port" GET big >"$tmp/got"
cp "$tmp/big" "$tmp/want" && printf '\n' >>"$tmp/want"
cmp "$tmp/want" "$tmp/got" || fail "a 300 KiB value did not come back intact"
# Bulks of 32 KiB or more are read into a buffer of their own, which SET
# keeps: a 64 MiB value costs the server about 64 MiB, not once for the
# frame, once for the argument and once for the store.
head -c 67108864 /dev/zero | tr '\0' v >"$tmp/huge"
hwm_before=$(server_kib VmHWM)
expect 'OK' -x SET huge <"$tmp/huge"
hwm_after=$(server_kib VmHWM)
if memory_measurable "memory of a 64 MiB SET"; then
	[ "$((hwm_after - hwm_before))" -lt 98304 ] ||
		fail "a 64 MiB SET took the server's peak from $hwm_before to $hwm_after KiB"
fi
run redis-cli --raw -p "$port" GET huge >"$tmp/got"
cp "$tmp/huge" "$tmp/want" && printf '\n' >>"$tmp/want"
cmp -s "$tmp/want" "$tmp/got" || fail "a 64 MiB value did not come back intact"
expect '(integer) 1' DEL huge

# nc_expect INPUT WANT: sends INPUT (printf format) and must read back
# exactly WANT (printf format) before the server closes.
nc_expect() {
	printf -- "$1" | run nc -N 127.0.0.1 "$port" >"$tmp/got"
	printf -- "$2" >"$tmp/want"
	cmp -s "$tmp/want" "$tmp/got" ||
		fail "nc: sent '$1', expected '$2', got '$(od -c "$tmp/got")'"
}

if [ "$have_nc" = yes ]; then
	# Inline commands, with CRLF or a bare LF, pipelined in one write.
	nc_expect 'PING\r\nSET inline yes\nGET inline\r\n\r\nEXISTS inline nope\n' \
		'+PONG\r\n+OK\r\n$3\r\nyes\r\n:1\r\n'
	# A binary key; GET of the key without its NUL finds nothing.
	nc_expect '*3\r\n$3\r\nSET\r\n$4\r\nk\000\r\n\r\n$2\r\n\r\n\r\n*2\r\n$3\r\nGET\r\n$4\r\nk\000\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n' \
		'+OK\r\n$2\r\n\r\n\r\n$-1\r\n'
	# An empty argument, first or not, and a negative multibulk count,
	# which Redis takes for no command.
	nc_expect '*1\r\n$0\r\n\r\n*-3\r\n*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n' \
		"-ERR unknown command ''\r\n+OK\r\n\$0\r\n\r\n"
	# QUIT answers, then closes: what follows is not answered.
	nc_expect 'PING\r\nQUIT\r\nPING\r\n' '+PONG\r\n+OK\r\n'
	# Malformed input: the requests before it are answered, then one
	# protocol error, then the close (the PING after is never answered).
	nc_expect 'PING\r\n*x\r\nPING\r\n' \
		'+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n'
	nc_expect '*1\r\n$-3\r\nPING\r\n' \
		'-ERR Protocol error: invalid bulk length\r\n'
	nc_expect '*1\r\n$9999999999\r\nPING\r\n' \
		'-ERR Protocol error: invalid bulk length\r\n'
	nc_expect '*1\r\nPING\r\nPING\r\n' \
		"-ERR Protocol error: expected '\$', got 'P'\r\n"
	nc_expect '*1\r\n$4\r\nPINGxx\r\nPING\r\n' \
		'-ERR Protocol error: bulk string not followed by CRLF\r\n'
	nc_expect '*99999999\r\nPING\r\n' \
		'-ERR Protocol error: invalid multibulk length\r\n'
	# Big bulks (32 KiB or more) as a key and as a value, pipelined with
	# what follows; one not followed by CRLF; requests cut short inside
	# one and after one (the server must free what it holds).
	k=$(head -c 40000 /dev/zero | tr '\0' k)
	nc_expect "*3\r\n\$3\r\nSET\r\n\$40000\r\n$k\r\n\$1\r\nv\r\n*2\r\n\$3\r\nGET\r\n\$40000\r\n$k\r\n*2\r\n\$4\r\nECHO\r\n\$40000\r\n$k\r\nPING\r\n" \
		"+OK\r\n\$1\r\nv\r\n\$40000\r\n$k\r\n+PONG\r\n"
	nc_expect "*2\r\n\$4\r\nECHO\r\n\$40000\r\n${k}xx\r\nPING\r\n" \
		'-ERR Protocol error: bulk string not followed by CRLF\r\n'
	nc_expect "PING\r\n*2\r\n\$4\r\nECHO\r\n\$100000\r\n$k" '+PONG\r\n'
	nc_expect "*3\r\n\$3\r\nSET\r\n\$40000\r\n$k\r\n\$5\r\nab" ''
	# A line over 64 KiB without its end.
	awk 'BEGIN { for (i = 0; i < 70000; i++) printf "x" }' >"$tmp/long"
	run nc -N 127.0.0.1 "$port" <"$tmp/long" >"$tmp/got"
	grep -q 'Protocol error: too big inline request' "$tmp/got" ||
		fail "no error for a 70000-byte inline request"
else
	echo "note: nc not installed, inline and malformed input not tested"
fi

# 100,000 commands in one stream, multibulk and inline mixed.
awk 'BEGIN {
	for (i = 0; i < 100000; i++) {
		if (i % 2)
			printf "SET key:%d %d\r\n", i, i
		else
			printf "*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$%d\r\n%d\r\n",
			    length("key:" i), i, length(i ""), i
	}
}' >"$tmp/pipe"
run redis-cli -p "$port" --pipe <"$tmp/pipe" >"$tmp/got" 2>&1
grep -q 'errors: 0, replies: 100000' "$tmp/got" ||
	fail "redis-cli --pipe: $(cat "$tmp/got")"
expect '1) "99998"\n2) "99999"' MGET key:99998 key:99999

if [ "$have_benchmark" = yes ]; then
	for pipeline in 1 16; do
		run redis-benchmark -p "$port" -t ping_inline,set,get -n 2000 \
			-P "$pipeline" -q >"$tmp/bench" 2>&1 ||
			fail "redis-benchmark -P $pipeline failed: $(cat "$tmp/bench")"
		# -q rewrites a progress line with "\r"; keep the final ones.
		tr '\r' '\n' <"$tmp/bench" | grep 'requests per second' |
			sed 's/^ *//' >"$tmp/rates"
		for test in PING_INLINE SET GET; do
			grep -q "^$test: [0-9.]* requests per second" "$tmp/rates" ||
				fail "redis-benchmark -P $pipeline printed no $test rate: $(cat "$tmp/bench")"
		done
		sed "s/^/  (-P $pipeline) /" "$tmp/rates"
	done
	expect 'PONG' PING
else
	echo "note: redis-benchmark not installed, not run"
fi

kill -0 "$server_pid" 2>/dev/null || fail "the server died"
stop_server
[ -s "$tmp/err" ] && fail "the server complained: $(cat "$tmp/err")"

echo "sample-resp: all checks passed"
