#!/usr/bin/env bash
# Installs what building and testing need, on a Debian machine that has the Swift toolchain:
# system packages through apt-get (only those missing) and Python packages into .venv.
# Safe to run again: it does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bootstrap: $*" >&2; exit 1; }

command -v swift >/dev/null || die "the Swift toolchain (swift) is not on PATH; install Swift 6.3 first"

need=()
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v cmake >/dev/null || need+=(cmake)  # the install test builds a find_package() consumer
command -v abidiff >/dev/null || need+=(abigail-tools)  # the ABI guard (scripts/check-abi.sh)
command -v node >/dev/null || need+=(nodejs)  # the Node.js binding (bindings/node); Node-API is stable
command -v cargo >/dev/null || need+=(cargo)   # the Rust crate (bindings/rust); it uses no registry
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v gcc >/dev/null || need+=(gcc)
command -v g++ >/dev/null || need+=(g++)
command -v valgrind >/dev/null || need+=(valgrind)
# Real proxies for the proxy tests (Tests/CABI/test_proxy.c): HTTP CONNECT, SOCKS5, and stunnel
# in front of tinyproxy for an https proxy.
[ -x /usr/bin/tinyproxy ] || need+=(tinyproxy)
[ -x /usr/bin/microsocks ] || need+=(microsocks)
[ -x /usr/bin/stunnel4 ] || need+=(stunnel4)
if [ ${#need[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -q || die "apt-get update failed; install ${need[*]} by hand"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}" \
        || die "apt-get could not install ${need[*]}"
fi

stamp=.venv/.requirements
wanted=$(cat scripts/requirements.txt)
if [ ! -x .venv/bin/python3 ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "bootstrap: creating .venv with scripts/requirements.txt"
    python3 -m venv .venv || die "python3 -m venv failed"
    .venv/bin/python3 -m pip install -q --disable-pip-version-check -r scripts/requirements.txt \
        || die "pip could not install scripts/requirements.txt"
    printf '%s' "$wanted" >"$stamp"
fi
