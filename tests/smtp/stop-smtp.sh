#!/usr/bin/env bash
# Stops the SMTP server that tests/smtp/start-smtp.sh started (by its recorded pid). Idempotent.
# The received mail stays in test-output/smtp/mail for inspection until the next fresh start.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
exec "$root/tests/lib/stop-by-pid.sh" stop-smtp "$root/test-output/smtp.pid" "$root/test-output/smtp.env"
