#!/usr/bin/env bash
# Browser tests of the demo portal and the audit page: headless Chromium (Debian's package) driven
# by playwright-core. Installs what it needs, builds target/debug/gatehouse (unless GATEHOUSE_BIN
# names a binary to test), starts it with --demo on a free port and a fresh data dir, runs
# portal.test.mjs then audit.test.mjs (BROWSER_TESTS="audit" runs only that one), and always stops
# the server again.
# Screenshots land in test-output/screenshots/, the server's log in test-output/browser-serve.log.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${GATEHOUSE_BIN:-$root/target/debug/gatehouse}"
out="$root/test-output"
shots="$out/screenshots"

if [[ -z "${GATEHOUSE_BIN:-}" ]]; then
  echo "== building gatehouse (cargo build -p gatehouse --bin gatehouse)"
  (cd "$root" && cargo build -q -p gatehouse --bin gatehouse)
fi
if [[ ! -x "$bin" ]]; then
  echo "no $bin: build it first (cargo build -p gatehouse --bin gatehouse)" >&2
  exit 1
fi

if [[ ! -x /usr/bin/chromium ]]; then
  echo "== installing Debian's chromium"
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

echo "== installing playwright-core (npm ci)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

mkdir -p "$shots"
rm -f "$shots"/*.png
data="$(mktemp -d)"
log="$out/browser-serve.log"
pid=""
stop() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap stop EXIT

echo "== starting gatehouse serve --demo"
# Port 0: the system picks a free port; serve prints the address it got.
"$bin" serve --demo --listen 127.0.0.1:0 --data-dir "$data" >"$log" 2>&1 &
pid=$!

url="" token=""
for _ in $(seq 1 300); do
  url="$(sed -n 's/^Gatehouse listening on \(http:[^ ]*\).*/\1/p' "$log" | head -n1)"
  token="$(sed -n 's/^GATEHOUSE_TOKEN=//p' "$log" | head -n1)"
  [[ -n "$url" && -n "$token" ]] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "gatehouse serve exited early:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$url" || -z "$token" ]]; then
  echo "gatehouse serve printed no address and GATEHOUSE_TOKEN= within 30 s:" >&2
  cat "$log" >&2
  exit 1
fi
echo "   $url"

status=0
# The demo portal, then the audit page (BROWSER_TESTS="audit" runs one of them).
for test in ${BROWSER_TESTS:-portal audit}; do
  echo "== browser test ($test.test.mjs)"
  one=0
  GATEHOUSE_URL="$url" GATEHOUSE_TOKEN="$token" SCREENSHOT_DIR="$shots" \
    node "$here/$test.test.mjs" || one=$?
  if [[ $one -ne 0 ]]; then
    status=$one
    echo "browser test $test failed; the server's log ($log) ends with:" >&2
    tail -n 40 "$log" >&2
  fi
done
exit $status
