#!/usr/bin/python3
"""AMQPS as pika (Debian's python3-pika, BlockingConnection) and Python's ssl module see it:
the server certificate checked against the test CA and the name localhost, PLAIN and
EXTERNAL logins with a client certificate (ssl_cert_login_from = common_name), messages
both ways including one of 1 MiB, and the refusals: no client certificate
(fail_if_no_peer_cert), one from another CA, EXTERNAL for a certificate that names no user,
and a client that does not trust the server.

Run with /usr/bin/python3. Environment: AMQP_HOST, AMQPS_PORT and TLS_CERT_DIR (certificates
made by tests/unit/tls_certs.sh, which the broker uses: verify_peer, fail_if_no_peer_cert,
ssl_cert_login_from = common_name, user warren-client with password warren-pass). Prints one
line per check; exits 1 at the first failure.
"""

import os
import ssl
import sys

import pika
import pika.exceptions

HOST = os.environ.get("AMQP_HOST", "127.0.0.1")
PORT = int(os.environ["AMQPS_PORT"])
CERTS = os.environ["TLS_CERT_DIR"]
USER = "warren-client"
PASSWORD = "warren-pass"
REFUSED_EXTERNAL = ("ACCESS_REFUSED - Login was refused using authentication mechanism "
                    "EXTERNAL. For details see the broker logfile.")


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def context(client=None, ca="ca.pem"):
    """A client TLS context that checks the server against ca and may show a certificate."""
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if client is not None:
        ctx.load_cert_chain(os.path.join(CERTS, client + ".pem"),
                            os.path.join(CERTS, client + ".key"))
    return ctx


def connect(client="client", credentials=None, ca="ca.pem", max_version=None):
    ctx = context(client, ca)
    if max_version is not None:
        ctx.maximum_version = max_version
    params = pika.ConnectionParameters(
        "localhost", PORT,
        credentials=credentials or pika.PlainCredentials(USER, PASSWORD),
        ssl_options=pika.SSLOptions(ctx, "localhost"),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5)
    return pika.BlockingConnection(params)


def round_trip(conn, size):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    body = bytes((i * 7 + i // 251) & 0xFF for i in range(size))
    ch.basic_publish("", q, body)
    method, _, got = ch.basic_get(q, auto_ack=True)
    expect(method is not None, "basic.get of the message just published")
    expect(got == body, "body of %d bytes came back changed" % size)
    return ch, q


def refused(what, **kwargs):
    """connect(**kwargs) must fail; returns the exception."""
    try:
        conn = connect(**kwargs)
    except (pika.exceptions.AMQPError, ssl.SSLError, OSError) as e:
        return e
    conn.close()
    raise CheckFailed("%s: the connection was accepted" % what)


def check_plain_with_certificate():
    conn = connect()
    round_trip(conn, 10)
    round_trip(conn, 1 << 20)
    conn.close()


def check_tls_1_2_only_client():
    conn = connect(max_version=ssl.TLSVersion.TLSv1_2)
    round_trip(conn, 100)
    conn.close()


def check_external_takes_the_common_name():
    conn = connect(credentials=pika.credentials.ExternalCredentials())
    ch, q = round_trip(conn, 10)
    # The user is the certificate's CN: a user-id naming it passes RabbitMQ's validation.
    ch.basic_publish("", q, b"from a certificate", pika.BasicProperties(user_id=USER))
    method, props, _ = ch.basic_get(q, auto_ack=True)
    expect(method is not None and props.user_id == USER, "user-id %r" % (props and props.user_id))
    conn.close()


def check_external_for_no_user_is_refused():
    e = refused("EXTERNAL as CN=stranger", client="stranger",
                credentials=pika.credentials.ExternalCredentials())
    expect(isinstance(e, pika.exceptions.ProbableAuthenticationError),
           "EXTERNAL as a stranger: %r" % e)
    expect(REFUSED_EXTERNAL in str(e), "refusal text: %s" % e)


def check_no_client_certificate_is_refused():
    e = refused("no client certificate", client=None)
    expect(not isinstance(e, pika.exceptions.ProbableAuthenticationError),
           "refused in the TLS handshake, not at login: %r" % e)


def check_certificate_from_another_ca_is_refused():
    e = refused("a certificate from another CA", client="untrusted")
    expect(not isinstance(e, pika.exceptions.ProbableAuthenticationError),
           "refused in the TLS handshake, not at login: %r" % e)


def check_server_is_checked_by_the_client():
    e = refused("a client trusting another CA", ca="other-ca.pem")
    text = repr(e)
    expect("CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text,
           "the client's own verification failed: %s" % text)


CHECKS = [
    check_plain_with_certificate,
    check_tls_1_2_only_client,
    check_external_takes_the_common_name,
    check_external_for_no_user_is_refused,
    check_no_client_certificate_is_refused,
    check_certificate_from_another_ca_is_refused,
    check_server_is_checked_by_the_client,
]


def main():
    for check in CHECKS:
        try:
            check()
        except CheckFailed as e:
            print("FAIL %s: %s" % (check.__name__, e))
            return 1
        except Exception as e:  # an unexpected exception is a failure too, with its name
            print("FAIL %s: %s: %s" % (check.__name__, type(e).__name__, e))
            return 1
        print("ok   %s" % check.__name__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
