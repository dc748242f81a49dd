#!/bin/sh
# Scans a local warrend's TLS listener with testssl.sh (Debian package testssl.sh, installed
# here if missing) and reports weak protocols, ciphers and known TLS vulnerabilities.
#
#   bench/tls_scan.sh [extra warren.conf lines...]
#
# warrend is $WARREND (default: src/warrend under the current directory, a build
# directory). It gets certificates made by tests/unit/tls_certs.sh (valid a year, so that
# expiry does not show up) and a TLS listener on a free loopback port; each argument is one
# more configuration line, e.g. 'ssl_options.versions.1 = tlsv1.2' 'ssl_options.versions.2 =
# tlsv1.1' to see what TLS 1.1 costs (the first versions line replaces the default list).
# With TLS_SCAN_TARGET=host:port it scans that listener instead and starts nothing (to
# compare with a RabbitMQ TLS listener, say); TLS_SCAN_CA names the CA file to trust then.
#
# The verdict counts what the server's TLS settings decide (protocols, ciphers, key
# exchange, vulnerabilities); what testssl.sh says about the test certificates themselves
# (no revocation URL, a private CA...) is listed apart. Exit status: 0 when no finding of
# the first kind reaches MEDIUM, 1 when one does, 2 when the scan could not run.
# A scan takes one to two minutes: testssl.sh makes hundreds of handshakes.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/.." && pwd)
warrend=${WARREND:-$(pwd)/src/warrend}
python=/usr/bin/python3

if ! command -v testssl >/dev/null 2>&1; then
    echo "tls_scan: installing testssl.sh (apt)" >&2
    apt-get install -y testssl.sh >/dev/null || { echo "tls_scan: cannot install testssl.sh" >&2; exit 2; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tls_scan.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ -n "${TLS_SCAN_TARGET:-}" ]; then
    target=$TLS_SCAN_TARGET
    ca=${TLS_SCAN_CA:-}
    echo "tls_scan: scanning $target"
else
    [ -x "$warrend" ] || { echo "tls_scan: no warrend at $warrend (set WARREND)" >&2; exit 2; }
    TLS_CERT_DAYS=365 sh "$srcdir/tests/unit/tls_certs.sh" "$work/certs"
    ca=$work/certs/ca.pem
    tcp_port=$(free_port)
    tls_port=$(free_port)
    {
        echo "listeners.tcp.default = 127.0.0.1:$tcp_port"
        echo "listeners.ssl.default = 127.0.0.1:$tls_port"
        echo "ssl_options.certfile = $work/certs/server.pem"
        echo "ssl_options.keyfile = $work/certs/server.key"
        echo "ssl_options.cacertfile = $ca"
        echo "management.tcp.port = 0"
        echo "prometheus.tcp.port = 0"
        for line in "$@"; do echo "$line"; done
    } >"$work/warren.conf"
    "$warrend" -c "$work/warren.conf" --data-dir "$work/data" >"$work/warrend.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        grep -q 'ready: listening' "$work/warrend.log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q 'ready: listening' "$work/warrend.log"; then
        echo "tls_scan: warrend did not start:" >&2
        cat "$work/warrend.log" >&2
        exit 2
    fi
    target=127.0.0.1:$tls_port
    echo "tls_scan: $("$warrend" --version) on $target, configured with:"
    sed 's/^/    /' "$work/warren.conf"
fi

# Protocols, cipher categories, forward secrecy, server defaults and vulnerabilities; not
# the per-cipher list (-E), which adds minutes and no verdict.
set -- --quiet --color 0 --warnings off --openssl-timeout 5 \
    --protocols --std --fs --server-defaults --vulnerable --jsonfile "$work/scan.json"
[ -n "$ca" ] && set -- "$@" --add-ca "$ca"
testssl "$@" "$target" >"$work/scan.txt" 2>&1 || true
[ -s "$work/scan.json" ] || { echo "tls_scan: testssl.sh produced no results:" >&2; cat "$work/scan.txt" >&2; exit 2; }

"$python" - "$work/scan.json" <<'EOF'
import json
import sys

ORDER = ["OK", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
with open(sys.argv[1]) as f:
    findings = json.load(f)


def rank(f):
    s = f.get("severity", "INFO")
    return ORDER.index(s) if s in ORDER else 1


def about_certificate(f):
    # Properties of the certificate and its PKI, not of the server's TLS settings.
    i = f["id"]
    return i.startswith("cert") or i.startswith("intermediate_cert") or i in (
        "DNS_CAArecord", "chain_of_trust", "OCSP_stapling")


print("protocols:")
for f in findings:
    if f["id"] in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"):
        print("  %-7s %s" % (f["id"], f["finding"]))
print("cipher categories:")
for f in findings:
    if f["id"].startswith("cipherlist_"):
        print("  %-28s %s [%s]" % (f["id"][len("cipherlist_"):], f["finding"], f["severity"]))
settings = [f for f in findings if rank(f) >= ORDER.index("LOW") and not about_certificate(f)]
certificate = [f for f in findings if rank(f) >= ORDER.index("LOW") and about_certificate(f)]
print("TLS settings, findings of severity LOW or above: %d" % len(settings))
for f in sorted(settings, key=rank, reverse=True):
    print("  [%s] %s: %s" % (f["severity"], f["id"], f["finding"]))
print("test certificate, findings of severity LOW or above (not counted): %d" % len(certificate))
for f in sorted(certificate, key=rank, reverse=True):
    print("  [%s] %s: %s" % (f["severity"], f["id"], f["finding"]))
sys.exit(1 if any(rank(f) >= ORDER.index("MEDIUM") for f in settings) else 0)
EOF
