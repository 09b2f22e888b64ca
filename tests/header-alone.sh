#!/bin/sh
# include/evchat.h compiles on its own, first and twice (the include guard),
# with strict warnings as errors: as C99 and C11 with -pedantic and the
# prototype warnings a careful program turns on, and as C++ (98, 11, 17),
# where the extern "C" block must hold. A program's own -Werror must never
# trip over our header. Skips (77) the C++ part, saying so, without a C++
# compiler.
set -u
top_srcdir=${top_srcdir:-.}
cc=${CC:-cc}
cxx=${CXX:-c++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/alone.c" <<'SRC'
#include <evchat.h>
#include <evchat.h>

enum evchat_term alone_kind(const struct evchat *chat);

enum evchat_term alone_kind(const struct evchat *chat)
{
	return evchat_get_terminator(chat, NULL, NULL, NULL);
}
SRC
cp "$tmp/alone.c" "$tmp/alone.cc"

status=0
try() {
	# shellcheck disable=SC2086 # the compiler and flags are words
	if $1 $2 -Wall -Wextra -Werror -pedantic -I"$top_srcdir/include" \
		${LIBEVENT_CFLAGS:-} -c "$3" -o "$tmp/alone.o" 2>"$tmp/err"; then
		echo "ok: $1 $2"
	else
		echo "FAIL: $1 $2:"
		cat "$tmp/err"
		status=1
	fi
}
for std in c99 c11; do
	try "$cc" "-std=$std -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
-Wcast-align -Wpointer-arith -Wvla" "$tmp/alone.c"
done
# shellcheck disable=SC2086
if ! $cxx --version >/dev/null 2>&1; then
	echo "SKIP: no C++ compiler ($cxx)"
	[ "$status" -eq 0 ] && exit 77
	exit "$status"
fi
for std in c++98 c++11 c++17; do
	try "$cxx" "-std=$std -Wshadow" "$tmp/alone.cc"
done
exit "$status"
