#!/usr/bin/env bash
# Run every libFuzzer target of a WARDEN_FUZZ build for a fixed time each,
# from its seed corpus; any crash, leak or sanitizer report fails the run.
#
#   bash tests/fuzz/run.sh BUILD_DIR [SECONDS]     (default 30 s per target)
#
# New inputs go to a scratch corpus (the seeds in tests/fuzz/corpus stay
# as committed); a failing input is kept as BUILD_DIR/fuzz-artifacts/<target>/.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
secs=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
shopt -s nullglob
targets=("$build"/tests/fuzz/fuzz_*)
[ "${#targets[@]}" -gt 0 ] || { echo "no fuzz targets in $build/tests/fuzz" >&2; exit 1; }
rc=0
for bin in "${targets[@]}"; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin"); name=${name#fuzz_}
  work=$(mktemp -d)
  art="$build/fuzz-artifacts/$name"
  mkdir -p "$art"
  dict=()
  [ -f "$here/$name.dict" ] && dict=(-dict="$here/$name.dict")
  echo "== fuzz $name (${secs}s) =="
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
      -print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" \
      "$work" "$here/corpus/$name" >"$art/log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$art/log" | tr '\n' ' '; echo
  else
    echo "FAIL fuzz $name (input and log in $art)"; tail -40 "$art/log"; rc=1
  fi
  rm -rf "$work"
done
exit $rc
