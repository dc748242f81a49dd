#!/bin/sh
# Installs what the browser test of the management UI (tests/ui/ui.sh) needs beyond Debian's
# packages: playwright-core, pinned by package-lock.json, into tests/ui/node_modules. Only the
# driver: the browser is Debian's chromium (scripts/deps), never one that Playwright would
# download. scripts/deps calls this.
set -e
cd "$(dirname "$0")"
[ -f node_modules/playwright-core/package.json ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "tests/ui/setup.sh: npm is not installed" >&2; exit 1; }
# No browser download, whatever the package's version would do on install.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
