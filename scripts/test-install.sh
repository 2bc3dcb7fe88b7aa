#!/usr/bin/env bash
# The install as a C user meets it: `make install` into a temporary PREFIX, then
# examples/c/bot.c built with nothing but `pkg-config --cflags --libs utilbot-gateway`, and a
# small CMake project with nothing but find_package(UtilbotGateway); both run against the dev
# gateway over TLS. Also: the SONAME and its links, the symbol version node, a DESTDIR stage that
# writes nothing outside it, and an uninstall that leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=$root/.venv/bin/python3
die() { echo "test-install: $*" >&2; exit 1; }
command -v pkg-config >/dev/null || die "pkg-config is missing: run make bootstrap"
command -v cmake >/dev/null || die "cmake is missing: run make bootstrap"

work=$(mktemp -d /tmp/ubg-install-XXXXXX)
coproc_pid=
cleanup() {
    [ -n "$coproc_pid" ] && { kill "$coproc_pid" 2>/dev/null || true; wait "$coproc_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT

header=Sources/UtilbotGatewayTypes/include/utilbot_gateway_types.h
major=$(sed -n 's/^#define UBG_VERSION_MAJOR \([0-9]*\)$/\1/p' "$header")
version=$(sed -n 's/^#define UBG_VERSION_STRING "\(.*\)"$/\1/p' "$header")

# A staged install writes only under DESTDIR, and uninstall removes all of it.
DESTDIR=$work/stage PREFIX=/opt/ubg scripts/install.sh install >/dev/null
outside=$(find "$work/stage" -mindepth 1 -maxdepth 1 ! -name opt)
[ -z "$outside" ] || die "the staged install wrote outside PREFIX: $outside"
grep -q "^prefix=/opt/ubg$" "$work/stage/opt/ubg/lib/pkgconfig/utilbot-gateway.pc" || die "the staged .pc names the wrong prefix"
DESTDIR=$work/stage PREFIX=/opt/ubg scripts/install.sh uninstall >/dev/null
left=$(find "$work/stage" -type f -o -type l)
[ -z "$left" ] || die "uninstall left: $left"
echo "test-install: DESTDIR stage ok, uninstall leaves nothing"

prefix=$work/prefix
PREFIX=$prefix scripts/install.sh install
lib=$prefix/lib
[ "$(readlink "$lib/libutilbot_gateway.so")" = "libutilbot_gateway.so.$major" ] || die "bad .so link"
[ "$(readlink "$lib/libutilbot_gateway.so.$major")" = "libutilbot_gateway.so.$version" ] || die "bad .so.$major link"
soname=$(readelf -d "$lib/libutilbot_gateway.so.$version" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libutilbot_gateway.so.$major" ] || die "SONAME is '$soname'"
echo "test-install: readelf -d: SONAME $soname"
nodes=$(objdump -T "$lib/libutilbot_gateway.so.$version" | grep ' ubg_' | grep -oE ' UBG_[0-9.]+ ' | sort -u | tr -d ' ' | tr '\n' ' ')
[ "$nodes" = "UBG_$major " ] || die "the ubg_ symbols carry version nodes '$nodes', expected UBG_$major"
echo "test-install: every ubg_ symbol is in version node UBG_$major"

# The CLI runs without the Swift toolchain: its runtime is linked in.
if ldd "$prefix/bin/utilbot-gateway" | grep -q libswift; then die "the installed CLI needs a Swift runtime library"; fi
env -u LD_LIBRARY_PATH "$prefix/bin/utilbot-gateway" --help | grep -q "usage: utilbot-gateway connect" || die "the CLI does not run"

export PKG_CONFIG_PATH=$lib/pkgconfig
flags=$(pkg-config --cflags --libs utilbot-gateway)
echo "test-install: pkg-config --cflags --libs utilbot-gateway: $flags"
[ "$(pkg-config --modversion utilbot-gateway)" = "$version" ] || die "pkg-config --modversion is not $version"
cc -std=c99 -Wall -Wextra -Werror examples/c/bot.c $flags -lpthread -o "$work/bot-pkgconfig"
c++ -std=c++17 -Wall -Wextra -Werror examples/cpp/bot.cpp $flags -lpthread -o "$work/bot-cpp-pkgconfig"
needed=$(readelf -d "$work/bot-pkgconfig" | sed -n 's/.*NEEDED.*\[\(libutilbot_gateway[^]]*\)\]/\1/p')
[ "$needed" = "libutilbot_gateway.so.$major" ] || die "the program needs '$needed', not the SONAME"

mkdir -p "$work/cmake"
cat > "$work/cmake/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(ubg_consumer C)
find_package(UtilbotGateway $version REQUIRED)
add_executable(bot "$root/examples/c/bot.c")
target_link_libraries(bot PRIVATE UtilbotGateway::utilbot_gateway pthread)
CMAKE
cmake -S "$work/cmake" -B "$work/cmake/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake/build" >/dev/null
echo "test-install: find_package(UtilbotGateway $version) built the example"
# A request for the next major version must not be satisfied by this one.
mkdir -p "$work/cmake-next"
sed "s/find_package(UtilbotGateway $version REQUIRED)/find_package(UtilbotGateway $((major + 1)).0 REQUIRED)/" \
    "$work/cmake/CMakeLists.txt" > "$work/cmake-next/CMakeLists.txt"
if cmake -S "$work/cmake-next" -B "$work/cmake-next/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
    die "find_package accepted a request for major version $((major + 1))"
fi

coproc GATEWAY { PYTHONPATH=bindings/python exec "$python" -m utilbot_gateway.devserver --tls --heartbeat 5000 --key demo-key; }
coproc_pid=$GATEWAY_PID
read -r -t 30 announcement <&"${GATEWAY[0]}" || die "the dev gateway did not start"
url=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["url"])' "$announcement")
ca=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["ca"])' "$announcement")
for bot in "$work/bot-pkgconfig" "$work/bot-cpp-pkgconfig" "$work/cmake/build/bot"; do
    resolved=$(LD_LIBRARY_PATH=$lib ldd "$bot" | awk '/libutilbot_gateway/ {print $1, $3}')
    echo "test-install: ldd: $resolved"
    case "$resolved" in "libutilbot_gateway.so.$major $lib/libutilbot_gateway.so.$major") ;; *) die "ldd: $resolved" ;; esac
    LD_LIBRARY_PATH=$lib timeout 60 "$bot" "${url}?v=1" demo-key "$ca" > "$work/bot.log" 2>&1 || { cat "$work/bot.log" >&2; die "$bot failed"; }
    echo "test-install: $(basename "$bot") ran against the dev gateway"
done

PREFIX=$prefix scripts/install.sh uninstall >/dev/null
left=$(find "$prefix" -type f -o -type l)
[ -z "$left" ] || die "uninstall left: $left"
echo "test-install: ok"
