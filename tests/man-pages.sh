#!/bin/sh
# The man pages: mandoc -T lint finds nothing at warning level or above in
# any of them, and together they document exactly the functions
# include/evchat.h declares (each is a page's own name or one of its .Nm
# links), so a new function without a page, or a page left over from a
# removed one, fails. Every page in man/ must be installed (MAN3_PAGES,
# from Makefile.am). Skips (77) without mandoc; CI requires a PASS.
set -u
top_srcdir=${top_srcdir:-.}
pages=${MAN3_PAGES:?MAN3_PAGES: the man pages Makefile.am installs}
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
# shellcheck disable=SC2086 # a list of words
for page in $pages; do echo "$page"; done | sort >"$tmp/listed"
(cd "$top_srcdir" && ls man/*.3) | sort >"$tmp/present"
if ! cmp -s "$tmp/listed" "$tmp/present"; then
	echo "man pages in man/ but not installed (>) or listed but missing (<):"
	diff "$tmp/listed" "$tmp/present" | grep '^[<>]'
	status=1
fi

# shellcheck disable=SC2086
sh "$top_srcdir/tests/header-functions.sh" "$top_srcdir/include/evchat.h" \
	"${CC:-cc}" ${LIBEVENT_CFLAGS:-} >"$tmp/declared" ||
	fail "could not list the header's functions"
# shellcheck disable=SC2086
{
	for page in $pages; do
		name=$(basename "$page" .3)
		[ "$name" = evchat ] || echo "$name"
	done
	sh "$top_srcdir/man/links.sh" "$top_srcdir" $pages | cut -d' ' -f2
} | sort >"$tmp/documented"
if ! cmp -s "$tmp/declared" "$tmp/documented"; then
	echo "declared without a man page (<), or documented but not declared (>):"
	diff "$tmp/declared" "$tmp/documented" | grep '^[<>]'
	status=1
fi

if ! command -v mandoc >/dev/null 2>&1; then
	echo "SKIP: mandoc not installed, pages not linted"
	[ "$status" -eq 0 ] && exit 77
	exit "$status"
fi
# -W warning: report warnings and worse, and exit non-zero for them.
# shellcheck disable=SC2086
(cd "$top_srcdir" && mandoc -T lint -W warning $pages) || {
	echo "FAIL: mandoc -T lint found the problems above"
	status=1
}
[ "$status" -eq 0 ] &&
	echo "PASS: $(wc -l <"$tmp/declared") functions documented; pages lint clean"
exit "$status"
