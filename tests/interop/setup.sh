#!/bin/sh
# Fetches what the interop tests need beyond Debian's packages, unless it is there already.
# scripts/deps calls this.
#  - rabbitmqadmin (rabbitmqadmin.sh): Debian ships it inside rabbitmq-server. Unless
#    /usr/bin/rabbitmqadmin is installed, the package is downloaded (apt-get download: the
#    server is not installed) and only that script is kept, as tests/interop/.cache/rabbitmqadmin
#    (not in git). Offline this is skipped with a note, and rabbitmqadmin.sh skips.
#  - the Node.js client (amqplib, pinned by package-lock.json), into tests/interop/node_modules.
set -e
cd "$(dirname "$0")"

fetch_rabbitmqadmin()
{
    [ -f /usr/bin/rabbitmqadmin ] && return 0
    [ -s .cache/rabbitmqadmin ] && return 0
    command -v apt-get >/dev/null 2>&1 || return 0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/warren-setup.XXXXXX") || return 0
    if (cd "$tmp" && apt-get download -q rabbitmq-server) >"$tmp/apt.log" 2>&1 &&
        deb=$(ls "$tmp"/rabbitmq-server_*.deb 2>/dev/null) && [ -n "$deb" ] &&
        dpkg-deb --fsys-tarfile "$deb" | tar -x -O ./usr/bin/rabbitmqadmin >"$tmp/rabbitmqadmin" &&
        head -n 1 "$tmp/rabbitmqadmin" | grep -q python3; then
        mkdir -p .cache
        mv "$tmp/rabbitmqadmin" .cache/rabbitmqadmin
        chmod 755 .cache/rabbitmqadmin
        echo "setup.sh: took rabbitmqadmin from $(basename "$deb") into tests/interop/.cache"
    else
        echo "setup.sh: could not download rabbitmq-server for its rabbitmqadmin (offline?);" \
            "tests/interop/rabbitmqadmin.sh will be skipped"
    fi
    rm -rf "$tmp"
}

fetch_rabbitmqadmin
[ -d node_modules/amqplib ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "setup.sh: npm is not installed" >&2; exit 1; }
npm ci --no-audit --no-fund
