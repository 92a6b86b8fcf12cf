#!/usr/bin/env bash
# Stops the moto that tests/aws/start-moto.sh started (by its recorded pid). Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
exec "$root/tests/lib/stop-by-pid.sh" stop-moto "$root/test-output/moto.pid" "$root/test-output/moto.port"
