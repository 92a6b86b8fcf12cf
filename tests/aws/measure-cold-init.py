#!/usr/bin/env python3
"""Measures a Lambda bootstrap's cold start locally, without Docker: plays the Lambda Runtime API
on 127.0.0.1, starts the bootstrap, hands it one event, and reports the time from process start to
its first response, and its peak RSS.

    tests/aws/measure-cold-init.py BOOTSTRAP EVENT.json [KEY=VALUE ...]

The KEY=VALUE pairs are the function's environment (GATEHOUSE_* settings). No secrets fetch is
involved unless GATEHOUSE_SECRET_ARN is given (DESIGN.md's target excludes it).
"""
import http.server
import json
import os
import subprocess
import sys
import threading
import time

bootstrap, event_file, *pairs = sys.argv[1:]
event = open(event_file, "rb").read()
done = threading.Event()
result = {}


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    served = False

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith("/invocation/next"):
            if RuntimeApi.served:
                done.wait()
                time.sleep(3600)
            RuntimeApi.served = True
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "local-cold-start-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:gatehouse")
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(event)))
            self.end_headers()
            self.wfile.write(event)
        else:
            self.send_response(404)
            self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        result["at"] = time.monotonic()
        result["path"] = self.path
        result["body"] = body[:300]
        self.send_response(202)
        self.end_headers()
        done.set()


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
threading.Thread(target=server.serve_forever, daemon=True).start()
env = {
    "PATH": "/usr/bin:/bin",
    "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
    "AWS_LAMBDA_FUNCTION_NAME": "gatehouse",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_REGION": "us-east-1",
    **dict(p.split("=", 1) for p in pairs),
}
started = time.monotonic()
proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
if not done.wait(30):
    proc.kill()
    sys.exit("no response within 30 s: " + proc.stderr.read().decode(errors="replace")[-2000:])
rss_kb = 0
with open(f"/proc/{proc.pid}/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            rss_kb = int(line.split()[1])
proc.kill()
proc.wait()
print(f"start → first response: {(result['at'] - started) * 1000:.1f} ms; peak RSS {rss_kb / 1024:.1f} MiB; {result['path']}")
print(f"response: {result['body'].decode(errors='replace')}")
