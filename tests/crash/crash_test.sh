#!/bin/sh
# The crash test (see crash_test.c): publishers with confirms while warrend is killed with
# SIGKILL at random moments; no confirmed message may be lost.
#
#   make check runs it with CRASH_CYCLES=5 (about 10 s);
#   the full run, from the build directory:  CRASH_CYCLES=25 tests/crash/crash_test.sh
#   repeat a failed run with the seed it printed:  CRASH_SEED=<seed> tests/crash/crash_test.sh
#
# It needs the warrend it starts (it kills it), so it skips when AMQP_HOST names a broker.
if [ -n "${AMQP_HOST:-}" ]; then
    echo "crash_test: skipped: it kills the broker it starts, and AMQP_HOST names an external one"
    exit 77
fi
builddir=${top_builddir:-.}
WARREND=${WARREND:-$builddir/src/warrend}
CRASH_CYCLES=${CRASH_CYCLES:-5}
export WARREND CRASH_CYCLES
exec "$builddir/tests/crash/crash_test"
