#!/usr/bin/python3
"""Scenario 9: reliable publishing across a broker restart.

Payments must not be lost, even when the broker restarts (an upgrade, a crash, a power cut).
Three things together make that promise:
  - the queue is durable (its definition survives a restart),
  - each message is persistent (delivery-mode 2: written to disk),
  - the publisher uses publisher confirms and counts a payment as sent only when the broker
    has confirmed it; a confirmed persistent message is on disk (Warren confirms after the
    fsync). A publish whose confirm never came (the connection dropped first) is published
    again after reconnecting: at least once, so the consumer de-duplicates by message-id.

Halfway through, the example asks for a broker restart and keeps publishing, slowly, until
the connection drops; then it reconnects (retrying until the broker is back) and finishes.
Afterwards it reads the queue: every confirmed payment must be there.

Who restarts the broker:
  - BROKER_RESTART_CMD set: the example runs that shell command itself, e.g.
    BROKER_RESTART_CMD='sudo systemctl restart warren' (or 'kill -9 ...' and a start);
  - otherwise it prints `ACTION restart the broker now` and waits (RESTART_WAIT seconds, 120)
    for you to do it in another terminal. The test (examples/check_09_reliable_publishing.sh)
    watches for that line and restarts the warrend it started, once with SIGTERM and once
    with SIGKILL.

Run: /usr/bin/python3 examples/09_reliable_publishing.py
"""

import os
import subprocess
import threading
import time

import pika
import pika.exceptions

from common import check, connect, log, result

QUEUE = "ex09.payments"
MESSAGES = int(os.environ.get("MESSAGES", "2000"))
RESTART_CMD = os.environ.get("BROKER_RESTART_CMD", "")
RESTART_WAIT = float(os.environ.get("RESTART_WAIT", "120"))
SLOW_RATE = 100  # payments per second while waiting for the restart


def connect_retrying(timeout_s):
    """Reconnects until the broker answers again (it is restarting)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return connect()
        # pika raises ValueError ("Expected connected socket, but getpeername() failed")
        # when the socket it connected dies before it looks at it: the broker was stopping.
        except (pika.exceptions.AMQPConnectionError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def publish_all():
    """Publishes payments 0..MESSAGES-1, each until confirmed. Returns (ids confirmed, ids
    published again after a lost connection, connections lost)."""
    confirmed, republished = [], []
    lost = 0
    i = 0
    asked_at = None  # when the restart was asked for
    in_flight = False  # payment i is published, its confirm not yet in
    conn = connect()
    while i < MESSAGES:
        try:
            ch = conn.channel()
            ch.confirm_delivery()
            if lost == 0:
                ch.queue_declare(QUEUE, durable=True)
            else:
                # After the restart the queue must still be there: a passive declare only
                # looks (a missing queue closes the channel with 404 NOT_FOUND).
                try:
                    ch.queue_declare(QUEUE, passive=True)
                except pika.exceptions.ChannelClosedByBroker as e:
                    check(False, "the durable queue did not survive the restart: %s" % e)
            while i < MESSAGES:
                if asked_at is None and i == MESSAGES // 2:
                    asked_at = time.monotonic()
                    if RESTART_CMD:
                        log("running: %s" % RESTART_CMD)
                        restart = threading.Thread(
                            target=subprocess.run, args=(RESTART_CMD,), kwargs={"shell": True}
                        )
                        restart.start()
                    else:
                        log("ACTION restart the broker now (waiting up to %.0f s)" % RESTART_WAIT)
                if asked_at is not None and lost == 0:
                    # Until the restart happens: slowly, so it hits us mid-stream.
                    if time.monotonic() - asked_at > RESTART_WAIT:
                        check(False, "the broker was not restarted within %.0f s" % RESTART_WAIT)
                    time.sleep(1.0 / SLOW_RATE)
                    if i == MESSAGES - 1:
                        conn.process_data_events(time_limit=0.1)  # keep the last for after
                        continue
                in_flight = True
                ch.basic_publish(
                    "",
                    QUEUE,
                    b"payment %d" % i,
                    pika.BasicProperties(message_id="payment-%d" % i, delivery_mode=2),
                    mandatory=True,
                )
                # basic_publish in confirm mode returns when the broker confirmed it.
                in_flight = False
                confirmed.append(i)
                i += 1
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelClosed) as e:
            lost += 1
            log(
                "connection lost after %d confirmed payments (%s)"
                % (len(confirmed), type(e).__name__)
            )
            if in_flight:
                log("payment-%d was published but not confirmed: it will be published again" % i)
                republished.append(i)
                in_flight = False
            conn = connect_retrying(60)
            log("reconnected")
    conn.close()
    return confirmed, republished, lost


def main():
    setup = connect()
    ch = setup.channel()
    ch.queue_delete(QUEUE)
    setup.close()

    start = time.monotonic()
    confirmed, republished, lost = publish_all()
    log(
        "%d payments confirmed in %.1f s, %d connection(s) lost"
        % (len(confirmed), time.monotonic() - start, lost)
    )

    # After the restart: read everything back.
    conn = connect_retrying(30)
    ch = conn.channel()
    in_queue = ch.queue_declare(QUEUE, durable=True, passive=True).method.message_count
    seen = {}
    for method, props, _body in ch.consume(QUEUE, inactivity_timeout=2):
        if method is None:
            break
        seen[props.message_id] = seen.get(props.message_id, 0) + 1
        ch.basic_ack(method.delivery_tag)
    ch.queue_delete(QUEUE)
    conn.close()

    missing = [i for i in confirmed if "payment-%d" % i not in seen]
    duplicates = sum(n - 1 for n in seen.values())
    log(
        "read back %d messages: %d payments, %d missing, %d duplicates"
        % (in_queue, len(seen), len(missing), duplicates)
    )
    result(
        messages=MESSAGES,
        confirmed=len(confirmed),
        connections_lost=lost,
        republished=len(republished),
        in_queue=in_queue,
        received_unique=len(seen),
        missing=len(missing),
        duplicates=duplicates,
    )
    check(lost >= 1, "the broker was restarted during the run")
    check(not missing, "every confirmed payment survives the restart (missing: %s)" % missing[:5])
    check(duplicates <= len(republished), "only a payment published again may come twice")


if __name__ == "__main__":
    main()
