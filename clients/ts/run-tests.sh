#!/usr/bin/env bash
# Build the TypeScript client and run its tests with node's test runner.
# ctest runs this as clients.ts with WARDEN_BIN set to the built server.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund || npm ci --offline --no-audit --no-fund
fi
rm -rf dist
node_modules/.bin/tsc -p .
exec node --test dist/test/*.test.js
