#!/usr/bin/env bash
# Stops the SMTP server that tests/smtp/start-smtp.sh started (by its recorded pid). Idempotent.
# The received mail stays in test-output/smtp/mail for inspection until the next fresh start.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pid_file="$root/test-output/smtp.pid"
env_file="$root/test-output/smtp.env"

if [[ ! -f "$pid_file" ]]; then
    echo "stop-smtp: not running" >&2
    exit 0
fi
pid="$(cat "$pid_file")"
if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    echo "stop-smtp: stopped pid $pid" >&2
else
    echo "stop-smtp: pid $pid was not running" >&2
fi
rm -f "$pid_file" "$env_file"
