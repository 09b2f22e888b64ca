#!/usr/bin/env python3
"""Runs Python's own asynchat as the reference for evchat's framing.

Used by tests/check_oracle.c, which feeds the same cases to evchat and
compares. Works with any Python 3 that still ships asynchat (3.11 and
older; it was removed in 3.12, and check_oracle skips then).

Input (stdin): one case per line, as JSON:
    {"chunks": ["6162", "0d0a"], "terms": ["0d0a", 5, null]}
  chunks  the bytes the peer sends, as hex strings, one recv() each
          (each non-empty)
  terms   the terminators in the order they are set: a hex string is a
          string terminator (never empty), an integer a byte count (>= 1),
          null is None. terms[0] is set before any byte arrives; the i-th
          found_terminator() (i = 1, 2, ...) sets terms[i % len(terms)], so
          the list repeats from its start once used up.

Count 0 and the empty string are left out on purpose: asynchat takes both
as "no terminator", where evchat differs (see evchat.h).

Output (stdout): one line per case, space-separated tokens:
    <nframes> <frame 1> ... <frame n> <residue>
  each frame and the residue as lowercase hex, or "-" when empty. The
  residue is every byte that is in no frame once all chunks were read: the
  bytes collected for the unfinished frame followed by ac_in_buffer (which
  holds a partially matched terminator). evchat keeps exactly these at end
  of stream, where asynchat would drop the partial terminator.
"""

import json
import sys
import warnings

# asynchat and asyncore warn on import (deprecated since 3.6).
warnings.simplefilter("ignore", DeprecationWarning)

import asynchat  # noqa: E402


def decode_term(term):
    if term is None:
        return None
    if isinstance(term, int):
        if term < 1:
            raise ValueError("count terminators must be >= 1")
        return term
    data = bytes.fromhex(term)
    if not data:
        raise ValueError("string terminators must not be empty")
    return data


class Oracle(asynchat.async_chat):
    """A socketless channel fed from a list of chunks."""

    def __init__(self, chunks, terms):
        # map={} keeps the channel out of asyncore's global socket map.
        asynchat.async_chat.__init__(self, sock=None, map={})
        self.chunks = list(chunks)
        self.terms = terms
        self.nfound = 0
        self.frames = []
        self.set_terminator(terms[0])

    def recv(self, buffer_size):
        chunk = self.chunks.pop(0)
        assert len(chunk) <= buffer_size
        return chunk

    def collect_incoming_data(self, data):
        self._collect_incoming_data(data)

    def found_terminator(self):
        self.frames.append(self._get_data())
        self.nfound += 1
        self.set_terminator(self.terms[self.nfound % len(self.terms)])

    def run(self):
        while self.chunks:
            self.handle_read()
        residue = b"".join(self.incoming) + self.ac_in_buffer
        return self.frames, residue


def hex_token(data):
    return data.hex() if data else "-"


def main():
    out = []
    for lineno, line in enumerate(sys.stdin, 1):
        line = line.strip()
        if not line:
            continue
        case = json.loads(line)
        chunks = [bytes.fromhex(c) for c in case["chunks"]]
        if any(not c for c in chunks):
            raise ValueError("line %d: empty chunk" % lineno)
        terms = [decode_term(t) for t in case["terms"]]
        if not terms:
            raise ValueError("line %d: no terminators" % lineno)
        frames, residue = Oracle(chunks, terms).run()
        tokens = [str(len(frames))]
        tokens.extend(hex_token(f) for f in frames)
        tokens.append(hex_token(residue))
        out.append(" ".join(tokens))
    sys.stdout.write("".join(s + "\n" for s in out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
