#!/bin/sh
# The http sample against real clients: curl for files (small and 20 MiB),
# HEAD, 404, refused path traversal, POST bodies (Content-Length, 0,
# chunked, 100-continue, too large), keep-alive; OpenBSD netcat for what
# curl will not send: pipelined requests, HTTP/1.0, malformed and oversized
# heads, a slow head. SIGTERM must end the server with status 0, after
# finishing a download in flight.
set -u
builddir=${top_builddir:-.}
http_bin="$builddir/samples/http"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl not installed"; exit 77; }
# The raw-socket checks need netcat with -N (half-close after stdin ends).
have_nc=no
nc -h 2>&1 | grep -q -- '-N' && have_nc=yes

server_bin=$http_bin
. "$(dirname "$0")/sample-lib.sh"

# Options: -h is usage on stdout and 0; a bad option is usage and 2.
"$http_bin" -h | grep -q '^usage: http' || fail "-h printed no usage"
"$http_bin" -x 2>/dev/null; [ $? -eq 2 ] || fail "a bad option did not exit 2"

mkdir "$tmp/www" "$tmp/www/sub"
printf 'hello\n' >"$tmp/www/small.txt"
printf '<p>index</p>\n' >"$tmp/www/sub/index.html"
printf 'secret\n' >"$tmp/secret"
head -c 20971520 /dev/urandom >"$tmp/www/big.bin"
head -c 200000 /dev/urandom >"$tmp/body"
head -c 3000000 /dev/urandom >"$tmp/body3m"
head -c 5000000 /dev/urandom >"$tmp/body5m"

start_server -d "$tmp/www" -b 4194304 -t 1
url="http://127.0.0.1:$port"

# GET: body and headers.
curl -sS -D "$tmp/h" -o "$tmp/got" "$url/small.txt" || fail "GET small.txt"
cmp "$tmp/www/small.txt" "$tmp/got" || fail "small.txt differs"
grep -q '^HTTP/1.1 200 OK' "$tmp/h" || fail "no 200: $(cat "$tmp/h")"
grep -qi '^Content-Length: 6' "$tmp/h" || fail "no Content-Length: 6"
grep -qi '^Content-Type: text/plain' "$tmp/h" || fail "no text/plain type"
curl -sS -D "$tmp/h" -o "$tmp/got" "$url/sub/" || fail "GET /sub/"
cmp "$tmp/www/sub/index.html" "$tmp/got" || fail "/sub/ did not serve index.html"
grep -qi '^Content-Type: text/html' "$tmp/h" || fail "index.html not text/html"

# A 20 MiB file, sent with sendfile.
curl -sS -o "$tmp/got" "$url/big.bin" || fail "GET big.bin"
cmp "$tmp/www/big.bin" "$tmp/got" || fail "big.bin differs"

# HEAD: the headers of a GET, no body.
curl -sS -I "$url/big.bin" >"$tmp/h" || fail "HEAD big.bin"
grep -qi '^Content-Length: 20971520' "$tmp/h" || fail "HEAD length: $(cat "$tmp/h")"
grep -q 'HTTP/1.1 200' "$tmp/h" || fail "HEAD status"

code() { curl -sS -o "$tmp/got" -w '%{http_code}' "$@"; }

[ "$(code "$url/nope")" = 404 ] || fail "missing file is not 404"
# Traversal: curl would tidy the dots away without --path-as-is.
[ "$(code --path-as-is "$url/../secret")" = 403 ] || fail "/../secret not 403"
[ "$(code "$url/%2e%2e/secret")" = 403 ] || fail "/%2e%2e/secret not 403"
[ "$(code --path-as-is "$url/sub/../../secret")" = 403 ] || fail "sub/../../ not 403"
[ "$(code -X DELETE "$url/small.txt")" = 405 ] || fail "DELETE not 405"

