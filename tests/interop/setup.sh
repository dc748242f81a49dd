#!/bin/sh
# Installs the Node.js client of the interop tests (amqplib, pinned by package-lock.json)
# into tests/interop/node_modules, unless it is there already. scripts/deps calls this.
set -e
cd "$(dirname "$0")"
[ -d node_modules/amqplib ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "setup.sh: npm is not installed" >&2; exit 1; }
npm ci --no-audit --no-fund
