#!/usr/bin/env bash
# Lints template.yaml offline: cfn-lint and `sam validate --lint` (no credentials needed).
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
SAM_CLI_TELEMETRY=0 AWS_REGION="${AWS_REGION:-us-east-1}" AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" \
    AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}" \
    "$venv/bin/sam" validate --lint --template template.yaml
echo "validate-template: cfn-lint and sam validate --lint found no errors"
