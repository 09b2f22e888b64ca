#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpus, in the programs' formats
(see the comments at the top of fuzz_input.c and fuzz_output.c), so each
interesting path is reached from the first run. The committed corpus is
these seeds plus what fuzzing found, minimised with -merge=1.

    python3 tests/fuzz/seeds.py tests/fuzz/corpus
"""
import os
import sys

# fuzz_input's ops
FEED, FEED_SMALL, STRING, COUNT, NONE, LINE, LENGTH, LIMIT, PAUSE, RESUME, \
    PAUSE_RESUME, EOF, HOOK, DISCARD, CLOSE, FREE = range(16)
LF, CRLF, CRLF_STRICT, NUL = range(4)
CLOSE_P, DISCARD_P, SPLIT_P = range(3)
COLLECT, DEFERRED, AUTOFREE = 1, 2, 4
FOUND_BYTES, FOUND_BOTH = 8, 16  # evchat_setcb_bytes(), evchat_setcb_both()


def feed(data):
    out = b""
    while data:
        chunk, data = data[:255], data[255:]
        out += bytes([FEED, len(chunk)]) + chunk
    return out


def feed_cut(data, cut):
    """The same bytes in pieces of `cut`."""
    return b"".join(feed(data[i:i + cut]) for i in range(0, len(data), cut))


def string(term):
    return bytes([STRING, len(term) - 1]) + term


def count(n):
    return bytes([COUNT, n])


def count_trailer(n, trailer):
    """A count and its trailer (1 to 8 bytes), read from a string op (see
    read_op()): over 4 bytes, the last 4 come after the first ones."""
    if len(trailer) > 4:
        return bytes([STRING, 0xf0 | (len(trailer) - 5)]) + trailer + \
            bytes([n])
    return bytes([STRING, 0xe0 | (len(trailer) - 1)]) + trailer + bytes([n])


def line(eol):
    return bytes([LINE, eol])


def length(preset):
    return bytes([LENGTH, preset])


def length_custom(offset, size_code, flags, adjust, strip):
    return bytes([LENGTH, 0x80, offset | size_code << 2 | flags << 4,
                  adjust & 0xff, strip])


MQTT, WEBSOCKET = range(2)
STRIP_NONE, STRIP_ONE, STRIP_ALL = range(3)


def header(decoder, max_header, strip, twin=False):
    """A header decoder of the fuzzer's: a LENGTH op whose byte is 0xc0 or
    more, then the header limit (1 to 15 as is), the arg (its strip, or
    the same strip behind another arg) and a spare byte. A max_header of
    0 is invalid."""
    return bytes([LENGTH, 0xc0 | decoder, max_header,
                  strip + (3 if twin else 0), 0])


def mqtt(kind, body):
    """An MQTT frame: a type byte, the length in 7-bit groups, the body."""
    n, out = len(body), b""
    while True:
        out += bytes([(n & 0x7f) | (0x80 if n > 0x7f else 0)])
        n >>= 7
        if n == 0:
            return bytes([kind]) + out + body


def limit(n, policy):
    return bytes([LIMIT, n, policy])


def hook(op):
    return bytes([HOOK]) + op


def op(code):
    return bytes([code])


INPUT = {
    "lines-lenient": bytes([0]) + line(CRLF) +
    feed(b"PING\r\nPING\nx\r") + feed(b"\ny\r\r\n") + op(EOF),
    "lines-each-collect": bytes([COLLECT | DEFERRED]) + line(LF) +
    feed_cut(b"a\rb\nc\n\nd", 1) + line(CRLF_STRICT) +
    feed(b"e\r\nf\n\r\r\n") + line(NUL) + feed(b"g\0h\0\0") + op(EOF),
    "http-like": bytes([DEFERRED]) + string(b"\r\n\r\n") +
    hook(count(5)) + hook(string(b"\r\n\r\n")) +
    feed_cut(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nhelloPOST /\r\n\r\n", 7) +
    op(EOF),
    "kmp-overlap": bytes([0]) + string(b"abab") +
    feed_cut(b"aabababaababbabab", 1) + string(b"aab") +
    feed(b"aaab") + op(EOF),
    "count-none-count": bytes([COLLECT]) + op(NONE) + feed(b"xyz") +
    count(0) + count(3) + feed(b"12345") + hook(count(2)) + count(1) +
    feed(b"6789") + op(EOF),
    "length-presets": bytes([0]) + length(0) +
    feed(b"\x03abc\x00\x01z") + length(1) + feed_cut(b"\x00\x02hi\x00\x00", 1) +
    length(3) + feed(b"\x00\x00\x00\x06ok") + length(4) +
    feed(b"TT\x00\x05!") + length(5) + feed(b"t\x01xyz") + op(EOF),
    "length-collect-split": bytes([COLLECT | DEFERRED]) + length(2) +
    limit(3, SPLIT_P) + feed_cut(b"\x05\x00abcde\x01\x00f", 2) + op(EOF),
    "length-same-layout": bytes([0]) + length(1) + feed(b"\x00\x04ab") +
    length(1) + hook(length(1)) + feed(b"cd\x00\x01e"),
    "length-invalid": bytes([0]) + length(9) + feed(b"\x00\x01\x02\x03") +
    feed(b"\x02"),
    "length-huge": bytes([0]) + length(7) + feed(b"\xff" * 8) +
    length(8) + limit(4, DISCARD_P) + feed(b"\x00" * 12),
    "length-custom-bad": bytes([0]) + length_custom(1, 1, 2, 0, 0) +
    length_custom(3, 3, 1, 0xfe, 9) + feed(b"abcdefgh"),
    "limit-discard": bytes([0]) + line(LF) + limit(8, DISCARD_P) +
    feed_cut(b"short\nthis line is too long\nok\n", 5) + op(EOF),
    "limit-discard-eof": bytes([0]) + string(b"\r\n") + limit(3, DISCARD_P) +
    feed(b"abc\r\nabcd\r") + op(EOF),
    "limit-exact": bytes([COLLECT]) + line(LF) + limit(4, CLOSE_P) +
    feed(b"1234\n") + feed_cut(b"abcd\n12345\n", 1),
    "limit-split-collect": bytes([COLLECT]) + string(b"\r\n") +
    limit(4, SPLIT_P) + feed(b"0123456789\r") + feed(b"\nab\r\n"),
    "limit-close": bytes([DEFERRED]) + string(b"\r\n") + limit(6, CLOSE_P) +
    feed(b"abc\r\n0123456\r\n") + op(EOF),
    "limit-lowered": bytes([0]) + string(b"\n") + limit(30, SPLIT_P) +
    feed(b"0123456789") + limit(4, SPLIT_P) + feed(b"ab\nc\n") +
    limit(3, DISCARD_P) + op(NONE) + feed(b"xxxxxx") + string(b"\n") +
    feed(b"\n"),
    "pause-eof-resume": bytes([DEFERRED]) + line(LF) + hook(op(PAUSE)) +
    feed(b"one\ntwo\nthree") + feed(b"\nfour") + op(EOF) + op(RESUME) +
    op(RESUME),
    "pause-discard": bytes([COLLECT]) + line(CRLF) + op(PAUSE) +
    feed(b"a\r\nb\r\n") + op(DISCARD) + op(RESUME) + feed(b"c\r\n"),
    "hook-free": bytes([0]) + line(LF) + hook(op(PAUSE_RESUME)) +
    hook(op(FREE)) + feed(b"a\nb\nc\n"),
    "hook-close": bytes([COLLECT | DEFERRED]) + line(LF) + hook(op(CLOSE)) +
    feed(b"a\nb\nc") + op(EOF),
    "hook-discard": bytes([0]) + string(b";") + hook(op(DISCARD)) +
    feed(b"a;b;c;d") + op(EOF),
    "close-then-eof": bytes([0]) + count(4) + feed(b"ab") + op(CLOSE) +
    feed(b"cd") + op(EOF),
    "autofree-eof": bytes([AUTOFREE]) + line(LF) + feed(b"a\nb") +
    op(PAUSE) + op(EOF) + op(RESUME) + feed(b"ignored"),
    "autofree-too-long": bytes([AUTOFREE | COLLECT | DEFERRED]) +
    string(b"\r\n") + limit(3, CLOSE_P) + hook(op(PAUSE)) +
    feed(b"ok\r\ntoo long\r\n") + op(RESUME),
    "header-mqtt": bytes([0]) + header(MQTT, 5, STRIP_ALL) +
    feed(mqtt(0x30, b"hello") + mqtt(0x40, b"") + mqtt(0x50, b"x" * 200)) +
    feed_cut(mqtt(0x30, b"a" * 130) + mqtt(0x32, b"bc"), 1) + op(EOF),
    "header-mqtt-collect-split": bytes([COLLECT | DEFERRED]) +
    header(MQTT, 5, STRIP_ONE) + limit(4, SPLIT_P) +
    feed_cut(mqtt(0x30, b"0123456789") + mqtt(0x31, b"z"), 3) + op(EOF),
    "header-mqtt-limits": bytes([0]) + header(MQTT, 5, STRIP_NONE) +
    limit(6, DISCARD_P) + feed(mqtt(0x30, b"1234") + mqtt(0x30, b"12345") +
                               mqtt(0x30, b"x" * 130) + mqtt(0x30, b"ok")) +
    limit(3, CLOSE_P) + feed(mqtt(0x30, b"too long")),
    "header-mqtt-invalid": bytes([0]) + header(MQTT, 5, STRIP_ALL) +
    feed(b"\x30\x80\x80\x80") + feed(b"\x80\x01"),
    "header-mqtt-over-limit": bytes([DEFERRED]) + header(MQTT, 3, STRIP_ALL) +
    feed(mqtt(0x30, b"short")) + feed(b"\x30\x80") + feed(b"\x80\x01"),
    "header-mqtt-eof": bytes([COLLECT]) + header(MQTT, 5, STRIP_NONE) +
    feed(mqtt(0x30, b"ab") + b"\x30\x85") + op(EOF),
    "header-websocket": bytes([0]) + header(WEBSOCKET, 14, STRIP_ALL) +
    feed(b"\x81\x03abc" + b"\x82\x83MASKxyz" + b"\x81\x7e\x00\x80" +
         b"y" * 128) + feed_cut(b"\x81\x7e\x00\x7e" + b"z" * 126, 2) +
    feed(b"\x81\x7e\x00\x05hello") + op(EOF),
    "header-websocket-huge": bytes([0]) + header(WEBSOCKET, 14, STRIP_NONE) +
    limit(30, DISCARD_P) + feed(b"\x82\x7f" + b"\xff" * 8 + b"gone") +
    op(DISCARD) + header(WEBSOCKET, 14, STRIP_ONE) + limit(0, CLOSE_P) +
    feed(b"\x82\x7f" + b"\xff" * 7 + b"\xfe" + b"some") + op(EOF),
    "header-websocket-wrap": bytes([0]) + header(WEBSOCKET, 14, STRIP_NONE) +
    limit(30, CLOSE_P) + feed(b"\x81\x01!") +
    feed(b"\x82\x7f" + b"\xff" * 7 + b"\xf6" + b"wraps to 0"),
    "header-same-again": bytes([0]) + header(MQTT, 5, STRIP_ALL) +
    hook(header(MQTT, 5, STRIP_ALL)) + hook(header(MQTT, 5, STRIP_ALL)) +
    feed(b"\x30\x06abc") + header(MQTT, 5, STRIP_ALL) + feed(b"def\x30") +
    header(MQTT, 5, STRIP_ALL) + feed(b"\x01g" + mqtt(0x30, b"h")) +
    header(MQTT, 5, STRIP_ALL, twin=True) + feed(b"\x30") +
    header(MQTT, 4, STRIP_ALL, twin=True) + feed(b"\x02ij") + op(EOF),
    "header-changed-mid-frame": bytes([COLLECT]) +
    header(WEBSOCKET, 14, STRIP_NONE) + feed(b"\x81") + line(LF) +
    feed(b"\x02ab\n") + header(MQTT, 5, STRIP_ONE) + feed(b"\x30\x05ab") +
    header(WEBSOCKET, 14, STRIP_ALL) + feed(b"\x81\x01c") +
    string(b"!") + feed(b"\x30\x01!") + op(EOF),
    "header-hooks": bytes([DEFERRED]) + header(MQTT, 5, STRIP_ALL) +
    hook(count(2)) + hook(header(WEBSOCKET, 14, STRIP_ALL)) +
    hook(op(PAUSE)) + feed(mqtt(0x30, b"ab") + b"cd" + b"\x81\x02ef" +
                           mqtt(0x30, b"gh")) + op(RESUME) + op(EOF),
    "header-bogus": bytes([0]) + header(MQTT, 5, STRIP_NONE) +
    feed(mqtt(0x30, b"ok") + b"\xb1\x01z") + op(EOF),
    "header-limit-1": bytes([COLLECT]) + header(WEBSOCKET, 1, STRIP_NONE) +
    feed(b"\x81") + op(EOF),
    "header-bogus-return": bytes([DEFERRED]) + header(WEBSOCKET, 14,
                                                      STRIP_ALL) +
    feed(b"\x81\x01!\xb3\x00"),
    "header-lent": bytes([FOUND_BYTES]) + header(MQTT, 5, STRIP_ALL) +
    hook(count(1)) + hook(header(MQTT, 5, STRIP_ONE)) +
    feed(mqtt(0x30, b"one") + b"3" + mqtt(0x31, b"four") +
         mqtt(0x32, b"") + b"\x33") +
    feed(b"\x02") + feed(b"ab" + mqtt(0x30, b"c" * 300)) + op(EOF),
    "header-lent-both-split": bytes([FOUND_BOTH | DEFERRED]) +
    header(WEBSOCKET, 14, STRIP_NONE) + limit(5, SPLIT_P) +
    hook(header(WEBSOCKET, 14, STRIP_NONE)) + hook(op(PAUSE_RESUME)) +
    hook(line(LF)) + feed(b"\x81\x03abc\x81\x09123456789\x81\x02") +
    feed(b"xy\x81\x01z\nline\n") + op(EOF),
    "header-invalid-args": bytes([0]) + header(MQTT, 0, STRIP_NONE) +
    bytes([LENGTH, 0xff, 5, 0, 0]) + feed(b"\x30\x01a\n") + op(EOF),
    "header-then-string": bytes([COLLECT]) + length(3) + feed(b"\x00\x00") +
    string(b"\n") + feed(b"x\n") + length(6) + feed(b"\x01\x02") +
    count(0) + op(EOF),
    "trailer-bulks": bytes([DEFERRED]) + line(CRLF_STRICT) +
    hook(count_trailer(5, b"\r\n")) + hook(line(CRLF_STRICT)) +
    hook(count_trailer(0, b"\r\n")) + hook(line(CRLF_STRICT)) +
    hook(count_trailer(3, b"\r\n")) +
    feed_cut(b"$5\r\nhello\r\n$0\r\n\r\n$3\r\nabc\r", 3) +
    feed(b"X\n") + op(EOF),
    "trailer-limits": bytes([COLLECT]) + limit(3, DISCARD_P) +
    count_trailer(5, b"\0") + hook(count_trailer(2, b"ab\0")) +
    hook(limit(1, SPLIT_P)) + hook(count_trailer(4, b"\0")) +
    feed(b"12345\0xyab\0") + feed(b"wxyz\0") + op(EOF),
    "trailer-long": bytes([FOUND_BOTH]) + line(LF) +
    hook(count_trailer(3, b"\r\n.\r\n")) + hook(line(LF)) +
    hook(count_trailer(2, b"-END-")) + hook(line(LF)) +
    feed_cut(b"a\nxyz\r\n.\r\nb\nxy-END", 4) + feed(b"!") + op(EOF),
    "trailer-lent": bytes([FOUND_BYTES]) + count_trailer(3, b"--") +
    hook(count_trailer(2, b"--")) + hook(count_trailer(1, b"--")) +
    hook(op(PAUSE_RESUME)) + feed(b"abc--de--f-") + feed(b"-tail") +
    op(EOF),
}

# fuzz_output's ops and producer steps
PUSH, PUSH_BUFFER, PUSH_LINE, PUSH_FRAME, PRODUCER, O_RESUME, O_DISCARD, \
    O_CLOSE, SHUTDOWN, WATERMARKS, OUT_BUFFER, TERMINATOR, PEER_READ, RUN, \
    O_FREE = range(15)
DATA, END, AGAIN, FAIL, BOGUS, S_PUSH, S_DISCARD, S_CLOSE, S_FREE = range(9)
NSTEPS_CODE = {1: 0, 2: 2, 3: 4, 4: 6}


def push(code, data, small=False):
    return bytes([code, len(data) | (0x80 if small else 0)]) + data


def producer(*steps):
    """steps: (kind, n); a big chunk is n * 64 with kind | 0x80."""
    return bytes([PRODUCER, NSTEPS_CODE[len(steps)]]) + b"".join(
        bytes([k, n]) for k, n in steps)


def peer_limit(i, deferred=False):
    return bytes([(i << 1) | (1 if deferred else 0)])


def o(code, *args):
    return bytes([code]) + bytes(args)


def term_string(s):
    return bytes([TERMINATOR, ((len(s) - 1) << 2)]) + s


def term_line(eol):
    return bytes([TERMINATOR, 1 | (eol << 2)])


def term_length(preset):
    return bytes([TERMINATOR, 2 | (preset << 2)])


OUTPUT = {
    "pushes": peer_limit(0) + push(PUSH, b"hello ") +
    push(PUSH_BUFFER, b"world") + push(PUSH, b"") + o(RUN),
    "producer-then-push": peer_limit(2) + push(PUSH, b"head:") +
    producer((DATA, 5), (DATA, 7), (END, 3)) + push(PUSH, b":tail") +
    o(PEER_READ, 3) + o(PEER_READ, 0),
    "producer-again": peer_limit(3, True) +
    producer((DATA, 4), (AGAIN, 0), (END, 2)) + push(PUSH, b"after") +
    o(RUN) + o(O_RESUME) + o(RUN),
    "producer-fail": peer_limit(0) + push(PUSH, b"ok") +
    producer((DATA, 3), (FAIL, 0)) + push(PUSH, b"lost") + o(RUN) +
    push(PUSH, b"epipe"),
    "producer-bogus": peer_limit(1, True) + producer((BOGUS, 0)) + o(RUN),
    "producer-big": peer_limit(4) + o(OUT_BUFFER, 2) +
    producer((DATA | 0x80, 40), (DATA | 0x80, 40), (END, 1)) +
    o(PEER_READ, 200) + o(PEER_READ, 200) + o(PEER_READ, 0),
    "producer-push-inside": peer_limit(0) +
    producer((S_PUSH, 5), (DATA, 2)) + push(PUSH, b"later") + o(RUN) +
    o(O_RESUME) + o(RUN),
    "producer-discard-inside": peer_limit(2) + push(PUSH, b"0123456789") +
    producer((DATA, 3), (S_DISCARD, 4)) + push(PUSH, b"gone") + o(RUN) +
    push(PUSH, b"kept") + o(RUN),
    "producer-close-inside": peer_limit(0, True) +
    producer((S_CLOSE, 3), (END, 2)) + o(RUN) + push(PUSH, b"epipe"),
    "producer-free-inside": peer_limit(3) + producer((DATA, 1), (S_FREE, 0)) +
    producer((END, 4)) + o(RUN),
    "discard-queue": peer_limit(1) + push(PUSH, b"abcdef") +
    producer((DATA, 9)) + producer((END, 3)) + o(PEER_READ, 1) +
    o(O_DISCARD) + push(PUSH, b"new") + o(RUN),
    "close-when-done": peer_limit(2, True) + push(PUSH, b"bye") +
    producer((END, 6)) + o(O_CLOSE) + push(PUSH, b"x") + o(PEER_READ, 2) +
    o(RUN),
    "shutdown-write": peer_limit(0) + push(PUSH, b"half") + o(SHUTDOWN) +
    o(RUN) + o(O_CLOSE),
    "watermarks": peer_limit(3) + o(WATERMARKS, 1, 2) +
    push(PUSH, b"x" * 40) + o(RUN) + o(PEER_READ, 0) +
    o(WATERMARKS, 3, 1) + o(WATERMARKS, 0, 0) + push(PUSH, b"y" * 20) +
    o(RUN),
    "lines": peer_limit(0) + term_line(1) + push(PUSH_LINE, b"PING") +
    push(PUSH_LINE, b"a\nb") + term_string(b"ab") + push(PUSH_LINE, b"xa") +
    push(PUSH_LINE, b"x") + term_line(2) + push(PUSH_LINE, b"a\r") +
    term_line(3) + push(PUSH_LINE, b"n\0ul"),
    "frames": peer_limit(0) + push(PUSH_FRAME, b"no") + term_length(1) +
    push(PUSH_FRAME, b"payload") + term_length(0) +
    push(PUSH_FRAME, b"x" * 127) + term_length(2) + push(PUSH_FRAME, b"") +
    term_length(5) + push(PUSH_FRAME, b"min") + term_length(6) +
    push(PUSH_FRAME, b"offset"),
    "free": peer_limit(1) + push(PUSH, b"abc") + producer((DATA, 2)) +
    o(O_FREE) + push(PUSH, b"nothing"),
}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus"
    for target, seeds in (("fuzz_input", INPUT), ("fuzz_output", OUTPUT)):
        os.makedirs(os.path.join(root, target), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(root, target, "seed-" + name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
