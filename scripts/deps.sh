#!/usr/bin/env bash
# Installs what warden needs to build and test on Debian/Ubuntu, skipping
# what is already there. apt runs through sudo when not root.
# dpkg-dev (dpkg-shlibdeps) computes the .deb's Depends; python3-venv,
# -setuptools and -wheel install clients/python offline; groff-base lets the
# man page test render warden(1); clang-14 and libclang-rt-14-dev (libFuzzer)
# build the fuzz targets in tests/fuzz.
set -euo pipefail
pkgs=(build-essential cmake pkg-config python3 libjansson-dev libuv1-dev zlib1g-dev
      libcurl4-openssl-dev libseccomp-dev libcmocka-dev iproute2
      dpkg-dev python3-venv python3-setuptools python3-wheel groff-base
      libhttp-parser-dev curl openssl
      clang-14 libclang-rt-14-dev)
# Node may come from elsewhere than Debian (nvm, a tarball): any node+npm on PATH will do.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
