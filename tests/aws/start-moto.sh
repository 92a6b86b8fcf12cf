#!/usr/bin/env bash
# Starts moto (a local AWS-compatible server: DynamoDB with transactions, SES v2) on 127.0.0.1 for
# the AWS adapter tests, and prints the environment they need:
#
#   eval "$(tests/aws/start-moto.sh)"
#
# moto runs SINGLE-THREADED: its threaded server does not make conditional writes atomic, so the
# store contract's race would have more than one winner. Idempotent: a moto this script already
# started and that still answers is reused. Everything but the export lines goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-test"
out="$root/test-output"
pid_file="$out/moto.pid"
port_file="$out/moto.port"
log_file="$out/moto.log"
mkdir -p "$out"

print_env() {
    echo "export GATEHOUSE_TEST_AWS_ENDPOINT=http://127.0.0.1:$1"
    echo "export AWS_REGION=us-east-1"
    echo "export AWS_ACCESS_KEY_ID=testing"
    echo "export AWS_SECRET_ACCESS_KEY=testing"
}

answers() {
    "$venv/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/data.json", timeout=2).read()
PY
}

# 1. The venv, once (about a minute the first time).
if ! "$venv/bin/python" -c 'import moto.moto_server.werkzeug_app' >/dev/null 2>&1; then
    echo "start-moto: installing moto[server] into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]' >&2
fi

# 2. Reuse a running moto of ours.
if [[ -f "$pid_file" && -f "$port_file" ]]; then
    pid="$(cat "$pid_file")"
    port="$(cat "$port_file")"
    if kill -0 "$pid" 2>/dev/null && answers "$port"; then
        echo "start-moto: moto already running (pid $pid, port $port)" >&2
        print_env "$port"
        exit 0
    fi
    rm -f "$pid_file" "$port_file"
fi

# 3. A free port, then moto in the background, detached from our stdout so `$(...)` returns.
port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
nohup "$venv/bin/python" -c "
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app, MotoRequestHandler
run_simple('127.0.0.1', $port, DomainDispatcherApplication(create_backend_app), threaded=False, request_handler=MotoRequestHandler)
" </dev/null >"$log_file" 2>&1 &
pid=$!
echo "$pid" >"$pid_file"
echo "$port" >"$port_file"

# 4. Wait until it answers (about a second; 30 s at most).
for _ in $(seq 1 150); do
    if answers "$port"; then
        echo "start-moto: moto listening on 127.0.0.1:$port (pid $pid, log $log_file)" >&2
        print_env "$port"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "start-moto: moto exited; its log:" >&2
        cat "$log_file" >&2
        rm -f "$pid_file" "$port_file"
        exit 1
    fi
    sleep 0.2
done
echo "start-moto: moto did not answer on port $port within 30 s; its log:" >&2
cat "$log_file" >&2
kill "$pid" 2>/dev/null || true
rm -f "$pid_file" "$port_file"
exit 1
