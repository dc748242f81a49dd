#!/bin/sh
# Stream queues through the RabbitMQ Java client (stream_java.java, compiled here against the
# jar of Debian's librabbitmq-client-java): confirms, offsets as Longs, header types, a tail
# consumer at next, refusals. Against RabbitMQ 3.10.8: AMQP_HOST=... AMQP_PORT=...
# tests/interop/stream_java.sh
# shellcheck source=tests/interop/lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/interop/lib.sh"
java_dir=${JAVA_SHARE:-/usr/share/java}
interop_need_commands java javac
for jar in amqp-client slf4j-api slf4j-nop; do
    [ -r "$java_dir/$jar.jar" ] ||
        interop_skip "$java_dir/$jar.jar is missing (Debian: librabbitmq-client-java, libslf4j-java)"
done
CLASSPATH="$interop_tmp/classes:$java_dir/amqp-client.jar:$java_dir/slf4j-api.jar:$java_dir/slf4j-nop.jar"
export CLASSPATH
mkdir -p "$interop_tmp/classes"
javac -d "$interop_tmp/classes" "$interop_dir/stream_java.java" ||
    interop_fail "stream_java.java does not compile"
interop_start_broker
interop_run java StreamJava "$AMQP_HOST" "$AMQP_PORT"
