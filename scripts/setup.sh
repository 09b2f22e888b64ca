#!/bin/sh
# Prepares a checkout: installs the Debian packages evchat needs (as root,
# or through sudo), then configures and builds it out of tree in ./build.
# Extra arguments go to configure, e.g. scripts/setup.sh --enable-werror
set -eu
cd "$(dirname "$0")/.."

packages="build-essential autoconf automake libtool pkg-config libevent-dev libssl-dev
check python3 netcat-openbsd mandoc"
missing=
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "setup: installing$missing"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
		--no-install-recommends $missing
fi

autoreconf -fi
mkdir -p build
cd build
../configure "$@"
make -j"$(nproc)"
