# Shared by the sample tests (sourced, not run): a scratch directory removed
# on exit with any server still running, fail(), and starting and stopping
# a sample server that prints "listening on 127.0.0.1:PORT" first.
# The sourcing script sets server_bin first.

tmp=$(mktemp -d)
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The server's memory in KiB, as /proc/PID/status says: FIELD is VmRSS,
# VmHWM...
server_kib() { sed -n "s/^$1:[^0-9]*\([0-9]*\).*/\1/p" "/proc/$server_pid/status"; }

# Whether the server's memory says anything about ours: not on a sanitizer
# build, which keeps freed memory in quarantine (256 MB with ASan). Says
# so when it does not, naming WHAT was not checked.
memory_measurable() {
	grep -q __asan_init "$server_bin" 2>/dev/null || return 0
	echo "(AddressSanitizer build: $1 not checked)"
	return 1
}

# Starts the server with the given options; sets $port and $server_pid.
start_server() {
	"$server_bin" -p 0 "$@" >"$tmp/out" 2>"$tmp/err" &
	server_pid=$!
	for _ in $(seq 1 100); do
		port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/out")
		[ -n "$port" ] && return 0
		sleep 0.05
	done
	fail "server did not print its port: $(cat "$tmp/err")"
}

# SIGTERM must end the server with status 0.
stop_server() {
	kill -TERM "$server_pid"
	wait "$server_pid"
	status=$?
	server_pid=
	[ "$status" -eq 0 ] || fail "server exited with $status after SIGTERM"
}
