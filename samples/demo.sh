#!/bin/sh
# make demo: start the echo sample, talk to it with netcat, show the
# exchange, stop it. Usage: demo.sh PATH_TO_ECHO
set -eu
echo_bin=$1
out=$(mktemp)
"$echo_bin" -p 0 >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
while ! grep -q '^listening' "$out"; do sleep 0.05; done
port=$(sed -n 's/^listening on 127\.0\.0\.1://p' "$out")
echo "server: $(cat "$out")"
echo "client sends: 'hello' and 'evchat' (two lines)"
printf 'hello\nevchat\n' | nc -N 127.0.0.1 "$port" | sed 's/^/server replied: /'
kill -INT $pid
wait $pid && echo "server stopped cleanly on SIGINT"
