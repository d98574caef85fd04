#!/usr/bin/env bash
# Runs every benchmark of the project (build/bench/wardenbench: startup, spawn,
# sandboxed spawn, `warden run`, throughput, idle PTYs; bench/proxy_bench.py;
# bench/approvals_bench.py; bench/telemetry.py), each with its own output and a
# JSON file, then prints ONE table (metric, warden, baseline, reference, ratio,
# target, verdict; bench/table.py, targets and comparisons in
# bench/targets.json) and writes it to bench/results/ as JSON (one file per run
# plus latest.json) and as a PNG chart of the ratios drawn with gnuplot
# (installed here from Debian's gnuplot-nox when missing; no chart, saying
# why, when it cannot be). The reference systems are installed by the benchmark itself
# (bench/install-references.sh: codex pinned from npm into the cache, tinyproxy
# and squid from Debian); when one cannot be installed (npm unreachable) the
# run goes on without it and says that it is missing. Speed never makes this
# script fail; it fails only when a benchmark produced no number.
#
# Usage: bench/run.sh [--quick] [--no-codex] [--build-dir DIR] [--results DIR]
#                     [--only startup,spawn,sandbox,run,throughput,pty,proxy,approvals,
#                             telemetry]
# Environment:
#   WARDEN_BENCH_QUICK=1        quick mode (CI): fewer runs, smaller transfers
#   WARDEN_BENCH_SKIP_CODEX=1   leave codex out (nothing is installed for it)
#   WARDEN_BENCH_CACHE          where references are installed (default
#                               ${XDG_CACHE_HOME:-~/.cache}/warden-bench)
#   WARDEN_BIN, WARDENBENCH     use these binaries instead of building
#   CODEX_BIN                   use this codex binary instead of installing one
#   TINYPROXY_BIN, SQUID_BIN    exported for the proxy benchmarks when present
#   CODEX_HOME                  default $HOME/.cache/warden-bench-codex-home
#   WARDEN_BENCH_SERVER_STDERR  a file that collects the servers' stderr
#   WARDEN_BENCH_RESULTS        where the table goes (default bench/results)
#   WARDEN_BENCH_NO_GNUPLOT=1   do not install gnuplot (no chart unless present)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${WARDEN_BENCH_BUILD_DIR:-$root/build}
results=${WARDEN_BENCH_RESULTS:-$here/results}
args=()
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) export WARDEN_BENCH_QUICK=1 ;;
    --full) export WARDEN_BENCH_QUICK=0 ;;
    --no-codex) export WARDEN_BENCH_SKIP_CODEX=1 ;;
    --build-dir) build=$2; shift ;;
    --build-dir=*) build=${1#--build-dir=} ;;
    --only) only="${only:+$only,}$2"; shift ;;
    --results) results=$2; shift ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) args+=("$1") ;;
  esac
  shift
done

# The binaries: given, or built here.
if [ -z "${WARDEN_BIN:-}" ] || [ -z "${WARDENBENCH:-}" ]; then
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" >/dev/null
  fi
  cmake --build "$build" -j"$(nproc)" --target warden wardenbench >/dev/null
  : "${WARDEN_BIN:=$build/server/warden}"
  : "${WARDENBENCH:=$build/bench/wardenbench}"
fi
export WARDEN_BIN

# codex: installed here, pinned, into the benchmark's cache (about 400 MB, once).
skip=${WARDEN_BENCH_SKIP_CODEX:-0}
if [ "$skip" != "0" ] && [ -n "$skip" ]; then
  export CODEX_BIN=
else
  if [ -z "${CODEX_BIN:-}" ]; then
    CODEX_BIN=$("$here/install-references.sh" codex) || CODEX_BIN=
  fi
  if [ -n "$CODEX_BIN" ] && [ ! -x "$CODEX_BIN" ]; then
    echo "bench: CODEX_BIN=$CODEX_BIN is not executable" >&2
    CODEX_BIN=
  fi
  export CODEX_BIN  # empty: wardenbench prints "codex: not installed (...)" and skips its column
  if [ -n "$CODEX_BIN" ]; then
    export CODEX_HOME=${CODEX_HOME:-$HOME/.cache/warden-bench-codex-home}
    mkdir -p "$CODEX_HOME"
    # codex sandboxes with bubblewrap on Linux (it falls back to a bundled copy).
    if ! command -v bwrap >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ]; then
        echo "bench: installing bubblewrap for codex's sandbox" >&2
        { apt-get install -y bubblewrap >/dev/null 2>&1 ||
          { apt-get update >/dev/null 2>&1 && apt-get install -y bubblewrap >/dev/null 2>&1; }; } ||
          echo "bench: apt-get install bubblewrap failed; codex uses its bundled bubblewrap" >&2
      elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        echo "bench: installing bubblewrap for codex's sandbox (sudo)" >&2
        sudo -n apt-get install -y bubblewrap >/dev/null 2>&1 ||
          echo "bench: sudo apt-get install bubblewrap failed; codex uses its bundled bubblewrap" >&2
      else
        echo "bench: bubblewrap not installed and not root (no sudo): not installing it;" \
          "codex falls back to its bundled bubblewrap" >&2
      fi
    fi
  fi
