#!/usr/bin/python3
"""Scenario 8: ordering across steps, and idempotent consumers.

Signing up is two steps: create the user, then send the welcome email, and the email must
never go out for a user that does not exist yet. Publishing both steps at once to two queues
would not guarantee it: two consumers on two queues run in any order. So the chain is
explicit: the "create user" worker publishes the "send welcome email" message only after the
user is stored (and only then acknowledges its own message). The order holds whichever
workers pick the messages up.

Delivery is at least once: a worker that dies after doing its work but before its ack reaches
the broker gets the message again, with `redelivered` set, on some worker. So each step is
idempotent: the create worker does not create a user twice (and publishes the email step
again, in case it died between storing and publishing), and the email worker remembers the
`message-id` of every email it sent and skips one it has seen. Here workers "crash" on
purpose (they drop their connection after the work, before the ack) on some messages.

Run: /usr/bin/python3 examples/08_ordering_idempotency.py
"""

import os
import threading
import time

import pika

from common import check, connect, log, result

CREATE_Q = "ex08.create-user"
EMAIL_Q = "ex08.welcome-email"
USERS = int(os.environ.get("USERS", "50"))
WORKERS = 2  # per step

# The "database", shared by the workers as a real one would be.
db_lock = threading.Lock()
users = {}  # user -> times created (must end at 1)
emails_sent = {}  # user -> times a welcome email went out (must end at 1)
email_ids_done = set()  # message-ids of emails already sent: the de-duplication table
stats = {"order_violations": 0, "duplicates_skipped": 0, "redelivered": 0, "crashes": 0}


def crash_here(step, user, redelivered):
    """Deterministic "crashes": the first delivery of every 7th user's create step and every
    5th user's email step dies after the work, before the ack."""
    n = int(user.split("-")[1])
    if redelivered:
        return False
    return (step == "create" and n % 7 == 3) or (step == "email" and n % 5 == 1)


def create_user_worker(stop):
    while not stop.is_set():
        conn = connect()
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_qos(prefetch_count=1)
        crashed = False
        for method, props, body in ch.consume(CREATE_Q, inactivity_timeout=0.1):
            if stop.is_set():
                break
            if method is None:
                continue
            user = body.decode()
            with db_lock:
                stats["redelivered"] += method.redelivered
                if user not in users:  # idempotent: a second delivery creates nothing
                    users[user] = 1
                elif not method.redelivered:
                    users[user] += 1  # would be a bug: a new message for an existing user
            # Only now, with the user stored, the next step. Published again on a
            # redelivery: the first attempt may have died before this line.
            ch.basic_publish(
                "",
                EMAIL_Q,
                user.encode(),
                pika.BasicProperties(message_id="welcome-" + user, delivery_mode=2),
            )
            if crash_here("create", user, method.redelivered):
                crashed = True
                break
            ch.basic_ack(method.delivery_tag)
        if crashed:
            with db_lock:
                stats["crashes"] += 1
        conn.close()  # with the crash's message unacked: the broker requeues it


def email_worker(stop):
    while not stop.is_set():
        conn = connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=1)
        crashed = False
        for method, props, body in ch.consume(EMAIL_Q, inactivity_timeout=0.1):
            if stop.is_set():
                break
            if method is None:
                continue
            user = body.decode()
            with db_lock:
                stats["redelivered"] += method.redelivered
                if user not in users:
                    stats["order_violations"] += 1  # an email for a user not created yet
                if props.message_id in email_ids_done:
                    stats["duplicates_skipped"] += 1  # sent before: do not send it twice
                else:
                    emails_sent[user] = emails_sent.get(user, 0) + 1  # "send" it
                    email_ids_done.add(props.message_id)
            if crash_here("email", user, method.redelivered):
                crashed = True
                break
            ch.basic_ack(method.delivery_tag)
        if crashed:
            with db_lock:
                stats["crashes"] += 1
        conn.close()


def main():
    conn = connect()
    ch = conn.channel()
    for q in (CREATE_Q, EMAIL_Q):
        ch.queue_delete(q)
        ch.queue_declare(q, durable=True)

    stop = threading.Event()
    threads = [threading.Thread(target=create_user_worker, args=(stop,)) for _ in range(WORKERS)]
    threads += [threading.Thread(target=email_worker, args=(stop,)) for _ in range(WORKERS)]
    for t in threads:
        t.start()

    # The sign-up form: one "create user" message per user; the email step is not its job.
    for i in range(USERS):
        props = pika.BasicProperties(message_id="create-user-%d" % i, delivery_mode=2)
        ch.basic_publish("", CREATE_Q, b"user-%d" % i, props)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with db_lock:
            if len(emails_sent) == USERS:
                break
        time.sleep(0.05)
    time.sleep(0.5)  # redeliveries still in flight would show up as duplicates now
    stop.set()
    for t in threads:
        t.join()
    left = sum(ch.queue_declare(q, passive=True).method.message_count for q in (CREATE_Q, EMAIL_Q))
    for q in (CREATE_Q, EMAIL_Q):
        ch.queue_delete(q)
    conn.close()

    log(
        "%d users created, %d welcome emails sent; %d crashes before an ack, %d redeliveries, "
        "%d duplicate emails skipped by message-id"
        % (
            len(users),
            len(emails_sent),
            stats["crashes"],
            stats["redelivered"],
            stats["duplicates_skipped"],
        )
    )
    result(
        users=USERS,
        created_once=sum(1 for n in users.values() if n == 1),
        emails_once=sum(1 for n in emails_sent.values() if n == 1),
        emails_twice=sum(1 for n in emails_sent.values() if n > 1),
        order_violations=stats["order_violations"],
        crashes=stats["crashes"],
        redelivered=stats["redelivered"],
        duplicates_skipped=stats["duplicates_skipped"],
        left_in_queues=left,
    )
    check(stats["order_violations"] == 0, "no email before its user exists")
    check(sorted(emails_sent.values()) == [1] * USERS, "one email per user")
    check(sorted(users.values()) == [1] * USERS, "each user created once")


if __name__ == "__main__":
    main()
