#!/bin/sh
# Builds tests/consumer/consumer.c outside the tree against a staged
# 'make install DESTDIR=...', the ways users do, and runs each program
# (it must receive its line over a socketpair and exit 0):
#   1. pkg-config --cflags --libs libevchat        (shared)
#   2. pkg-config --static --cflags --libs, -static (libevchat.a and the
#      .pc file's private dependencies: libevent, OpenSSL if configured)
#   3. CMake, pkg_check_modules(IMPORTED_TARGET), shared
#   4. CMake, static (EVCHAT_STATIC=ON)
# CMake steps skip, saying so, without cmake.
# Usage: tests/consumer/run.sh BUILDDIR   (a configured and built tree)
set -eu
builddir=$(cd "${1:?usage: run.sh BUILDDIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

stage="$tmp/stage"
make -C "$builddir" install DESTDIR="$stage" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install DESTDIR=$stage"; }
pc=$(find "$stage" -name libevchat.pc | head -n 1)
[ -n "$pc" ] || fail "no libevchat.pc installed"
# The stage becomes a sysroot: pkg-config puts $stage before every -I and
# -L, ours and those of the libraries evchat requires (libevent, OpenSSL),
# so the system's own directories are linked into it, as a cross build's
# sysroot holds the system's libraries beside the staged ones. CMake
# rejects an imported target whose include directory does not exist.
for d in usr/include usr/lib; do
	[ -e "$stage/$d" ] || ln -s "/$d" "$stage/$d"
done
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$stage
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
# pkgconf puts the sysroot before the variable already; pkg-config does not.
libdir=$(pkg-config --variable=libdir libevchat)
case $libdir in "$stage"/*) ;; *) libdir="$stage$libdir" ;; esac

# The .pc file's version is the one the installed header declares.
header=$(find "$stage" -name evchat.h | head -n 1)
hversion=$(sed -n 's/^#define EVCHAT_VERSION_STRING "\(.*\)"$/\1/p' "$header")
[ "$(pkg-config --modversion libevchat)" = "$hversion" ] ||
	fail "pkg-config says $(pkg-config --modversion libevchat), evchat.h says $hversion"

echo "== shared, with pkg-config"
# shellcheck disable=SC2046 # pkg-config prints words
$cc -Wall -Wextra -Werror -o "$tmp/consumer-shared" "$here/consumer.c" \
	$(pkg-config --cflags --libs libevchat)
LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer-shared" | grep -q "$libdir/libevchat" ||
	fail "the shared consumer does not use the staged libevchat"
LD_LIBRARY_PATH=$libdir "$tmp/consumer-shared"

echo "== static, with pkg-config --static"
# shellcheck disable=SC2046
$cc -Wall -Wextra -Werror -static -o "$tmp/consumer-static" \
	"$here/consumer.c" $(pkg-config --static --cflags --libs libevchat) \
	2>"$tmp/static.err" || { cat "$tmp/static.err"; fail "static link"; }
# glibc warns that getaddrinfo in a static program needs the shared
# libraries at run time; only other messages matter.
grep -v -e 'statically linked applications requires at runtime' \
	-e 'in function' "$tmp/static.err" || true
if ldd "$tmp/consumer-static" >/dev/null 2>&1; then
	fail "the static consumer is dynamically linked"
fi
"$tmp/consumer-static"

if ! command -v cmake >/dev/null 2>&1; then
	echo "SKIP: cmake not installed, CMake consumer not tried"
	exit 0
fi
for kind in shared static; do
	echo "== $kind, with CMake pkg_check_modules(IMPORTED_TARGET)"
	static=OFF
	[ "$kind" = static ] && static=ON
	CC=$cc cmake -S "$here" -B "$tmp/cmake-$kind" -DEVCHAT_STATIC=$static \
		>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "cmake"; }
	cmake --build "$tmp/cmake-$kind" >"$tmp/cmake.log" 2>&1 ||
		{ cat "$tmp/cmake.log"; fail "cmake --build ($kind)"; }
	# No LD_LIBRARY_PATH: the imported target's full library path gives
	# the build tree's program an RPATH to the staged library.
	if [ "$kind" = shared ]; then
		ldd "$tmp/cmake-$kind/consumer" | grep -q "$libdir/libevchat" ||
			fail "the CMake consumer does not use the staged libevchat"
	fi
	"$tmp/cmake-$kind/consumer"
done
echo "PASS: the installed evchat builds and talks, shared and static"
