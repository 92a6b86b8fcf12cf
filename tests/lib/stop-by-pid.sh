#!/usr/bin/env bash
# Stops a test server by the pid its start script recorded, then removes the pid file and the other
# files given. Idempotent. Usage: stop-by-pid.sh LABEL PID_FILE [FILE...]
set -euo pipefail
label="$1"
pid_file="$2"
shift 2

if [[ ! -f "$pid_file" ]]; then
    echo "$label: not running" >&2
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
    echo "$label: stopped pid $pid" >&2
else
    echo "$label: pid $pid was not running" >&2
fi
rm -f "$pid_file" "$@"