# POST: the server answers how many body bytes it got.
post() {
	out=$(curl -sS "$@") || fail "POST $*"
	echo "$out"
}
[ "$(post --data-binary @"$tmp/body" "$url/")" = "received 200000 bytes" ] ||
	fail "POST 200000 bytes"
[ "$(post -X POST -H 'Content-Length: 0' "$url/")" = "received 0 bytes" ] ||
	fail "POST with Content-Length: 0"
# Over 1 MiB curl sends "Expect: 100-continue" and waits for the go.
[ "$(post --data-binary @"$tmp/body3m" "$url/")" = "received 3000000 bytes" ] ||
	fail "POST 3000000 bytes with 100-continue"
[ "$(code --data-binary @"$tmp/body5m" "$url/")" = 413 ] || fail "5 MB body not 413"
[ "$(post -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/body" "$url/")" = \
  "received 200000 bytes" ] || fail "chunked POST 200000 bytes"
[ "$(post -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/body3m" "$url/")" = \
  "received 3000000 bytes" ] || fail "chunked POST 3000000 bytes"

# Keep-alive: two URLs in one curl, one connection.
conns=$(curl -sS -o /dev/null -o /dev/null -w '%{num_connects},' \
	"$url/small.txt" "$url/nope") || fail "keep-alive curl"
[ "$conns" = "1,0," ] || fail "keep-alive: connects per request were $conns"

