#!/bin/sh
# The suites about framing, run again on the channel's other paths: each
# harness channel's frames going to a found_bytes hook
# (evchat_setcb_bytes()) instead of the evbuffer one, then to both
# (evchat_setcb_both()), then with the direct read and write options on
# every harness channel, with each of the three. Whichever path a user
# picks, the frames must be the same.
set -e
bin="${top_builddir:-.}/tests/check_evchat"
[ -x "$bin" ] || { echo "no $bin: build it with make check"; exit 99; }
suites="framing trailer lines length limits pause mixed reentrancy lifecycle"
# These runs check frames, not speed: under a sanitizer on a busy machine
# the random-chunking cases outlast their usual timeout.
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
export CK_TIMEOUT_MULTIPLIER
for suite in $suites; do
	EVCHAT_TEST_FOUND_BYTES=1 CK_RUN_SUITE=$suite "$bin"
done
# Both hooks (evchat_setcb_both()): frames split between them by how
# they arrived.
for suite in $suites; do
	EVCHAT_TEST_FOUND_BOTH=1 CK_RUN_SUITE=$suite "$bin"
done
# EVCHAT_OPT_DIRECT_WRITE | EVCHAT_OPT_DIRECT_READ, with each hook: a
# direct read's frames are lent or copied from where the read put them,
# and every hook there may change, pause, discard or free.
for suite in $suites; do
	EVCHAT_TEST_CHAT_FLAGS=6 CK_RUN_SUITE=$suite "$bin"
	EVCHAT_TEST_CHAT_FLAGS=6 EVCHAT_TEST_FOUND_BYTES=1 \
		CK_RUN_SUITE=$suite "$bin"
	EVCHAT_TEST_CHAT_FLAGS=6 EVCHAT_TEST_FOUND_BOTH=1 \
		CK_RUN_SUITE=$suite "$bin"
done
# Header decoders run their frame, bytes and collect modes themselves;
# the direct read (frames cut where the read put them) and both hooks are
# the paths left, taken together.
EVCHAT_TEST_CHAT_FLAGS=6 EVCHAT_TEST_FOUND_BOTH=1 CK_RUN_SUITE=header "$bin"
