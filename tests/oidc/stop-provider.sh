#!/usr/bin/env bash
# Stops the oidc-provider that tests/oidc/start-provider.sh started (by its recorded pid). Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
exec "$root/tests/lib/stop-by-pid.sh" stop-provider "$root/test-output/oidc-provider.pid" \
    "$root/test-output/oidc-provider.env"
