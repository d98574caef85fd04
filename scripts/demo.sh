#!/usr/bin/env bash
# Fresh machine -> installed deps -> built warden -> a short demo of a client
# driving the server over stdio.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target warden >/dev/null
exec python3 examples/demo.py --warden build/server/warden
