#!/bin/sh
# Prints the functions include/evchat.h declares, one per line, sorted.
# Shared by the export and man page tests (sourced or run). The header goes
# through the preprocessor, so comments and the examples in them are gone,
# and each declaration is then one statement ending in ';': its name is
# the evchat_ identifier right before the first '('. Typedefs are skipped
# (a callback type's name is followed by ')', not '('), as is anything
# static (an inline helper is not a symbol).
# Usage: header-functions.sh HEADER [CC [CPPFLAGS...]]
set -eu
header=$1
shift
cc=${1:-${CC:-cc}}
[ $# -gt 0 ] && shift
# The flags are words; each of ; { } becomes a newline.
# shellcheck disable=SC2086,SC2020
$cc -E -P -I"$(dirname "$header")" "$@" "$header" |
	tr '\n' ' ' | tr ';{}' '\n\n\n' |
	grep -v -e '^[[:space:]]*typedef' -e '^[[:space:]]*static' |
	sed -n 's/^[^(]*[^[:alnum:]_]\(evchat_[[:alnum:]_]*\)[[:space:]]*(.*/\1/p' |
	sort -u
