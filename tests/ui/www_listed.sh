#!/bin/sh
# Every file of www/ is listed in www/local.mk, so that `make install` installs the whole UI
# (a file missing there works in the build tree and breaks once installed), and every file
# listed exists.
top=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top" || exit 99
listed=$(sed -n 's/^[[:space:]]*\(www\/[^ \\]*\).*/\1/p' www/local.mk | sort)
present=$(find www -type f ! -name local.mk | sort)
if [ "$listed" != "$present" ]; then
    echo "FAIL: www/local.mk and the files of www/ differ (< listed, > present):"
    echo "$listed" >"${TMPDIR:-/tmp}/www_listed.$$"
    echo "$present" | diff "${TMPDIR:-/tmp}/www_listed.$$" -
    rm -f "${TMPDIR:-/tmp}/www_listed.$$"
    exit 1
fi
echo "ok: the $(echo "$present" | wc -l) files of www/ are all installed"