if [ "$have_nc" = yes ]; then
	raw() { printf '%b' "$1" | nc -N 127.0.0.1 "$port" >"$tmp/got"; }
	statuses() { grep '^HTTP/' "$tmp/got" | tr -d '\r' | cut -d' ' -f2 | tr '\n' ' '; }
	h='Host: x\r\n'

	# Pipelined: three requests in one write, answered in order, a
	# chunked body (with an extension and a trailer) in between.
	raw "GET /small.txt HTTP/1.1\r\n$h\r\nGET /nope HTTP/1.1\r\n$h\r\nPOST / HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nHEAD /small.txt HTTP/1.1\r\n$h\r\n"
	[ "$(statuses)" = "200 404 200 200 " ] || fail "pipelined: $(statuses)"
	grep -q '^hello' "$tmp/got" || fail "pipelined: no small.txt body"
	grep -q '^received 11 bytes' "$tmp/got" || fail "pipelined: chunked body"
	raw "POST / HTTP/1.1\r\n${h}Content-Length: 4\r\n\r\nabcdGET /small.txt HTTP/1.1\r\n$h\r\n"
	[ "$(statuses)" = "200 200 " ] || fail "POST then GET: $(statuses)"

	# HTTP/1.0 closes after one reply unless asked; Connection: close too.
	raw "GET /small.txt HTTP/1.0\r\n\r\nGET /small.txt HTTP/1.0\r\n\r\n"
	[ "$(statuses)" = "200 " ] || fail "HTTP/1.0 kept the connection"
	raw "GET /small.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /small.txt HTTP/1.0\r\n\r\n"
	[ "$(statuses)" = "200 200 " ] || fail "HTTP/1.0 keep-alive: $(statuses)"
	# Transfer-Encoding in HTTP/1.0: answered, then closed even if asked
	# to keep the connection (RFC 9112, 6.1).
	raw "POST /up HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /small.txt HTTP/1.0\r\n\r\n"
	[ "$(statuses)" = "200 " ] || fail "HTTP/1.0 chunked kept the connection: $(statuses)"
	raw "GET /small.txt HTTP/1.1\r\n${h}Connection: close\r\n\r\nGET /small.txt HTTP/1.1\r\n$h\r\n"
	[ "$(statuses)" = "200 " ] || fail "Connection: close not honoured"

	# Malformed heads: 400, and the connection ends there.
	raw "GARBAGE\r\n\r\nGET /small.txt HTTP/1.1\r\n$h\r\n"
	[ "$(statuses)" = "400 " ] || fail "garbage request line: $(statuses)"
	raw "GET /small.txt HTTP/1.1\r\nNo colon here\r\n\r\n"
	[ "$(statuses)" = "400 " ] || fail "header without colon: $(statuses)"
	raw "GET /small.txt HTTP/1.1\r\n\r\n"
	[ "$(statuses)" = "400 " ] || fail "HTTP/1.1 without Host: $(statuses)"
	raw "GET //etc/passwd HTTP/1.1\r\n$h\r\n"
	[ "$(statuses)" = "404 " ] || fail "absolute path: $(statuses)"
	raw "POST / HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\nzz\r\n"
	[ "$(statuses)" = "400 " ] || fail "bad chunk size: $(statuses)"
	# Chunk extensions and trailers: ignored, but held to the grammar,
	# as a proxy in front might read them otherwise (RFC 9112 7.1).
	post_chunks() { raw "POST / HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n$1GET /small.txt HTTP/1.1\r\n$h\r\n"; }
	post_chunks '5 ; a = "x;y z" ;b\r\nhello\r\n0\r\nX-T: 1\r\nY:\r\n\r\n'
	[ "$(statuses)" = "200 200 " ] || fail "chunk extensions: $(statuses)"
	grep -q '^received 5 bytes' "$tmp/got" || fail "chunk extensions: body"
	for bad in '5;a\rb' '5;a=' '5;=b' '5;a="b' '5;a b' '5 x' '5;a=\001' '5 ' '5;a ' '5;a="b" '; do
		post_chunks "$bad\r\nhello\r\n0\r\n\r\n"
		[ "$(statuses)" = "400 " ] || fail "chunk extension '$bad': $(statuses)"
	done
	for bad in 'No colon' 'X-T: a\rb' 'X T: 1' ': 1'; do
		post_chunks "5\r\nhello\r\n0\r\n$bad\r\n\r\n"
		[ "$(statuses)" = "400 " ] || fail "trailer '$bad': $(statuses)"
	done
	# Lines of 100 bytes, each within the limit, 9000 bytes in all.
	line="X-Pad: $(head -c 92 /dev/zero | tr '\0' a)\r\n"
	post_chunks "5\r\nhello\r\n0\r\n$(for i in $(seq 90); do printf '%s' "$line"; done)\r\n"
	[ "$(statuses)" = "431 " ] || fail "9000-byte trailer: $(statuses)"

	# Too large: a head over 8 KiB, a body over -b, declared or chunked.
	pad=$(head -c 9000 /dev/zero | tr '\0' a)
	raw "GET / HTTP/1.1\r\n${h}X-Pad: $pad\r\n\r\n"
	[ "$(statuses)" = "431 " ] || fail "9000-byte header: $(statuses)"
	raw "POST / HTTP/1.1\r\n${h}Content-Length: 99999999\r\n\r\n"
	[ "$(statuses)" = "413 " ] || fail "huge Content-Length: $(statuses)"
	raw "POST / HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n500000\r\n"
	[ "$(statuses)" = "413 " ] || fail "huge chunk: $(statuses)"

	# A head still unfinished after -t 1 second: 408.
	{ printf 'GET /small.txt HTTP/1.1\r\n'; sleep 1.5; } |
		nc -N 127.0.0.1 "$port" >"$tmp/got"
	[ "$(statuses)" = "408 " ] || fail "slow head: $(statuses)"
else
	echo "note: nc with -N not found, raw-socket checks skipped"
fi

# SIGTERM while a slow client downloads: the reply is finished first.
curl -sS --limit-rate 20M -o "$tmp/got" "$url/big.bin" &
curl_pid=$!
sleep 0.3
stop_server
wait "$curl_pid" || fail "download cut short by SIGTERM"
cmp "$tmp/www/big.bin" "$tmp/got" || fail "download differs after SIGTERM"
[ -s "$tmp/err" ] && fail "server complained: $(cat "$tmp/err")"

echo "sample-http: all checks passed"
