#!/usr/bin/python3
"""A real Prometheus server (Debian's prometheus) scrapes the broker's /metrics,
/metrics/per-object and /metrics/detailed (family=queue_coarse_metrics, vhost=/, as a
Prometheus job passes parameters), and its query API returns a queue's depth from each: the
expositions are valid for Prometheus itself, not just for our own parser. A fourth job asks
/metrics/detailed for another vhost only, and gets no series of the queue. A stream's series
(warren_stream_messages, with Warren) come through /metrics/per-object too.

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
STREAM = QUEUE + ".stream"
WARREN = os.environ.get("WARREN") == "1"
JOBS = [("warren", "/metrics", None),
        ("warren-per-object", "/metrics/per-object", None),
        ("warren-detailed", "/metrics/detailed", {"family": "queue_coarse_metrics", "vhost": "/"}),
        ("warren-other-vhost", "/metrics/detailed",
         {"family": "queue_coarse_metrics", "vhost": "no-such-vhost"})]


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
    spath = "/api/queues/%2F/" + urllib.parse.quote(STREAM, safe="")
    status, _ = call(MGMT, "PUT", spath,
                     {"durable": True, "arguments": {"x-queue-type": "stream"}})
    if status != 201:
        return fail("cannot declare the stream (HTTP %d)" % status)
    for i in range(3):
        for q in (QUEUE, STREAM):
            call(MGMT, "POST", "/api/exchanges/%2F/amq.default/publish",
                 {"properties": {}, "routing_key": q, "payload": "m%d" % i,
                  "payload_encoding": "string"})
    tmp = tempfile.mkdtemp(prefix="warren-prometheus-")
    port = free_port()
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
        for job, path, params in JOBS:
            f.write("  - job_name: %s\n    metrics_path: %s\n" % (job, path))
            if params:
                f.write("    params:\n")
                for k, v in params.items():
                    f.write("      %s: [%s]\n" % (k, json.dumps(v)))
            f.write("    static_configs:\n      - targets: ['%s:%d']\n"
                    % (METRICS.hostname, METRICS.port))
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    proc = subprocess.Popen([PROMETHEUS, "--config.file=" + config,
                             "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    api = urllib.parse.urlsplit("http://127.0.0.1:%d" % port)
    rc = 1
    try:
        # (job, query, the value it must reach; None: no series at all)
        wanted = [(job, '%s{job="%s",queue="%s",vhost="/"}' % (metric, job, QUEUE), value)
                  for job, metric, value in
                  [("warren", "rabbitmq_queue_messages_ready", "3"),
                   ("warren-per-object", "rabbitmq_queue_messages_ready", "3"),
                   ("warren-detailed", "rabbitmq_detailed_queue_messages_ready", "3"),
                   ("warren-other-vhost", "rabbitmq_detailed_queue_messages_ready", None)]]
        if WARREN:
            wanted.append(("warren-per-object", 'warren_stream_messages{job="warren-per-object",'
                           'queue="%s",vhost="/"}' % STREAM, "3"))
        deadline = time.time() + 60
        last = None
        pending = list(wanted)
        while time.time() < deadline and pending:
            if proc.poll() is not None:
                break
            job, query, value = pending[0]
            try:
                status, data = call(api, "GET", "/api/v1/query?query=" +
                                    urllib.parse.quote('up{job="%s"}' % job), auth=False)
                up = json.loads(data)["data"]["result"] if status == 200 else []
                status, data = call(api, "GET", "/api/v1/query?query=" +
                                    urllib.parse.quote(query), auth=False)
                last = (query, data)
                result = json.loads(data)["data"]["result"] if status == 200 else []
                if up and up[0]["value"][1] == "1" and (
                        (value is None and result == []) or
                        (result and result[0]["value"][1] == value)):
                    print("ok: Prometheus scraped job %s: %s = %s" % (job, query, value))
                    pending.pop(0)
                    continue
            except (OSError, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.5)
        if not pending:
            rc = 0
        else:
            print("FAIL: Prometheus never answered as expected for %s (last answer: %r)"
                  % (pending[0][1], last))
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
        call(MGMT, "DELETE", spath)
    return rc


if __name__ == "__main__":
    sys.exit(main())
