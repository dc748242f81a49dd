#!/bin/sh
# The layering of src/ (src/local.mk): each folder includes only itself and the folders below
# it, amqp/ and exchanges/ include nothing of src/, and inside src/broker/ the objects a vhost
# holds (messages, spill files, queues, exchanges, policies, dead-lettering) and publish,
# persist and recovery know nothing of the AMQP session above them (connections, channels,
# the server). Fails, naming the file and the line, on the first include that points upwards.
set -u
top=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top" || exit 99

# folder: the folders (and top-level headers) its files may include
allowed() {
    case $1 in
    amqp) echo "amqp" ;;
    exchanges) echo "amqp exchanges" ;;
    src/base) echo "amqp src/base" ;;
    src/security) echo "amqp src/base src/security" ;;
    src/store) echo "amqp src/base src/store" ;;
    # cluster mode (etcd client, coordinator, replication, proxy, roles): the broker calls
    # it through its headers, it calls the broker only through hooks (src/cluster/cluster.h)
    src/cluster) echo "amqp src/base src/security src/store src/cluster build_config.h" ;;
    src/definitions) echo "amqp exchanges src/base src/security src/definitions" ;;
    src/broker) echo "amqp exchanges src/base src/security src/store src/cluster src/definitions src/broker build_config.h" ;;
    src/mgmt) echo "amqp exchanges src/base src/security src/store src/cluster src/definitions src/broker src/mgmt build_config.h" ;;
    src/cli) echo "src/cli build_config.h" ;;
    src) echo "amqp exchanges src/base src/security src/store src/cluster src/definitions src/broker src/mgmt build_config.h" ;;
    *) echo "" ;;
    esac
}

# The session layer of src/broker/, which the vhost's objects must not include.
session="src/broker/conn.h src/broker/channel.h src/broker/server.h"
model="message spill queue deadletter exchange policy vhost persist recovery publish"

bad=0
for f in $(find amqp exchanges src -name '*.[ch]' | sort); do
    dir=$(dirname "$f")
    ok=$(allowed "$dir")
    if [ -z "$ok" ]; then
        echo "$f: folder $dir has no place in the layering (tests/unit/check_layers.sh)"
        bad=1
        continue
    fi
    base=$(basename "$f" | sed 's/\.[ch]$//')
    grep -n '^#include "' "$f" | while IFS= read -r line; do
        inc=$(echo "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
        incdir=$(dirname "$inc")
        [ "$incdir" = "." ] && incdir=$inc
        found=0
        for a in $ok; do [ "$incdir" = "$a" ] && found=1; done
        if [ $found -eq 0 ]; then
            echo "$f:${line%%:*}: includes $inc, above its layer ($dir may include: $ok)"
            exit 1
        fi
        if [ "$dir" = src/broker ]; then
            for m in $model; do
                for s in $session; do
                    if [ "$base" = "$m" ] && [ "$inc" = "$s" ]; then
                        echo "$f:${line%%:*}: includes $inc: the vhost's objects do not know the session above them"
                        exit 1
                    fi
                done
            done
        fi
    done || bad=1
done
[ $bad -eq 0 ] && echo "layers: every include points down"
exit $bad
