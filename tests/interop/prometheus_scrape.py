#!/usr/bin/python3
"""A real Prometheus server (Debian's prometheus) scrapes the broker's /metrics, and its query
API returns a queue's depth: the exposition is valid for Prometheus itself, not just for our
own parser.

Environment: PROMETHEUS (the program), MGMT_URL (to make the queue), METRICS_URL (the scrape
target), optionally MGMT_USER/MGMT_PASS. Exits 0 on success, 1 on failure.
"""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

MGMT = urllib.parse.urlsplit(os.environ.get("MGMT_URL", "http://127.0.0.1:15672"))
METRICS = urllib.parse.urlsplit(os.environ.get("METRICS_URL", "http://127.0.0.1:15692"))
PROMETHEUS = os.environ.get("PROMETHEUS", "prometheus")
USER = os.environ.get("MGMT_USER", "guest")
PASS = os.environ.get("MGMT_PASS", "guest")
QUEUE = "prom.%d" % os.getpid()


def call(url, method, path, body=None, auth=True):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % (USER, PASS)).encode()).decode()
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fail(why):
    print("FAIL: " + why)
    return 1


def main():
    qpath = "/api/queues/%2F/" + urllib.parse.quote(QUEUE, safe="")
    status, _ = call(MGMT, "PUT", qpath, {"durable": False})
    if status != 201:
        return fail("cannot declare the queue (HTTP %d)" % status)
    for i in range(3):
        call(MGMT, "POST", "/api/exchanges/%2F/amq.default/publish",
             {"properties": {}, "routing_key": QUEUE, "payload": "m%d" % i,
              "payload_encoding": "string"})
    tmp = tempfile.mkdtemp(prefix="warren-prometheus-")
    port = free_port()
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: warren\n    metrics_path: /metrics\n"
                "    static_configs:\n      - targets: ['%s:%d']\n"
                % (METRICS.hostname, METRICS.port))
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    proc = subprocess.Popen([PROMETHEUS, "--config.file=" + config,
                             "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    api = urllib.parse.urlsplit("http://127.0.0.1:%d" % port)
    rc = 1
    try:
        query = 'rabbitmq_queue_messages_ready{job="warren",queue="%s",vhost="/"}' % QUEUE
        deadline = time.time() + 60
        last = None
        while time.time() < deadline:
            if proc.poll() is not None:
                break
            try:
                status, data = call(api, "GET", "/api/v1/query?query=" +
                                    urllib.parse.quote(query), auth=False)
                last = data
                result = json.loads(data)["data"]["result"] if status == 200 else []
                if result and result[0]["value"][1] == "3":
                    status, data = call(api, "GET", "/api/v1/query?query=" +
                                        urllib.parse.quote('up{job="warren"}'), auth=False)
                    up = json.loads(data)["data"]["result"][0]["value"][1]
                    if up != "1":
                        print("FAIL: up{job=\"warren\"} is %s" % up)
                        break
                    print("ok: Prometheus scraped the queue's depth: %s = 3" % query)
                    rc = 0
                    break
            except (OSError, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.5)
        if rc != 0:
            print("FAIL: Prometheus never answered 3 for %s (last answer: %r)" % (query, last))
            log.flush()
            print(open(os.path.join(tmp, "prometheus.log")).read()[-3000:])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
        call(MGMT, "DELETE", qpath)
    return rc


if __name__ == "__main__":
    sys.exit(main())
