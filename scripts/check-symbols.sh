#!/usr/bin/env bash
# The shared library exports exactly the functions the public header declares (curl's
# test1119 idea) and needs no Swift runtime library at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
so=${1:-.build/release/libutilbot_gateway.so}
[ -f "$so" ] || { echo "check-symbols: $so not found: run make release" >&2; exit 1; }
# Names without their version (ubg_x@@UBG_0), and without the version node's own symbol.
exported=$(nm -D -g --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' | grep '^ubg_' | sort)
unversioned=$(nm -D -g --defined-only "$so" | awk '{print $3}' | grep '^ubg_' | grep -v '@@UBG_' || true)
if [ -n "$unversioned" ]; then
    echo "check-symbols: exported without a version node (scripts/exports.map): $unversioned" >&2
    exit 1
fi
declared=$(grep -oE '^UBG_API .*\b(ubg_[a-z0-9_]+)\(' include/utilbot_gateway.h | grep -oE 'ubg_[a-z0-9_]+\($' | tr -d '(' | sort)
if [ "$exported" != "$declared" ]; then
    echo "check-symbols: exported symbols differ from the header's functions:" >&2
    diff <(echo "$declared") <(echo "$exported") >&2 || true
    exit 1
fi
echo "check-symbols: $(echo "$exported" | wc -l) exported symbols, all declared in the header and vice versa"
if ldd "$so" | grep -q 'libswift'; then
    echo "check-symbols: $so links a Swift runtime library dynamically:" >&2
    ldd "$so" >&2
    exit 1
fi
echo "check-symbols: no libswift* dependency ($(ldd "$so" | awk '{print $1}' | tr '\n' ' '))"
