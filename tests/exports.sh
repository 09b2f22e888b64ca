#!/bin/sh
# The shared library exports exactly the functions include/evchat.h
# declares: nothing more (an internal symbol a program could come to
# depend on, or clash with), nothing less (a declared function missing
# EVCHAT_EXPORT, or not defined at all, fails only when a program links).
# Skips (77) when shared libraries are not built or nm is missing.
set -u
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
la="$top_builddir/lib/libevchat.la"
fail() { echo "FAIL: $*"; exit 1; }

dlname=$(sed -n "s/^dlname='\(.*\)'$/\1/p" "$la")
[ -n "$dlname" ] || { echo "SKIP: no shared library (--disable-shared)"; exit 77; }
so="$top_builddir/lib/.libs/$dlname"
nm=${NM:-nm}
command -v "${nm%% *}" >/dev/null 2>&1 || { echo "SKIP: $nm not found"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck disable=SC2086 # CPPFLAGS are words
sh "$top_srcdir/tests/header-functions.sh" "$top_srcdir/include/evchat.h" \
	"${CC:-cc}" ${LIBEVENT_CFLAGS:-} >"$tmp/declared" ||
	fail "could not list the header's functions"
[ -s "$tmp/declared" ] || fail "found no function in the header"
# Every defined dynamic symbol, whatever its kind (functions, data, weak).
$nm -D --defined-only "$so" >"$tmp/nm" || fail "$nm -D $so failed"
awk 'NF >= 3 { print $3 }' "$tmp/nm" | sed 's/@.*//' | sort -u >"$tmp/exported"

comm -13 "$tmp/declared" "$tmp/exported" >"$tmp/extra"
comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/missing"
status=0
if [ -s "$tmp/extra" ]; then
	echo "exported but not declared in evchat.h:"
	sed 's/^/  /' "$tmp/extra"
	status=1
fi
if [ -s "$tmp/missing" ]; then
	echo "declared in evchat.h but not exported:"
	sed 's/^/  /' "$tmp/missing"
	status=1
fi
[ "$status" -eq 0 ] &&
	echo "PASS: $(wc -l <"$tmp/declared") functions, declared and exported alike"
exit "$status"
