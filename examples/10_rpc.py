#!/usr/bin/python3
"""Scenario 10: request/reply (RPC) with direct reply-to and correlation ids.

A client asks a pricing service for quotes through the broker. Each request names where the
answer goes (`reply-to`) and carries a `correlation-id`; the service copies that id into its
reply so the client can tell which answer belongs to which request: with several servers,
answers come back in any order.

The reply address is `amq.rabbitmq.reply-to` (direct reply-to): the client consumes from that
pseudo-queue, in no-ack mode, on the channel it publishes its requests on, and the broker
routes replies straight to that channel. No reply queue is declared, and none is left behind
by a client that goes away.

A word of caution, printed by the numbers below. A call that blocks until its answer makes
the caller wait a full round trip per request, through the broker twice: it takes back the
decoupling a queue gives (the caller now depends on the server being up and fast, and nothing
is buffered for it). Prefer one-way messages where you can. RPC through a broker is still the
right tool when the caller really needs an answer and you want what the broker adds to a
plain HTTP call: load balancing over any number of servers without a registry, servers that
need no listening port, and requests that wait in the queue while servers restart. Then do
not block per call: send many requests and match the answers by correlation id (pipelining),
and always use a timeout, plus `mandatory` so that a request nobody can take comes back at
once instead of timing out.

Run: /usr/bin/python3 examples/10_rpc.py
"""

import json
import os
import threading
import time
import uuid

import pika

from common import check, connect, log, result

QUEUE = "ex10.quotes"
CALLS = int(os.environ.get("CALLS", "200"))
SERVERS = 2
REPLY_TO = "amq.rabbitmq.reply-to"


def price(item):
    return 100 + 7 * item


def server(stop, ready):
    conn = connect()
    ch = conn.channel()
    ch.queue_declare(QUEUE)
    ch.basic_qos(prefetch_count=10)

    def on_request(ch, method, props, body):
        item = json.loads(body)["item"]
        time.sleep((item % 3) / 1000.0)  # some quotes take longer: answers overtake each other
        ch.basic_publish(
            "",
            props.reply_to,  # the client's direct reply-to address
            json.dumps({"item": item, "price": price(item)}).encode(),
            pika.BasicProperties(correlation_id=props.correlation_id),
        )
        ch.basic_ack(method.delivery_tag)

    ch.basic_consume(QUEUE, on_request)
    ready.release()
    while not stop.is_set():
        conn.process_data_events(time_limit=0.05)
    conn.close()


class QuoteClient:
    def __init__(self):
        self.conn = connect()
        self.ch = self.conn.channel()
        self.answers = {}  # correlation id -> reply
        self.arrival = []  # correlation ids in the order the answers came
        self.returned = []  # requests the broker could not route (mandatory)
        # Direct reply-to: consume the pseudo-queue, no-ack, before publishing requests.
        self.ch.basic_consume(REPLY_TO, self.on_answer, auto_ack=True)
        self.ch.add_on_return_callback(self.on_return)

    def on_answer(self, ch, method, props, body):
        self.answers[props.correlation_id] = json.loads(body)
        self.arrival.append(props.correlation_id)

    def on_return(self, ch, method, props, body):
        self.returned.append((props.correlation_id, method.reply_text))

    def send(self, item, queue=QUEUE):
        cid = str(uuid.uuid4())
        self.ch.basic_publish(
            "",
            queue,
            json.dumps({"item": item}).encode(),
            pika.BasicProperties(reply_to=REPLY_TO, correlation_id=cid),
            mandatory=True,
        )
        return cid

    def wait(self, cids, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(c in self.answers or c in (r[0] for r in self.returned) for c in cids):
                break
            self.conn.process_data_events(time_limit=0.01)
        return [self.answers.get(c) for c in cids]

    def call(self, item, queue=QUEUE, timeout_s=5):
        """The blocking style: one request, wait for its answer."""
        return self.wait([self.send(item, queue)], timeout_s)[0]


def main():
    stop = threading.Event()
    ready = threading.Semaphore(0)
    servers = [threading.Thread(target=server, args=(stop, ready)) for _ in range(SERVERS)]
    for t in servers:
        t.start()
    for _ in servers:
        ready.acquire()

    client = QuoteClient()

    # Blocking calls, one after the other.
    blocking = CALLS // 10
    t0 = time.monotonic()
    wrong = sum(1 for i in range(blocking) if (client.call(i) or {}).get("price") != price(i))
    blocking_s = time.monotonic() - t0
    log(
        "blocking: %d calls in %.3f s, %.2f ms per call"
        % (blocking, blocking_s, 1000 * blocking_s / blocking)
    )

    # Pipelined: all requests out, then the answers, matched by correlation id.
    t0 = time.monotonic()
    cids = [client.send(i) for i in range(CALLS)]
    answers = client.wait(cids, 30)
    pipelined_s = time.monotonic() - t0
    answered = sum(1 for a in answers if a is not None)
    wrong += sum(1 for i, a in enumerate(answers) if a is not None and a["price"] != price(i))
    order = [cids.index(c) for c in client.arrival[-answered:] if c in cids]
    out_of_order = sum(1 for a, b in zip(order, order[1:]) if b < a)
    log(
        "pipelined: %d calls in %.3f s, %.2f ms per call; %d answers overtook an earlier request"
        % (CALLS, pipelined_s, 1000 * pipelined_s / CALLS, out_of_order)
    )

    # A request no server can take: mandatory brings it back at once (basic.return).
    t0 = time.monotonic()
    nobody = client.call(1, queue="ex10.no-such-service", timeout_s=5)
    returned_after = time.monotonic() - t0
    log(
        "a request to a missing service came back in %.1f ms: %s"
        % (1000 * returned_after, client.returned[-1][1] if client.returned else "no return")
    )

    stop.set()
    for t in servers:
        t.join()
    ch = client.ch
    ch.queue_delete(QUEUE)
    client.conn.close()

    result(
        calls=CALLS,
        blocking_calls=blocking,
        answered=answered,
        wrong=wrong,
        out_of_order=out_of_order,
        blocking_ms_per_call=round(1000 * blocking_s / blocking, 2),
        pipelined_ms_per_call=round(1000 * pipelined_s / CALLS, 2),
        returned=len(client.returned),
        return_reason=client.returned[-1][1] if client.returned else "none",
        returned_ms=round(1000 * returned_after),
    )
    check(answered == CALLS and wrong == 0, "every call gets its own answer")
    check(nobody is None and len(client.returned) == 1, "a request nobody takes comes back")


if __name__ == "__main__":
    main()
