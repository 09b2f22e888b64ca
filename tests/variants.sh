#!/bin/sh
# The suites about framing, run again with each harness channel's frames
# going to a found_bytes hook (evchat_setcb_bytes()) instead of the
# evbuffer one: whichever hook a user picks, the frames must be the same.
set -e
bin="${top_builddir:-.}/tests/check_evchat"
[ -x "$bin" ] || { echo "no $bin: build it with make check"; exit 99; }
export EVCHAT_TEST_FOUND_BYTES=1
for suite in framing lines length limits pause mixed reentrancy lifecycle; do
	CK_RUN_SUITE=$suite "$bin"
done
