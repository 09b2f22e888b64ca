#!/bin/sh
# The WebSocket sample against a real client (Python's websockets library,
# Debian's python3-websockets) and curl: messages of every length class
# come back intact, text and binary, fragmented or not, from many clients
# at once; pings are answered; a message over the limit gets close code
# 1009. Raw frames check what a library client will not send: reserved
# bits, an unmasked frame and a long ping are refused (1002) from their
# header alone, text that is not UTF-8 gets 1007, a frame dripped a byte
# at a time still comes back, a close is returned with its code. A request
# that is no WebSocket handshake gets 400, the wrong version 426. SIGTERM
# sends open clients 1001 and ends the server with status 0.
set -u
builddir=${top_builddir:-.}
server_bin="$builddir/samples/websocket"
py=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import websockets' 2>/dev/null; then
		py=$p
		break
	fi
done
[ -n "$py" ] || { echo "SKIP: python3-websockets not installed"; exit 77; }
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl not installed"; exit 77; }

. "$(dirname "$0")/sample-lib.sh"

cat >"$tmp/client.py" <<'EOF'
import asyncio, os, socket, struct, sys
import websockets

port = int(sys.argv[2])
url = f"ws://127.0.0.1:{port}/"

def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")

async def echo():
    async with websockets.connect(url, max_size=None) as ws:
        # Each length class: 7-bit, 16-bit and 64-bit lengths, at their
        # edges, in text (two-byte characters) and in binary.
        for n in (0, 1, 125, 126, 127, 65535, 65536, 1 << 20, 5 << 20):
            text = "\u00e9" * (n // 2) + "a" * (n % 2)
            await ws.send(text)
            check(await ws.recv() == text, f"text of {n} bytes")
            data = os.urandom(n)
            await ws.send(data)
            check(await ws.recv() == data, f"binary of {n} bytes")
        # Fragmented: one message back.
        await ws.send(["ab", "", "c\u00e9", "d" * 70000])
        check(await ws.recv() == "abc\u00e9" + "d" * 70000, "fragments")
        await ws.send([b"\x00\x01", b"\xff" * 300])
        check(await ws.recv() == b"\x00\x01" + b"\xff" * 300, "binary fragments")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
    check(ws.close_code == 1000, f"close code {ws.close_code}")

async def one_of_many(i):
    async with websockets.connect(url) as ws:
        for k in range(200):
            msg = f"client {i} message {k} " + "x" * (k * 7)
            await ws.send(msg)
            check(await ws.recv() == msg, f"client {i} message {k}")

async def many():
    await asyncio.gather(*(one_of_many(i) for i in range(20)))

async def too_big():
    for message in ("y" * 200000, ["z" * 60000] * 3):
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(message)
            try:
                await ws.recv()
                check(False, "a message over the limit came back")
            except websockets.ConnectionClosed:
                pass
            check(ws.close_code == 1009, f"over the limit: close code {ws.close_code}")

# Raw frames, over a plain socket.
def handshake():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    # Blanks around the key are not part of it.
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: keep-alive, Upgrade\r\n"
              b"Sec-WebSocket-Key:  dGhlIHNhbXBsZSBub25jZQ== \r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        check(chunk, "handshake: no reply")
        head += chunk
    check(head.startswith(b"HTTP/1.1 101 "), f"handshake: {head!r}")
    # RFC 6455's own example key and its accept value.
    check(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head,
          f"accept key: {head!r}")
    return s

def frame(op, payload, fin=True, mask=True, rsv=0):
    first = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", first, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, m | 126, n)
    else:
        head = struct.pack("!BBQ", first, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

def read_frame(s):
    def exactly(n):
        out = b""
        while len(out) < n:
            chunk = s.recv(n - len(out))
            check(chunk, "connection ended inside a frame")
            out += chunk
        return out
    first, second = exactly(2)
    n = second & 0x7f
    if n == 126:
        n = struct.unpack("!H", exactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exactly(8))[0]
    check(second & 0x80 == 0, "the server masked a frame")
    return first & 0x0f, exactly(n)

def expect_close(s, code, what):
    op, payload = read_frame(s)
    check(op == 8, f"{what}: got opcode {op}, not a close")
    got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    check(got == code, f"{what}: close code {got}, not {code}")
    s.close()

def raw():
    s = handshake()
    s.sendall(frame(1, b"hi", rsv=0x40))
    expect_close(s, 1002, "reserved bit")
    s = handshake()
    s.sendall(frame(2, b"plain", mask=False))
    expect_close(s, 1002, "unmasked frame")
    # Refused from its header: the body is never sent.
    s = handshake()
    s.sendall(frame(9, b"p" * 126)[:4])
    expect_close(s, 1002, "a ping over 125 bytes")
    s = handshake()
    s.sendall(frame(1, b"\xc3\x28 not UTF-8"))
    expect_close(s, 1007, "invalid UTF-8")
    # Checked on the whole message: each fragment alone could pass.
    s = handshake()
    s.sendall(frame(1, b"caf\xc3", fin=False) + frame(0, b"\xa9 ok", fin=False)
              + frame(0, b" \xed\xa0\x80"))
    expect_close(s, 1007, "a surrogate in the last fragment")
    # Close codes: one the protocol reserves, and one too short.
    s = handshake()
    s.sendall(frame(8, struct.pack("!H", 1005)))
    expect_close(s, 1002, "close code 1005")
    s = handshake()
    s.sendall(frame(8, b"\x03"))
    expect_close(s, 1002, "a 1-byte close payload")
    s = handshake()
    s.sendall(frame(1, b"ok") + frame(0, b"orphan continuation"))
    check(read_frame(s) == (1, b"ok"), "the frame before the bad one")
    expect_close(s, 1002, "a continuation of nothing")
    # A frame a byte at a time (header split every way), then a close.
    s = handshake()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in frame(2, bytes(range(200))):
        s.sendall(bytes([b]))
    check(read_frame(s) == (2, bytes(range(200))), "dripped frame")
    s.sendall(frame(8, struct.pack("!H", 1000) + b"bye"))
    expect_close(s, 1000, "client close")

def going_away():
    s = handshake()
    s.sendall(frame(1, b"ready"))
    check(read_frame(s) == (1, b"ready"), "before SIGTERM")
    print("ready", flush=True)
    expect_close(s, 1001, "shutdown")

{"echo": lambda: asyncio.run(echo()), "many": lambda: asyncio.run(many()),
 "too_big": lambda: asyncio.run(too_big()), "raw": raw,
 "going_away": going_away}[sys.argv[1]]()
EOF

client() { "$py" "$tmp/client.py" "$@" || fail "client $1"; }

start_server -m 100000
client too_big "$port"
stop_server

start_server
client echo "$port"
client many "$port"
client raw "$port"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
[ "$code" = 400 ] || fail "a plain GET got $code, not 400"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Upgrade: websocket' \
	-H 'Connection: Upgrade' -H 'Sec-WebSocket-Version: 8' \
	-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "http://127.0.0.1:$port/")
[ "$code" = 426 ] || fail "version 8 got $code, not 426"

# SIGTERM with a client connected: it hears 1001, the server exits 0.
"$py" "$tmp/client.py" going_away "$port" >"$tmp/away" 2>&1 &
away=$!
for _ in $(seq 1 100); do
	grep -q ready "$tmp/away" && break
	sleep 0.05
done
grep -q ready "$tmp/away" || fail "going_away client: $(cat "$tmp/away")"
stop_server
wait "$away" || fail "going_away client: $(cat "$tmp/away")"
echo "PASS: websocket sample with python3-websockets and curl"
