#!/usr/bin/env bash
# Installs (or uninstalls) the C library the way C libraries ship, under PREFIX (default
# /usr/local), staged under DESTDIR when set; writes nothing elsewhere:
#   PREFIX/include/utilbot_gateway.h, PREFIX/include/utilbot/gateway.hpp (the C++ wrapper)
#   LIBDIR/libutilbot_gateway.so.X.Y.Z (stripped; SONAME libutilbot_gateway.so.X), the .so.X and .so links
#   LIBDIR/pkgconfig/utilbot-gateway.pc
#   LIBDIR/cmake/UtilbotGateway/UtilbotGatewayConfig.cmake, UtilbotGatewayConfigVersion.cmake
#   PREFIX/bin/utilbot-gateway (the command-line client)
# LIBDIR defaults to PREFIX/lib. Usage: scripts/install.sh install|uninstall (make install does the
# builds first).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "install: $*" >&2; exit 1; }

action=${1:-}
PREFIX=${PREFIX:-/usr/local}
LIBDIR=${LIBDIR:-$PREFIX/lib}
DESTDIR=${DESTDIR:-}
case "$PREFIX" in /*) ;; *) die "PREFIX must be an absolute path, not '$PREFIX'" ;; esac
case "$LIBDIR" in "$PREFIX"/*) ;; *) die "LIBDIR ($LIBDIR) must be under PREFIX ($PREFIX)" ;; esac

header=Sources/UtilbotGatewayTypes/include/utilbot_gateway_types.h
part() { sed -n "s/^#define UBG_VERSION_$1 \([0-9]*\)$/\1/p" "$header"; }
major=$(part MAJOR)
version=$major.$(part MINOR).$(part PATCH)
[ -n "$major" ] || die "no version macros in $header"
libdir_relative=${LIBDIR#"$PREFIX"/}
# From LIBDIR/cmake/UtilbotGateway back to PREFIX: two levels, plus one per level of LIBDIR.
up=../..
IFS=/ read -ra levels <<< "$libdir_relative"
for _ in "${levels[@]}"; do up=$up/..; done

root=$DESTDIR$PREFIX
lib=$DESTDIR$LIBDIR
files=(
    "$root/include/utilbot_gateway.h"
    "$root/include/utilbot/gateway.hpp"
    "$lib/libutilbot_gateway.so.$version"
    "$lib/libutilbot_gateway.so.$major"
    "$lib/libutilbot_gateway.so"
    "$lib/pkgconfig/utilbot-gateway.pc"
    "$lib/cmake/UtilbotGateway/UtilbotGatewayConfig.cmake"
    "$lib/cmake/UtilbotGateway/UtilbotGatewayConfigVersion.cmake"
    "$root/bin/utilbot-gateway"
)

fill() {
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LIBDIR@|$LIBDIR|g" -e "s|@VERSION@|$version|g" \
        -e "s|@VERSION_MAJOR@|$major|g" -e "s|@LIBDIR_RELATIVE@|$libdir_relative|g" \
        -e "s|@PREFIX_FROM_CMAKE_DIR@|$up|g" "$1" > "$2"
}

case "$action" in
install)
    so=.build/release/libutilbot_gateway.so
    cli=.build/release/utilbot-gateway
    [ -f "$so" ] || die "$so is missing: run make release"
    [ -x "$cli" ] || die "$cli is missing: run make cli-release"
    readelf -d "$so" | grep -q "SONAME.*\[libutilbot_gateway.so.$major\]" || die "$so has no SONAME libutilbot_gateway.so.$major"
    install -d "$root/include/utilbot" "$root/bin" "$lib/pkgconfig" "$lib/cmake/UtilbotGateway"
    install -m 644 include/utilbot_gateway.h "$root/include/"
    install -m 644 bindings/cpp/include/utilbot/gateway.hpp "$root/include/utilbot/"
    install -m 755 "$so" "$lib/libutilbot_gateway.so.$version"
    strip --strip-unneeded "$lib/libutilbot_gateway.so.$version"
    ln -sf "libutilbot_gateway.so.$version" "$lib/libutilbot_gateway.so.$major"
    ln -sf "libutilbot_gateway.so.$major" "$lib/libutilbot_gateway.so"
    fill packaging/utilbot-gateway.pc.in "$lib/pkgconfig/utilbot-gateway.pc"
    fill packaging/UtilbotGatewayConfig.cmake.in "$lib/cmake/UtilbotGateway/UtilbotGatewayConfig.cmake"
    fill packaging/UtilbotGatewayConfigVersion.cmake.in "$lib/cmake/UtilbotGateway/UtilbotGatewayConfigVersion.cmake"
    install -m 755 "$cli" "$root/bin/utilbot-gateway"
    echo "install: utilbot-gateway $version under ${DESTDIR:+$DESTDIR}$PREFIX"
    ;;
uninstall)
    for file in "${files[@]}"; do rm -f "$file"; done
    rmdir "$lib/cmake/UtilbotGateway" "$root/include/utilbot" 2>/dev/null || true
    echo "uninstall: utilbot-gateway $version removed from ${DESTDIR:+$DESTDIR}$PREFIX"
    ;;
*)
    die "usage: scripts/install.sh install|uninstall (PREFIX, LIBDIR, DESTDIR from the environment)"
    ;;
esac
