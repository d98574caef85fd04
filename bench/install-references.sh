#!/usr/bin/env bash
# Installs the reference systems the benchmarks compare warden against, into
# a cache the benchmark owns; nothing outside the repository is needed.
#
#   bench/install-references.sh codex [CACHE]
#       OpenAI Codex's CLI, pinned (CODEX_VERSION below), from npm into
#       CACHE/codex-VERSION (default CACHE: $WARDEN_BENCH_CACHE, else
#       ${XDG_CACHE_HOME:-~/.cache}/warden-bench). Its `exec-server --listen
#       stdio` and `app-server` speak newline-delimited JSON-RPC on stdio.
#       Prints the path of the codex binary.
#   bench/install-references.sh proxies
#       tinyproxy and squid from Debian (apt-get, as root or through sudo -n)
#       when they are missing. Prints "NAME PATH" for each one present.
#   bench/install-references.sh gnuplot
#       gnuplot (Debian package gnuplot-nox), which draws bench/run.sh's chart
#       of the ratios, when it is missing. Prints its path.
#
# When something cannot be installed (npm or the network unreachable, not
# root and no sudo) it says so on stderr and exits 1; the benchmark then runs
# without that reference and prints that it is missing.
set -euo pipefail

CODEX_VERSION=0.169.0
NPM_TIMEOUT_S=${WARDEN_BENCH_NPM_TIMEOUT_S:-300}

cache_dir() {
  if [ -n "${1:-}" ]; then
    echo "$1"
  elif [ -n "${WARDEN_BENCH_CACHE:-}" ]; then
    echo "$WARDEN_BENCH_CACHE"
  else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/warden-bench"
  fi
}

# The platform package npm installs next to @openai/codex holds the binary.
codex_binary() {
  local prefix=$1 pkg triple
  case "$(uname -m)" in
    x86_64) pkg=codex-linux-x64 triple=x86_64-unknown-linux-musl ;;
    aarch64 | arm64) pkg=codex-linux-arm64 triple=aarch64-unknown-linux-musl ;;
    *) return 1 ;;
  esac
  local bin="$prefix/node_modules/@openai/$pkg/vendor/$triple/bin/codex"
  [ -x "$bin" ] && echo "$bin"
}

install_codex() {
  local prefix bin
  prefix="$(cache_dir "${1:-}")/codex-$CODEX_VERSION"
  if bin=$(codex_binary "$prefix"); then
    echo "$bin"
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-references: npm is not installed; cannot install codex $CODEX_VERSION" >&2
    return 1
  fi
  mkdir -p "$prefix"
  echo "install-references: installing @openai/codex@$CODEX_VERSION into $prefix" >&2
  if ! timeout "$NPM_TIMEOUT_S" npm install --prefix "$prefix" --no-audit --no-fund \
    --no-save "@openai/codex@$CODEX_VERSION" >"$prefix/npm-install.log" 2>&1; then
    echo "install-references: npm install @openai/codex@$CODEX_VERSION failed" \
      "(npm unreachable?); see $prefix/npm-install.log" >&2
    return 1
  fi
  if ! bin=$(codex_binary "$prefix"); then
    echo "install-references: codex binary not found under $prefix after install" >&2
    return 1
  fi
  echo "$bin"
}

apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y "$@" >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 && apt-get install -y "$@" >/dev/null 2>&1; }
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n apt-get install -y "$@" >/dev/null 2>&1 ||
      { sudo -n apt-get update >/dev/null 2>&1 && sudo -n apt-get install -y "$@" >/dev/null 2>&1; }
  else
    return 1
  fi
}

find_prog() {
  command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true
}

install_proxies() {
  local rc=0 name path
  for name in tinyproxy squid; do
    path=$(find_prog "$name")
    if [ -z "$path" ]; then
      echo "install-references: installing $name from Debian" >&2
      apt_install "$name" || echo "install-references: cannot install $name" \
        "(apt-get failed, or not root and no sudo)" >&2
      path=$(find_prog "$name")
    fi
    if [ -n "$path" ]; then
      echo "$name $path"
    else
      rc=1
    fi
  done
  return "$rc"
}

install_gnuplot() {
  local path
  path=$(find_prog gnuplot)
  if [ -z "$path" ]; then
    echo "install-references: installing gnuplot-nox from Debian (for the chart)" >&2
    apt_install gnuplot-nox || echo "install-references: cannot install gnuplot-nox" \
      "(apt-get failed, or not root and no sudo)" >&2
    path=$(find_prog gnuplot)
  fi
  [ -n "$path" ] || return 1
  echo "$path"
}

case "${1:-}" in
  codex) install_codex "${2:-}" ;;
  gnuplot) install_gnuplot ;;
  proxies) install_proxies ;;
  *)
    sed -n '2,20p' "$0" >&2
    exit 2
    ;;
esac
