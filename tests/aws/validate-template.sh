#!/usr/bin/env bash
# Checks template.yaml offline (no credentials needed): cfn-lint, `sam validate --lint`, then the
# template as SAM's own translator turns it into CloudFormation (tests/aws/check-translated-template.py:
# the sweeper alone, no fixed names, log retention, alarm actions, each role against
# infra/aws/permissions.yaml, routes and settings wired).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-test"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
if [[ ! -x "$venv/bin/cfn-lint" || ! -x "$venv/bin/sam" ]]; then
    echo "validate-template: installing cfn-lint and aws-sam-cli into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check cfn-lint aws-sam-cli
fi
cd "$root"
"$venv/bin/cfn-lint" template.yaml
export SAM_CLI_TELEMETRY=0 AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}" \
    "$venv/bin/sam" validate --lint --template template.yaml
"$venv/bin/python" tests/aws/check-translated-template.py template.yaml
echo "validate-template: cfn-lint, sam validate --lint and the translated-template checks found no errors"
