#!/usr/bin/env bash
# Fresh machine -> installed deps -> warden built twice (plain, then with
# ASan+UBSan) -> the whole test suite on both builds. Ends with ctest's
# summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)
cmake -S . -B build-asan -DWARDEN_SANITIZE=ON -DWARDEN_WERROR=ON -DWARDEN_TEST_HOOKS=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
cmake -S . -B build -DWARDEN_WERROR=ON -DWARDEN_TEST_HOOKS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# libFuzzer first, so that the run ends with ctest's summary line; a
# fuzz failure still fails the run (below).
fuzz_rc=0
# The targets of tests/fuzz, 30 s each under ASan+UBSan, when clang with
# libFuzzer is installed (scripts/deps.sh installs it on Debian).
if command -v clang-14 >/dev/null && clang-14 -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep -q /; then
  echo "== fuzz =="
  CC=clang-14 cmake -S . -B build-fuzz -DWARDEN_FUZZ=ON -DWARDEN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-fuzz -j"$jobs" --target warden_fuzz >/dev/null
  bash tests/fuzz/run.sh build-fuzz "${WARDEN_FUZZ_SECONDS:-30}" || fuzz_rc=1
else
  echo "== fuzz: skipped (no clang-14 with libFuzzer) =="
fi
echo "== ASan+UBSan build =="
ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE nosan
echo "== plain build =="
ctest --test-dir build --output-on-failure -j"$jobs"
[ "$fuzz_rc" -eq 0 ] || { echo "fuzz targets failed (see above)" >&2; exit 1; }
