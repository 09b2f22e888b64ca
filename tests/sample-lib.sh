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
