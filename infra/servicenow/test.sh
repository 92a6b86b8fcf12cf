#!/usr/bin/env bash
# Runs the Node tests of the ServiceNow scripts against a real `gatehouse serve --demo`:
# starts it on a free port with a temporary data directory, exports GATEHOUSE_URL,
# GATEHOUSE_TOKEN, GATEHOUSE_DATA_DIR, GATEHOUSE_WEBHOOK_SECRET and GATEHOUSE_SN_SIM_URL (the demo's
# ServiceNow simulator, where the tests create the request items Gatehouse reads back at intake),
# runs `node --test`, and stops it again.
# Needs the binary built first (cargo build -p gatehouse --bin gatehouse) and Node 20.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${GATEHOUSE_BIN:-$root/target/debug/gatehouse}"

if [ ! -x "$bin" ]; then
  echo "infra/servicenow/test.sh: $bin is missing: run cargo build -p gatehouse --bin gatehouse first" >&2
  exit 1
fi
command -v node >/dev/null || { echo "infra/servicenow/test.sh: node (20 or later) is needed" >&2; exit 1; }

work="$(mktemp -d)"
serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The change webhook's HMAC secret: handed to serve too, for when it reads one from its environment.
GATEHOUSE_WEBHOOK_SECRET="whsec-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
export GATEHOUSE_WEBHOOK_SECRET
"$bin" serve --demo --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!

url="" token="" sn_sim=""
for _ in $(seq 1 300); do
  url="$(sed -n 's/^Gatehouse listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/serve.out" | head -n1)"
  token="$(sed -n 's/^GATEHOUSE_TOKEN=//p' "$work/serve.out" | head -n1)"
  # "ServiceNow simulator: http://127.0.0.1:PORT (request item ...)"
  sn_sim="$(sed -n 's/^ServiceNow simulator: \(http:\/\/[^ ]*\).*/\1/p' "$work/serve.out" | head -n1)"
  [ -n "$url" ] && [ -n "$token" ] && break
  if ! kill -0 "$serve_pid" 2>/dev/null; then
    echo "infra/servicenow/test.sh: gatehouse serve --demo exited:" >&2
    cat "$work/serve.err" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ] || [ -z "$token" ]; then
  echo "infra/servicenow/test.sh: gatehouse serve --demo printed no URL and token in 30 s" >&2
  cat "$work/serve.err" >&2
  exit 1
fi
for _ in $(seq 1 100); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

if [ -z "$sn_sim" ]; then
  echo "infra/servicenow/test.sh: gatehouse serve --demo printed no \"ServiceNow simulator: <url>\" line" >&2
  exit 1
fi

export GATEHOUSE_URL="$url" GATEHOUSE_TOKEN="$token" GATEHOUSE_DATA_DIR="$work/data"
export GATEHOUSE_SN_SIM_URL="${sn_sim%/}"
cd "$here"
status=0
node --test --test-concurrency=1 test/*.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "== gatehouse serve --demo (stderr, last 40 lines)" >&2
  tail -n 40 "$work/serve.err" >&2 || true
fi
exit "$status"
