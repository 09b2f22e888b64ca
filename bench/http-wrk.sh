#!/bin/sh
# The http sample under wrk, a real HTTP load generator: keep-alive GETs
# of a small file for a few seconds. Prints wrk's figures; never passes or
# fails on speed. Usage: http-wrk.sh PATH_TO_HTTP [SECONDS]
set -eu
http_bin=$1
secs=${2:-3}
command -v wrk >/dev/null 2>&1 || { echo "http-wrk: wrk not installed (apt-get install wrk); skipped"; exit 0; }
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
printf 'hello from evchat\n' >"$dir/index.txt"
"$http_bin" -p 0 -d "$dir" >"$dir/out" 2>"$dir/err" &
pid=$!
while ! grep -q '^listening' "$dir/out"; do sleep 0.05; done
port=$(sed -n 's/^listening on 127\.0\.0\.1://p' "$dir/out")
echo "http sample, wrk -t1 -c16 -d${secs}s, GET /index.txt (18 bytes), keep-alive:"
wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:$port/index.txt" |
	sed -n 's/^ *\(Requests\/sec\|Transfer\/sec\|Non-2xx\|Socket errors\).*/  &/p'
kill -TERM $pid
wait $pid
