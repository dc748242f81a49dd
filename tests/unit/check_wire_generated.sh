#!/bin/sh
# amqp/method.h and amqp/method.c must be exactly what tools/gen_methods.py writes from the
# spec copy in tools/: regenerate into a temporary directory and compare. On a difference,
# run `make regen-methods` and commit the result (never edit the generated files).
set -u
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || { echo "no $python: skipped"; exit 77; }
out=$(mktemp -d) || exit 99
trap 'rm -rf "$out"' EXIT
"$python" "$srcdir/tools/gen_methods.py" "$srcdir/tools/amqp-rabbitmq-0.9.1.json" "$out" || exit 1
status=0
for f in method.h method.c; do
    if ! diff -u "$srcdir/amqp/$f" "$out/$f"; then
        echo "FAIL: amqp/$f differs from what tools/gen_methods.py generates"
        status=1
    fi
done
# The spec copy in the repository must not drift from the shared one beside the checkout.
shared="$srcdir/../shared/spec/amqp-rabbitmq-0.9.1.json"
if [ -f "$shared" ] && ! cmp -s "$shared" "$srcdir/tools/amqp-rabbitmq-0.9.1.json"; then
    echo "FAIL: tools/amqp-rabbitmq-0.9.1.json differs from $shared"
    status=1
fi
[ $status -eq 0 ] && echo "amqp/method.[ch] are up to date"
exit $status
