#!/usr/bin/env bash
# Runs every test: unit tests (cmocka) and integration tests on a real mosquitto, a real
# bridge and real handlers, first in a normal build, then again under ASan and UBSan.
# Usage: scripts/test.sh [--quick]   (--quick: the normal build only)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
mzb_install_deps clang-format

scripts/check-format.sh

jobs=$(nproc)
run_suite() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" >/dev/null
    (cd "$dir" && ctest --output-on-failure --timeout 600)
}

echo "== normal build"
run_suite build-test

if [ "${1:-}" != "--quick" ]; then
    echo "== ASan + UBSan build"
    # The broker is not built with ASan, so the sanitizer runtime is preloaded into it.
    MZB_PRELOAD=$(gcc -print-file-name=libasan.so) \
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_suite build-asan -DMZB_SANITIZE=ON
fi
