#!/usr/bin/env bash
# Starts a real, OpenID Certified provider (node-oidc-provider 9.x, tests/oidc/provider.mjs) on
# 127.0.0.1 for the approver sign-in tests, and prints the environment they need:
#
#   eval "$(tests/oidc/start-provider.sh)"
#
# Prints `export` lines for OIDC_ISSUER (http://127.0.0.1:PORT), OIDC_CLIENT_ID,
# OIDC_CLIENT_SECRET and OIDC_REDIRECT_URIS. Its users are approver@demo.invalid and
# second@demo.invalid, password `demo` (as the simulator's), unless OIDC_USERS says otherwise
# (comma-separated email:password). Set before starting to change the defaults: OIDC_CLIENT_ID
# (gatehouse), OIDC_CLIENT_SECRET (gatehouse-test-secret), OIDC_REDIRECT_URIS
# (http://127.0.0.1:8080/v1/auth/callback), OIDC_LOOPBACK_ANY_PORT (1: a registered
# http://127.0.0.1:PORT/... redirect URI matches any port, RFC 8252 §7.3, so Gatehouse can listen on
# a free port; 0: exact match), OIDC_TOKEN_AUTH_METHOD (client_secret_basic), OIDC_CONSENT_FORM
# (0: consent granted without a page).
#
# Installs its npm packages from the lock file (npm ci) when missing. Idempotent: a provider this
# script already started and that still answers is reused (with the settings it was started with).
# Everything but the export lines goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/test-output"
pid_file="$out/oidc-provider.pid"
env_file="$out/oidc-provider.env"
log_file="$out/oidc-provider.log"
mkdir -p "$out"

answers() {
    node -e '
fetch(process.argv[1] + "/.well-known/openid-configuration", { signal: AbortSignal.timeout(2000) })
  .then((r) => r.json())
  .then((d) => process.exit(d.issuer === process.argv[1] ? 0 : 1), () => process.exit(1));
' "$1" >/dev/null 2>&1
}

# 1. The packages, once, from package-lock.json (offline-reproducible).
if ! (cd "$here" && node --input-type=module -e 'await import("oidc-provider")') >/dev/null 2>&1; then
    echo "start-provider: installing oidc-provider (npm ci) in $here" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

# 2. Reuse a running provider of ours.
if [[ -f "$pid_file" && -f "$env_file" ]]; then
    pid="$(cat "$pid_file")"
    issuer="$(sed -n 's/^export OIDC_ISSUER=//p' "$env_file")"
    if kill -0 "$pid" 2>/dev/null && answers "$issuer"; then
        echo "start-provider: oidc-provider already running (pid $pid, $issuer)" >&2
        cat "$env_file"
        exit 0
    fi
    rm -f "$pid_file" "$env_file"
fi

# 3. A free port, then the provider in the background, detached from our stdout so `$(...)` returns.
export OIDC_CLIENT_ID="${OIDC_CLIENT_ID:-gatehouse}"
export OIDC_CLIENT_SECRET="${OIDC_CLIENT_SECRET:-gatehouse-test-secret}"
export OIDC_REDIRECT_URIS="${OIDC_REDIRECT_URIS:-http://127.0.0.1:8080/v1/auth/callback}"
export OIDC_LOOPBACK_ANY_PORT="${OIDC_LOOPBACK_ANY_PORT:-1}"
port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
issuer="http://127.0.0.1:$port"
(cd "$here" && exec nohup node provider.mjs "$port") </dev/null >"$log_file" 2>&1 &
pid=$!
echo "$pid" >"$pid_file"

# 4. Wait until discovery answers (about a second; 30 s at most).
for _ in $(seq 1 150); do
    if answers "$issuer"; then
        {
            echo "export OIDC_ISSUER=$issuer"
            echo "export OIDC_CLIENT_ID=$OIDC_CLIENT_ID"
            echo "export OIDC_CLIENT_SECRET=$OIDC_CLIENT_SECRET"
            echo "export OIDC_REDIRECT_URIS=$OIDC_REDIRECT_URIS"
        } >"$env_file"
        echo "start-provider: oidc-provider listening at $issuer (pid $pid, log $log_file)" >&2
        cat "$env_file"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "start-provider: oidc-provider exited; its log:" >&2
        cat "$log_file" >&2
        rm -f "$pid_file"
        exit 1
    fi
    sleep 0.2
done
echo "start-provider: oidc-provider did not answer at $issuer within 30 s; its log:" >&2
cat "$log_file" >&2
kill "$pid" 2>/dev/null || true
rm -f "$pid_file"
exit 1
