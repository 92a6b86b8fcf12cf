#!/usr/bin/env bash
# Validates the served OpenAPI document (shared/http/src/openapi.json) offline: the OpenAPI 3.1
# schema (openapi-spec-validator), and every example in it against the schema it illustrates.
# Which routes it lists and with which scopes is checked against the code by tests/e2e/openapi.rs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-test"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import openapi_spec_validator" 2>/dev/null; then
    echo "validate-openapi: installing openapi-spec-validator into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check openapi-spec-validator
fi
"$venv/bin/python" - "$root/shared/http/src/openapi.json" <<'PY'
import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    doc = json.load(f)
validate(doc)

problems = []


def check(schema, example, where):
    # "#/components/..." references resolve against a root that carries the components.
    root = {**schema, "components": doc["components"]}
    for error in Draft202012Validator(root).iter_errors(example):
        problems.append(f"{where}: {error.message} (at {'/'.join(map(str, error.absolute_path))})")


def walk(node, where):
    if isinstance(node, dict):
        if "schema" in node and "example" in node:
            check(node["schema"], node["example"], where + "/example")
        if isinstance(node.get("examples"), list) and ("type" in node or "$ref" in node):
            for i, example in enumerate(node["examples"]):
                check({k: v for k, v in node.items() if k != "examples"}, example, f"{where}/examples/{i}")
        for key, value in node.items():
            walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk(value, f"{where}/{i}")


walk(doc, "#")
if problems:
    print("validate-openapi: examples that break their schema:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"validate-openapi: {path} is valid OpenAPI {doc['openapi']} and its examples fit their schemas")
PY
