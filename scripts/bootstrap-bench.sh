#!/usr/bin/env bash
# Installs what the benchmark suite (benchmarks/, `make bench`) needs on top of scripts/bootstrap.sh:
# - Debian: libwebsockets-dev (the libwebsockets peer), libcjson-dev (cJSON, used by the C baseline
#   and the libwebsockets peer), libssl-dev, zlib1g-dev, gcc, openssl (the load server's certificate),
#   through apt-get, only those missing (as root, or with sudo);
# - into .venv (made by scripts/bootstrap.sh) the Python peers, pinned: websocket-client, picows,
#   aiohttp (websockets comes with scripts/requirements.txt).
# Safe to run again: it does nothing that is already done. Fails loudly, naming what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bootstrap-bench: $*" >&2; exit 1; }
trap 'echo "bootstrap-bench: failed at line $LINENO" >&2' ERR

# The Python peers, pinned to versions that install here (Python 3.11, manylinux x86_64).
PY_PEERS=(websocket-client==1.9.2 picows==2.3.1 aiohttp==3.14.5)

need=()
for pkg in libwebsockets-dev libcjson-dev libssl-dev zlib1g-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v gcc >/dev/null || need+=(gcc)
command -v openssl >/dev/null || need+=(openssl)
command -v strip >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
    echo "bootstrap-bench: installing Debian packages: ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "not root and no sudo: install ${need[*]} by hand (apt-get install ${need[*]})"
        SUDO=sudo
    else
        SUDO=
    fi
    $SUDO apt-get update -q || die "apt-get update failed; install ${need[*]} by hand"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" \
        || die "apt-get could not install ${need[*]}"
fi
for pkg in libwebsockets-dev libcjson-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || die "$pkg is still not installed"
done
pkg-config --exists libwebsockets || die "pkg-config does not find libwebsockets (libwebsockets-dev)"
pkg-config --exists libcjson || die "pkg-config does not find libcjson (libcjson-dev)"

# The project's venv (websockets and the rest of scripts/requirements.txt) comes first.
if [ ! -x .venv/bin/python3 ]; then
    scripts/bootstrap.sh || die "scripts/bootstrap.sh failed (it makes .venv)"
fi
[ -x .venv/bin/python3 ] || die ".venv/bin/python3 is missing after scripts/bootstrap.sh"

missing=()
for spec in "${PY_PEERS[@]}"; do
    name=${spec%%==*}
    version=${spec#*==}
    have=$(.venv/bin/python3 -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
    [ "$have" = "$version" ] || missing+=("$spec")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap-bench: installing into .venv: ${missing[*]}"
    .venv/bin/python3 -m pip install -q --disable-pip-version-check "${missing[@]}" \
        || die "pip could not install ${missing[*]} into .venv"
fi
.venv/bin/python3 -c 'import websockets, websocket, picows, aiohttp' \
    || die "the Python peers do not import from .venv (websockets, websocket-client, picows, aiohttp)"
echo "bootstrap-bench: ready"
