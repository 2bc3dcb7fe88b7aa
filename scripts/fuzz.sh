#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of the parsers of the Swift core.
#
#   scripts/fuzz.sh [--build-only] [TARGET ...]
#
# TARGET is a file name under Tests/Fuzz/ without .swift (FuzzHandshake) or its short name (handshake);
# no TARGET means all of them. Each target is built, then run for FUZZ_SECONDS seconds (default 60) on a
# working copy of its seed corpus (Tests/Fuzz/corpus/<target>/ copied to .build-fuzz/corpus/<target>/, which
# keeps what earlier runs found; FUZZ_FRESH=1 starts from the seeds only). FUZZ_ARGS adds libFuzzer
# options. A crash, a hang (> 10 s for one input) or running out of memory (> 2048 MB) fails the run; the
# input that caused it is left in .build-fuzz/crashes/<target>/ and the log in .build-fuzz/logs/<target>.log.
# Replay one input with `SWIFT_BACKTRACE=enable=no .build-fuzz/bin/<target> FILE`.
#
# Needs only the Swift toolchain (swiftc with libFuzzer), libssl-dev and zlib1g-dev.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.build-fuzz
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}

die() {
    echo "fuzz.sh: $*" >&2
    exit 2
}

# target name, libFuzzer -max_len
TARGETS=(
    "FuzzHandshake 32768"
    "FuzzWebSocket 65536"
    "FuzzUTF8 4096"
    "FuzzJSON 65536"
    "FuzzInflate 65536"
    "FuzzURL 10000"
    "FuzzProxy 20000"
)

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    echo "targets:"
    for entry in "${TARGETS[@]}"; do echo "  ${entry%% *}"; done
}

BUILD_ONLY=0
REQUESTED=()
for arg in "$@"; do
    case $arg in
        -h | --help) usage; exit 0 ;;
        --build-only) BUILD_ONLY=1 ;;
        -*) die "unknown option '$arg' (see --help)" ;;
        *) REQUESTED+=("$arg") ;;
    esac
done

[[ $SECONDS_PER_TARGET =~ ^[0-9]+$ && $SECONDS_PER_TARGET -gt 0 ]] ||
    die "FUZZ_SECONDS must be a positive number of seconds, got '$SECONDS_PER_TARGET'"

