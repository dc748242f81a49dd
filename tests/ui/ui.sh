#!/bin/sh
# The management web UI in headless Chromium (ui.mjs, through playwright-core), against a
# warrend started with its management listener on a free port and the UI's files of this
# source tree. Fails, rather than skips, when chromium or playwright-core is missing:
# scripts/deps installs both (tests/ui/setup.sh). Screenshots of every page are left in
# tests/ui/screenshots/ of the build tree, for review.
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
. "$interop_dir/mgmt_lib.sh"
ui_dir=$(cd "$interop_dir/../ui" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || interop_fail "$CHROMIUM is not installed: run scripts/deps (Debian package chromium)"
command -v node >/dev/null 2>&1 || interop_fail "node is not installed: run scripts/deps"
[ -f "$ui_dir/node_modules/playwright-core/package.json" ] ||
    interop_fail "playwright-core is not installed in $ui_dir/node_modules: run scripts/deps (tests/ui/setup.sh)"
for c in amqp-publish amqp-get amqp-consume amqp-declare-queue; do
    command -v "$c" >/dev/null 2>&1 || interop_fail "$c is not installed: run scripts/deps (amqp-tools)"
done
[ -z "${AMQP_HOST:-}" ] || [ -n "${MGMT_URL:-}" ] || interop_fail "AMQP_HOST without MGMT_URL"
WARREN_EXTRA_CONFIG="management.ui_dir = ${top_srcdir:-$interop_dir/../..}/www"
mgmt_start_broker
SCREENSHOT_DIR=${SCREENSHOT_DIR:-${top_builddir:-.}/tests/ui/screenshots}
rm -rf "$SCREENSHOT_DIR"
mkdir -p "$SCREENSHOT_DIR"
export SCREENSHOT_DIR CHROMIUM
INTEROP_TIMEOUT=${INTEROP_TIMEOUT:-300} interop_run node "$ui_dir/ui.mjs"
