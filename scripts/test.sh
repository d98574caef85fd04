#!/usr/bin/env bash
# Fresh machine -> installed deps -> warden built twice (plain, then with
# ASan+UBSan) -> the whole test suite on both builds. Ends with ctest's
# summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)
cmake -S . -B build-asan -DWARDEN_SANITIZE=ON -DWARDEN_TEST_HOOKS=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
cmake -S . -B build -DWARDEN_TEST_HOOKS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== ASan+UBSan build =="
ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE nosan
echo "== plain build =="
ctest --test-dir build --output-on-failure -j"$jobs"
