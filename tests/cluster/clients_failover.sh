#!/bin/sh
# Real clients through a failover (tests/cluster/clients_failover.py): the RabbitMQ Java client
# (Debian's librabbitmq-client-java, automatic recovery) and pika publish with confirms and
# consume through a follower's address while the leader of a 3-node cluster is killed twice;
# fails if a confirmed message is lost or a client does not recover. JavaFailover.java is
# compiled here, against the jar the Debian package installs.
dir=${top_srcdir:+$top_srcdir/tests/cluster}
dir=${dir:-$(cd "$(dirname "$0")" && pwd)}
java_dir=${JAVA_SHARE:-/usr/share/java}
fail() {
    echo "FAIL: $*"
    exit 1
}
command -v etcd >/dev/null 2>&1 || fail "etcd is not installed (scripts/deps: etcd-server)"
/usr/bin/python3 -c "import pika" 2>/dev/null || fail "/usr/bin/python3 cannot import pika"
for tool in java javac; do
    command -v $tool >/dev/null 2>&1 ||
        fail "$tool is not installed (scripts/deps: openjdk-17-jdk-headless)"
done
for jar in amqp-client slf4j-api slf4j-simple; do
    [ -r "$java_dir/$jar.jar" ] ||
        fail "$java_dir/$jar.jar is missing (scripts/deps: librabbitmq-client-java, libslf4j-java)"
done
[ -x "${WARREND:-}" ] || { echo "ERROR: WARREND is not set to warrend"; exit 99; }
classes=$(mktemp -d "${TMPDIR:-/tmp}/warren-java.XXXXXX") || exit 1
trap 'rm -rf "$classes"' EXIT
CLASSPATH="$java_dir/amqp-client.jar:$java_dir/slf4j-api.jar:$java_dir/slf4j-simple.jar"
export CLASSPATH
javac -d "$classes" "$dir/JavaFailover.java" || fail "JavaFailover.java does not compile"
timeout 150 /usr/bin/python3 "$dir/clients_failover.py" --classes "$classes" --kills 2