fi

# tinyproxy and squid, the references of the proxy benchmarks (not in quick mode).
if [ "${WARDEN_BENCH_QUICK:-0}" = "0" ]; then
  while read -r name path; do
    case "$name" in
      tinyproxy) export TINYPROXY_BIN=${TINYPROXY_BIN:-$path} ;;
      squid) export SQUID_BIN=${SQUID_BIN:-$path} ;;
    esac
  done < <("$here/install-references.sh" proxies || true)
  [ -n "${TINYPROXY_BIN:-}" ] || echo "tinyproxy: not installed (the proxy reference is missing)"
  [ -n "${SQUID_BIN:-}" ] || echo "squid: not installed (the proxy reference is missing)"
fi

# --only: wardenbench's own benchmarks go to it; the Python ones run here.
wanted() { [ -z "$only" ] || printf ',%s,' "$only" | grep -q ",$1,\|,all,"; }
wb_only=""
for b in startup spawn sandbox run throughput pty; do
  if [ -n "$only" ] && wanted "$b"; then wb_only="${wb_only:+$wb_only,}$b"; fi
done
[ -z "$wb_only" ] || args+=(--only "$wb_only")

tmpd=$(mktemp -d)
trap 'rm -rf "$tmpd"' EXIT
out=$tmpd/wardenbench.txt
quick=()
[ "${WARDEN_BENCH_QUICK:-0}" = "0" ] || quick=(--quick)
py=${PYTHON:-python3}
# No benchmark may hang the run: each gets a generous wall-clock cap.
cap=${WARDEN_BENCH_CAP_S:-1800}
table_args=(--targets "$here/targets.json" --out "$results" "${quick[@]}")
[ -z "$only" ] || table_args+=(--only "$only")
rc=0
if [ -z "$only" ] || [ -n "$wb_only" ]; then
  "$WARDENBENCH" "${args[@]}" --json "$tmpd/wardenbench.json" | tee "$out" || rc=$?
  table_args+=(--wardenbench "$tmpd/wardenbench.json")
else
  table_args+=(--skip wardenbench)
fi
for b in proxy approvals telemetry; do
  if ! wanted "$b"; then
    table_args+=(--skip "$b")
    continue
  fi
  case "$b" in
    proxy) script=proxy_bench.py ;;
    approvals) script=approvals_bench.py ;;
    telemetry) script=telemetry.py ;;
  esac
  echo
  echo "== $b ($script) =="
  timeout "$cap" "$py" "$here/$script" "${quick[@]}" --json "$tmpd/$b.json" ||
    echo "bench: $script exited with status $?" >&2
  table_args+=(--"$b" "$tmpd/$b.json")
done
for name in tinyproxy squid; do
  var=$(echo "$name" | tr a-z A-Z)_BIN
  if [ -z "${!var:-}" ] && ! command -v "$name" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$name" ]; then
    table_args+=(--note "$name not installed: no $name reference")
  fi
done
[ -n "${CODEX_BIN:-}" ] || table_args+=(--note "codex not installed or skipped: no codex reference")

# gnuplot for the chart: installed like the references, never required.
if ! command -v gnuplot >/dev/null 2>&1 && [ "${WARDEN_BENCH_NO_GNUPLOT:-0}" = "0" ]; then
  "$here/install-references.sh" gnuplot >/dev/null ||
    echo "bench: gnuplot could not be installed: the table comes without a chart" >&2
fi
echo
"$py" "$here/table.py" "${table_args[@]}" || rc=1

# The smoke check: every benchmark ran and gave a number (never a speed check).
if [ "$rc" -eq 0 ]; then
  for b in startup spawn sandbox run throughput pty; do
    if [ -n "$only" ] && ! wanted "$b"; then
      continue
    fi
    if ! grep -q "^| $b: " "$out"; then
      echo "bench: no result row for $b" >&2
      rc=1
    fi
  done
  if grep '^| ' "$out" | awk -F' \\| ' '{print $2}' | grep -q '^error'; then
    echo "bench: a warden number is missing" >&2
    rc=1
  fi
fi
exit "$rc"
