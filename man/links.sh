#!/bin/sh
# Prints "PAGE LINK" for each function a man page documents besides its
# own name: every .Nm of its NAME section. make install links LINK.3 to
# PAGE.3 so that 'man evchat_free' finds evchat_new(3); make uninstall
# removes the links. The pages are the only list, so a function added to
# a page's NAME gets its link without editing the Makefile.
# Usage: links.sh SRCDIR PAGE.3...
set -eu
srcdir=$1
shift
for page in "$@"; do
	name=$(basename "$page" .3)
	sed -n '/^\.Sh NAME/,/^\.Sh /s/^\.Nm \([[:alnum:]_]*\).*/\1/p' \
		"$srcdir/$page" |
		while read -r link; do
			[ "$link" = "$name" ] || echo "$name $link"
		done
done
