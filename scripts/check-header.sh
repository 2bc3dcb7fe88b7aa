#!/usr/bin/env bash
# The public header compiles warning-free as C99 and C11 (gcc, clang) and C++17 (g++, clang++),
# and is what the generator makes from the current sources.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/gen-header.py --check
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include "utilbot_gateway.h"\nint main(void) { ubg_event_t e; e.size = sizeof e; (void)e; return ubg_version() == 0; }\n' >"$tmp/c.c"
cp "$tmp/c.c" "$tmp/cxx.cpp"
flags=(-Wall -Wextra -Werror -pedantic -Iinclude -fsyntax-only)
for cc in gcc clang; do
    for std in c99 c11; do
        "$cc" "${flags[@]}" -std="$std" "$tmp/c.c"
        echo "check-header: $cc -std=$std ok"
    done
done
for cxx in g++ clang++; do
    "$cxx" "${flags[@]}" -std=c++17 "$tmp/cxx.cpp"
    echo "check-header: $cxx -std=c++17 ok"
done
