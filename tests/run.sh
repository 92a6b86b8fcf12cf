#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs and starts what the tests need on 127.0.0.1,
# runs every test, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

# One build from scratch: incremental state would only fill the disk (about 2 GB here), never be reused.
export CARGO_INCREMENTAL=0

out=test-output
mkdir -p "$out"

echo "== local AWS (moto, single-threaded) for the DynamoDB and SES adapters"
eval "$(tests/aws/start-moto.sh)"
trap 'tests/aws/stop-moto.sh' EXIT

echo "== a real OpenID provider (node-oidc-provider) for the approver sign-in tests"
eval "$(tests/oidc/start-provider.sh)"
trap 'tests/oidc/stop-provider.sh; tests/aws/stop-moto.sh' EXIT

echo "== a real SMTP server (aiosmtpd: STARTTLS with a throw-away CA, AUTH) for the mail tests"
eval "$(tests/smtp/start-smtp.sh)"
trap 'tests/smtp/stop-smtp.sh; tests/oidc/stop-provider.sh; tests/aws/stop-moto.sh' EXIT

echo "== template.yaml: cfn-lint and sam validate --lint (offline)"
tests/aws/validate-template.sh

echo "== /openapi.json: OpenAPI 3.1 schema and its examples (offline)"
tests/aws/validate-openapi.sh

echo "== GitLab CI component, template and README examples (check-jsonschema) and the CLI Dockerfile (hadolint), offline"
tests/gitlab/validate.sh

echo "== build (the end-to-end tests start the gatehouse and simulator binaries)"
cargo build --workspace --bins --quiet

echo "== cargo test (unit, store contract on SQLite and DynamoDB, end-to-end)"
cargo test --workspace --all-targets --no-fail-fast --quiet 2>&1 | tee "$out/cargo-test.log"

echo "== ServiceNow scripts (Node tests against gatehouse serve --demo through a shim of ServiceNow)"
infra/servicenow/test.sh

echo "== browser test of the demo portal (Debian chromium + playwright-core)"
tests/browser/run.sh