# Resolve the requested names.
SELECTED=()
if [[ ${#REQUESTED[@]} -eq 0 ]]; then
    SELECTED=("${TARGETS[@]}")
else
    for name in "${REQUESTED[@]}"; do
        want=$(echo "${name#Fuzz}" | tr '[:upper:]' '[:lower:]')
        found=""
        for entry in "${TARGETS[@]}"; do
            target=${entry%% *}
            if [[ $(echo "${target#Fuzz}" | tr '[:upper:]' '[:lower:]') == "$want" ]]; then found=$entry; fi
        done
        [[ -n $found ]] || { usage >&2; die "unknown target '$name'"; }
        SELECTED+=("$found")
    done
fi

# --- Prerequisites -----------------------------------------------------------------------------
command -v swiftc >/dev/null || die "swiftc is not on PATH (install the Swift 6 toolchain)"
for header in /usr/include/openssl/ssl.h /usr/include/zlib.h; do
    [[ -f $header ]] || die "$header is missing: apt-get install libssl-dev zlib1g-dev"
done

SWIFT_FLAGS=(-sanitize=fuzzer,address -parse-as-library -O -g -package-name UtilbotGatewayFuzz
    -I Sources/COpenSSL -I Sources/CZlib -I Sources/CSystem -I Sources/UtilbotGatewayTypes/include)
# The toolchain's lld links sanitized binaries without gold's warnings; fall back to the default linker.
if [[ -x "$(dirname "$(command -v swiftc)")/ld.lld" ]] || command -v ld.lld >/dev/null; then
    SWIFT_FLAGS+=(-use-ld=lld)
fi

mkdir -p "$OUT/lib" "$OUT/bin" "$OUT/logs"
# Swift's crash backtracer reads the stack from a helper thread, which AddressSanitizer reports as a
# stack-buffer-underflow that hides the real failure; libFuzzer prints the stack itself.
export SWIFT_BACKTRACE=enable=no

# --- Build -------------------------------------------------------------------------------------
# The core library is compiled once (instrumented) into a static library; each target is its own module
# linked against it. Rebuilt when its sources or the flags change; a lock lets two runs share it.
build_library() {
    local sources stamp
    mapfile -t sources < <(find Sources/UtilbotGateway -name '*.swift' | LC_ALL=C sort)
    [[ ${#sources[@]} -gt 0 ]] || die "no sources under Sources/UtilbotGateway"
    stamp=$(
        {
            swiftc --version 2>&1
            printf '%s\n' "${SWIFT_FLAGS[@]}"
            cat "${sources[@]}" Sources/COpenSSL/* Sources/CZlib/* Sources/CSystem/* Sources/UtilbotGatewayTypes/include/*
        } | sha256sum | cut -d' ' -f1
    )
    exec 9>"$OUT/lib/.lock"
    flock 9
    if [[ -f $OUT/lib/libUtilbotGateway.a && "$(cat "$OUT/lib/stamp" 2>/dev/null)" == "$stamp" ]]; then
        flock -u 9
        return
    fi
    echo "fuzz.sh: building the instrumented UtilbotGateway library"
    rm -f "$OUT/lib/stamp"
    if ! swiftc "${SWIFT_FLAGS[@]}" -module-name UtilbotGateway -emit-library -static -emit-module \
        -emit-module-path "$OUT/lib/UtilbotGateway.swiftmodule" -o "$OUT/lib/libUtilbotGateway.a" "${sources[@]}"; then
        die "BUILD FAILED: the UtilbotGateway library (see the compiler output above)"
    fi
    echo "$stamp" >"$OUT/lib/stamp"
    flock -u 9
}

build_target() {
    local target=$1
    [[ -f Tests/Fuzz/$target.swift ]] || die "Tests/Fuzz/$target.swift is missing"
    echo "fuzz.sh: building $target"
    if ! swiftc "${SWIFT_FLAGS[@]}" -module-name "$target" -I "$OUT/lib" \
        "Tests/Fuzz/$target.swift" Tests/Fuzz/Support/*.swift -L "$OUT/lib" -lUtilbotGateway -o "$OUT/bin/$target.tmp"; then
        die "BUILD FAILED: $target (see the compiler output above)"
    fi
    mv -f "$OUT/bin/$target.tmp" "$OUT/bin/$target"
}

build_library
for entry in "${SELECTED[@]}"; do build_target "${entry%% *}"; done
if [[ $BUILD_ONLY -eq 1 ]]; then
    echo "fuzz.sh: built ${#SELECTED[@]} target(s) in $OUT/bin"
    exit 0
fi

# --- Run ---------------------------------------------------------------------------------------
# Extra libFuzzer options from the environment (word-split on purpose).
read -r -a EXTRA_ARGS <<<"${FUZZ_ARGS:-}"
FAILED=()
SUMMARY=()
for entry in "${SELECTED[@]}"; do
    target=${entry%% *}
    max_len=${entry##* }
    seeds=Tests/Fuzz/corpus/$target
    corpus=$OUT/corpus/$target
    crashes=$OUT/crashes/$target
    log=$OUT/logs/$target.log
    [[ -d $seeds ]] || die "the seed corpus $seeds is missing"
    [[ ${FUZZ_FRESH:-0} == 1 ]] && rm -rf "$corpus"
    mkdir -p "$corpus" "$crashes"
    cp -f "$seeds"/* "$corpus"/

    echo "fuzz.sh: running $target for ${SECONDS_PER_TARGET}s (max_len $max_len, log $log)"
    status=0
    "$OUT/bin/$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$crashes/" \
        "${EXTRA_ARGS[@]}" "$corpus" >"$log" 2>&1 || status=$?

    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    artifact=$(grep -o 'Test unit written to .*' "$log" | sed 's/^Test unit written to //' | tail -1 || true)
    if [[ $status -eq 0 ]]; then
        result="ok"
    else
        if grep -q 'ERROR: libFuzzer: timeout' "$log"; then
            kind="hang (timeout)"
        elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then
            kind="out of memory"
        elif grep -q 'ERROR: AddressSanitizer' "$log"; then
            kind="AddressSanitizer: $(grep -o 'ERROR: AddressSanitizer: [a-z-]*' "$log" | head -1 | cut -d' ' -f3)"
        elif grep -q 'fuzz invariant violated' "$log"; then
            kind="invariant violated"
        else
            kind="crash"
        fi
        result="FAILED ($kind, exit $status)${artifact:+, input: ${artifact#"$ROOT"/}}"
        FAILED+=("$target")
        echo "---- $target: end of $log ----" >&2
        grep -v '^#[0-9]' "$log" | tail -40 >&2 || true
        echo "----" >&2
    fi
    line=$(printf '%-14s executions: %-10s %s' "$target" "${execs:-?}" "$result")
    echo "fuzz.sh: $line"
    SUMMARY+=("$line")
done

echo
echo "fuzz.sh: summary (${SECONDS_PER_TARGET}s per target)"
printf '  %s\n' "${SUMMARY[@]}"
if [[ ${#FAILED[@]} -gt 0 ]]; then
    echo "fuzz.sh: ${#FAILED[@]} target(s) failed: ${FAILED[*]}" >&2
    exit 1
fi
