#!/usr/bin/python3
"""A stall of the broker, as its clients see it: the broker is stopped (SIGSTOP) for 3.5 s
and continued. After SIGCONT what the clients sent meanwhile waits in the broker's sockets,
and the broker must read it before it judges anyone.

- Eight clients negotiate heartbeat = 1 s and send a heartbeat frame every 0.4 s, from a
  thread that goes on during the stall, which is longer than the two intervals after which
  a silent client counts as gone: 3 s after SIGCONT every one is still connected (a
  channel.open round trip works).
- A client that negotiated heartbeats and sends nothing at all is still dropped for missed
  heartbeats.
- A client that got connection.start just before the stall and sent the rest of its
  handshake during it, all of it within the broker's handshake_timeout (1 s here, which the
  stall outlasts), is let in: it gets connection.open-ok.

Environment: AMQP_HOST, AMQP_PORT, WARREND_PID, WARREND_LOG (the wrapper sets them).
Prints one line per check; exits 1 if any failed.
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawclient  # noqa: E402

HOST, PORT = rawclient.broker_address()
PID = int(os.environ["WARREND_PID"])
LOG = os.environ["WARREND_LOG"]
CLIENTS = 8
STALL_S = 3.5

failures = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def send_heartbeats(clients, stop):
    while not stop.wait(0.4):
        for c in clients:
            try:
                c.heartbeat()
            except OSError:
                pass


def main():
    clients = [rawclient.Client(HOST, PORT, heartbeat=1) for _ in range(CLIENTS)]
    silent = rawclient.Client(HOST, PORT, heartbeat=1)
    stop = threading.Event()
    beater = threading.Thread(target=send_heartbeats, args=(clients, stop))
    beater.start()
    try:
        time.sleep(1.0)
        late = rawclient.Client(HOST, PORT, login=False)
        late.send(rawclient.PROTOCOL_HEADER)
        late.expect_method(rawclient.CONNECTION_START, 5.0)
        os.kill(PID, signal.SIGSTOP)
        try:
            late.send(rawclient.start_ok() + rawclient.tune_ok() + rawclient.connection_open())
            time.sleep(STALL_S)
        finally:
            os.kill(PID, signal.SIGCONT)
        time.sleep(3.0)
    finally:
        stop.set()
        beater.join()

    alive = 0
    for i, c in enumerate(clients):
        try:
            c.channel_open(1)
            alive += 1
        except (rawclient.Closed, OSError) as e:
            print("client %d: %s" % (i, e))
    check(alive == CLIENTS, "%d of %d clients that kept sending heartbeats through a %.1f s "
          "stall are still connected" % (alive, CLIENTS, STALL_S))
    try:
        silent.channel_open(1)
        dropped = False
    except (rawclient.Closed, OSError):
        dropped = True
    check(dropped, "a client that sent no heartbeats was dropped")
    with open(LOG, errors="replace") as f:
        missed = sum("missed heartbeats" in line for line in f)
    check(missed == 1, "'missed heartbeats' logged %d time(s): for the silent client only" % missed)
    try:
        late.expect_method(rawclient.CONNECTION_OPEN_OK, 5.0)
        opened = True
    except (rawclient.Closed, OSError) as e:
        print("handshake: %s" % e)
        opened = False
    check(opened, "a handshake sent in time during the stall gets connection.open-ok")

    for c in clients:
        c.close()
    silent.sock.close()
    late.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
