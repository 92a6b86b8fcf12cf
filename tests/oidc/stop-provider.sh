#!/usr/bin/env bash
# Stops the oidc-provider that tests/oidc/start-provider.sh started (by its recorded pid). Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pid_file="$root/test-output/oidc-provider.pid"
env_file="$root/test-output/oidc-provider.env"

if [[ ! -f "$pid_file" ]]; then
    echo "stop-provider: not running" >&2
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
    echo "stop-provider: stopped pid $pid" >&2
else
    echo "stop-provider: pid $pid was not running" >&2
fi
rm -f "$pid_file" "$env_file"
