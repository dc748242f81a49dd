"""What every example shares: where the broker is, and how an outcome is reported.

AMQP_HOST and AMQP_PORT name the broker (127.0.0.1:5672 by default), AMQP_USER and
AMQP_PASS the login (guest/guest). An example prints what it does as it goes, then one
machine-checkable line, `RESULT key=value ...`, which the tests in examples/check_*.sh read.
If the promise it demonstrates is broken it says so on a `FAILED:` line and exits 1.
"""

import os
import sys

import pika

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("AMQP_PORT", "5672"))
USER = os.environ.get("AMQP_USER", "guest")
PASS = os.environ.get("AMQP_PASS", "guest")


def params(**kwargs):
    """Connection parameters for the broker named by the environment."""
    return pika.ConnectionParameters(
        host=HOST, port=PORT, credentials=pika.PlainCredentials(USER, PASS), **kwargs
    )


def connect(**kwargs):
    """A blocking pika connection. pika's connections are not thread-safe, so every thread of
    an example opens its own, as separate processes would."""
    return pika.BlockingConnection(params(**kwargs))


def result(**fields):
    print("RESULT " + " ".join("%s=%s" % kv for kv in fields.items()), flush=True)


def check(ok, what):
    """Ends the example with status 1 if the promise it shows does not hold."""
    if not ok:
        print("FAILED: " + what, flush=True)
        sys.exit(1)


def log(text):
    print(text, flush=True)
