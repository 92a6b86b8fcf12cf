#!/usr/bin/env python3
"""Turns the GitLab CI YAML of infra/gitlab/ into the documents GitLab itself would validate.

check-jsonschema's `vendor.gitlab-ci` schema validates one YAML document per file and cannot parse
GitLab's `!reference` tag, while GitLab reads a component as two documents (the `spec:` header,
then the jobs with `$[[ inputs.* ]]` interpolated) and resolves `!reference` before it validates.
So this script, for the schema to check afterwards:

- writes each component's `spec:` header as its own document;
- interpolates the jobs document once per value of every input that has `options` (defaults for
  the rest), as GitLab does: a value that is nothing but `$[[ inputs.x ]]` takes the input's typed
  value, one inside a longer string (keys too) is replaced as text;
- extracts the fenced ```yaml blocks of the READMEs and merges each with what it documents (the
  component, with the block's `inputs:`, or the include-by-file template) so that `extends:` and
  `!reference` resolve, the way GitLab merges included configuration;
- resolves `!reference` tags, then writes each document as JSON.

It also checks what the schema cannot: input defaults against their type, `options` and `regex`;
inputs declared but unused or used but undeclared; nothing left uninterpolated; inputs passed in
the READMEs' `include: component:` against the spec; `extends:` naming a job that exists; and, in
complete configurations, `needs:` naming a job that exists and each job's stage existing.

Usage: prepare.py OUT_DIR  -> writes OUT_DIR/*.json and prints "<file>\t<what it is>" lines.
Exit status 1 if any check failed (the problems go to stderr).
"""
import copy
import itertools
import json
import os
import re
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPONENT_DIR = "infra/gitlab/component"
TEMPLATE = "infra/gitlab/change-gate.gitlab-ci.yml"
READMES = {
    # README -> what its blocks are written against
    "infra/gitlab/README.md": TEMPLATE,
    f"{COMPONENT_DIR}/README.md": f"{COMPONENT_DIR}/templates/change-gate.yml",
}
DEFAULT_STAGES = [".pre", "build", "test", "deploy", ".post"]
POLICY_STAGES = [".pipeline-policy-pre", ".pipeline-policy-post"]
KEYWORDS = {
    "default", "include", "stages", "variables", "workflow", "image", "services", "cache",
    "before_script", "after_script", "spec", "pages",
}

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


class Reference(list):
    """A `!reference [job, key, ...]` tag, resolved after merging."""


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor(
    "!reference", lambda loader, node: Reference(loader.construct_sequence(node))
)


def load_all(text, where="?"):
    try:
        return list(yaml.load_all(text, Loader=Loader))
    except yaml.YAMLError as e:
        problem(where, f"not valid YAML: {e}")
        return []


# ---- inputs --------------------------------------------------------------------------------------

INPUT_RE = re.compile(r"\$\[\[\s*(inputs|component)\.([A-Za-z0-9_-]+)\s*(\|[^\]]*)?\]\]")
TYPES = {"string": str, "number": (int, float), "boolean": bool, "array": list}


def check_value(where, name, spec, value):
    kind = spec.get("type", "string")
    if kind not in TYPES:
        problem(where, f"input {name}: unknown type {kind!r}")
        return
    if isinstance(value, bool) and kind == "number" or not isinstance(value, TYPES[kind]):
        problem(where, f"input {name}: {value!r} is not of type {kind}")
    if "options" in spec and value not in spec["options"]:
        problem(where, f"input {name}: {value!r} is not one of {spec['options']}")
    if "regex" in spec and isinstance(value, str) and not re.search(spec["regex"], value):
        problem(where, f"input {name}: {value!r} does not match /{spec['regex']}/")


def interpolate(where, node, values, used):
    """GitLab's interpolation of `$[[ inputs.x ]]` in keys and values."""
    if isinstance(node, Reference):
        return Reference(interpolate(where, v, values, used) for v in node)
    if isinstance(node, dict):
        return {
            interpolate(where, k, values, used): interpolate(where, v, values, used)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [interpolate(where, v, values, used) for v in node]
    if not isinstance(node, str) or "$[[" not in node:
        return node

    def lookup(m):
        scope, name, func = m.group(1), m.group(2), m.group(3)
        if func:
            problem(where, f"{m.group(0)}: interpolation functions are not checked here")
        key = (scope, name)
        if key not in values:
            problem(where, f"{m.group(0)}: no such {scope[:-1] if scope == 'inputs' else scope} field declared in spec")
            return None
        used.add(key)
        return values[key]

    whole = INPUT_RE.fullmatch(node.strip())
    if whole:
        value = lookup(whole)
        return node if value is None else copy.deepcopy(value)

    def text(m):
        value = lookup(m)
        if value is None:
            return m.group(0)
        if isinstance(value, (list, dict)):
            problem(where, f"{m.group(0)}: an array input inside a longer string")
        return str(value).lower() if isinstance(value, bool) else str(value)

    out = INPUT_RE.sub(text, node)
    if "$[[" in out:
        problem(where, f"left uninterpolated: {out!r}")
    return out


def component_spec(path):
    docs = load_all(open(os.path.join(ROOT, path)).read(), path)
    if len(docs) != 2 or not isinstance(docs[0], dict) or set(docs[0]) != {"spec"}:
        problem(path, "expected two YAML documents: the `spec:` header, `---`, then the jobs")
        return None, None
    return docs[0], docs[1]


def render_component(path, given, where):
    """The jobs document as GitLab would build it with the inputs `given`."""
    header, body = component_spec(path)
    if header is None:
        return None
    inputs = (header["spec"] or {}).get("inputs") or {}
    values = {}
    for name, spec in inputs.items():
        spec = spec or {}
        if name in given:
            value = given[name]
        elif "default" in spec:
            value = spec["default"]
        else:
            problem(where, f"input {name} is required and not given")
            continue
        check_value(where, name, spec, value)
        values[("inputs", name)] = value
    for name in given:
        if name not in inputs:
            problem(where, f"input {name} is not declared in {path}'s spec:inputs")
    for field in (header["spec"] or {}).get("component") or []:
        values[("component", field)] = {"name": "change-gate", "sha": "0" * 40,
                                        "version": "1.0.0", "reference": "1.0.0"}[field]
    used = set()
    rendered = interpolate(where, body, values, used)
    return rendered, header, set(values) - used


# ---- merging and !reference ------------------------------------------------------------------------


def deep_merge(base, over):
    """GitLab merges included configuration under the including file's: maps deeply, else replace."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_references(where, config):
    def lookup(path):
        node = config
        for key in path:
            if not isinstance(node, dict) or key not in node:
                problem(where, f"!reference {list(path)} names nothing")
                return []
            node = node[key]
        return node

    def walk(node, depth=0):
        if depth > 10:
            problem(where, "!reference nested more than 10 levels")
            return node
        if isinstance(node, Reference):
            return walk(copy.deepcopy(lookup(node)), depth + 1)
        if isinstance(node, dict):
            return {k: walk(v, depth) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, depth) for v in node]
        return node

    return walk(config)


def resolve_extends(where, config):
    """GitLab merges each job's `extends:` chain (maps deeply, other values replaced, the job's own
    keys last) before it validates the job, so a typo in a hidden job fails in the job using it."""
    done = {}

    def resolved(name, chain):
        if name in done:
            return done[name]
        job = config.get(name)
        if not isinstance(job, dict):
            return {}
        if name in chain or len(chain) > 11:
            problem(where, f"extends loop or more than 11 levels: {' -> '.join(chain + [name])}")
            return job
        ext = job.get("extends")
        merged = {}
        for base in [ext] if isinstance(ext, str) else ext or []:
            merged = deep_merge(merged, resolved(base, chain + [name]))
        merged = deep_merge(merged, job)
        done[name] = merged
        return merged

    return {k: resolved(k, []) if isinstance(v, dict) and k not in KEYWORDS else v
            for k, v in config.items()}


def flatten(seq):
    for item in seq:
        if isinstance(item, list):
            yield from flatten(item)
        else:
            yield item


def check_structure(where, config, complete, policy=False):
    jobs = {k: v for k, v in config.items() if k not in KEYWORDS and isinstance(v, dict)}
    stages = list(config.get("stages") or DEFAULT_STAGES)
    stages = [".pre"] + [s for s in flatten(stages) if s not in (".pre", ".post")] + [".post"]
    if policy:
        stages += POLICY_STAGES
    for name, job in jobs.items():
        ext = job.get("extends")
        for target in [ext] if isinstance(ext, str) else ext or []:
            if target not in jobs:
                problem(where, f"{name}: extends {target!r}, which is not defined")
        if not complete or name.startswith("."):
            continue
        for need in job.get("needs") or []:
            target = need if isinstance(need, str) else need.get("job")
            optional = isinstance(need, dict) and need.get("optional")
            if target and target not in jobs and not optional:
                problem(where, f"{name}: needs {target!r}, which is not a job of this pipeline")
        stage = job.get("stage")
        if stage and stage not in stages:
            problem(where, f"{name}: stage {stage!r} is not in stages {stages}")


# ---- output ----------------------------------------------------------------------------------------

out_dir = sys.argv[1]
written = []


def emit(name, doc, what):
    path = os.path.join(out_dir, re.sub(r"[^A-Za-z0-9_.=-]+", "_", name) + ".json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    written.append((path, what))


def plain(node):
    """The document without Python-only types, for JSON (unresolved Reference -> problem)."""
    if isinstance(node, Reference):
        raise ValueError("unresolved !reference")
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def finish(where, config, what, complete, policy=False):
    config = resolve_references(where, config)
    check_structure(where, config, complete, policy)
    config = resolve_extends(where, config)
    emit(where, plain(config), what)


# 1. The component: the spec header, then the jobs for each option of each input with options.
component_files = sorted(
    os.path.join(COMPONENT_DIR, "templates", f)
    for f in os.listdir(os.path.join(ROOT, COMPONENT_DIR, "templates"))
    if f.endswith(".yml")
)
for path in component_files:
    header, _ = component_spec(path)
    if header is None:
        continue
    emit(f"{path}--spec", plain(header), f"{path}: document 1, the spec: header")
    inputs = header["spec"].get("inputs") or {}
    variants = [{}] + [
        {name: option} for name, spec in inputs.items() for option in (spec or {}).get("options", [])
    ]
    unused_everywhere = None
    for given in variants:
        label = ",".join(f"{k}={v}" for k, v in given.items()) or "defaults"
        where = f"{path}--jobs--{label}"
        rendered, _, unused = render_component(path, given, where)
        unused_everywhere = unused if unused_everywhere is None else unused_everywhere & unused
        finish(where, rendered, f"{path}: document 2, the jobs, inputs {label}", complete=False)
    for scope, name in sorted(unused_everywhere or []):
        if scope == "inputs":
            problem(path, f"input {name} is declared but never used")

# 2. Single-document CI files: the component project's pipeline and the include-by-file template.
for path in [f"{COMPONENT_DIR}/.gitlab-ci.yml", TEMPLATE]:
    docs = load_all(open(os.path.join(ROOT, path)).read(), path)
    if len(docs) != 1:
        problem(path, f"expected one YAML document, found {len(docs)}")
        continue
    finish(path, docs[0], f"{path}", complete=path.endswith(".gitlab-ci.yml") and "component" in path)

# 3. The READMEs' ```yaml blocks, each merged with what it documents.
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[A-Za-z0-9_-]*)[ \t]*$")
for readme, context in READMES.items():
    lines = open(os.path.join(ROOT, readme)).read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = m.group("indent"), m.group("lang"), i + 1
        j = start
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        i = j + 1
        if lang not in ("yaml", "yml"):
            continue
        text = "\n".join(l[len(indent):] if l.startswith(indent) else l for l in lines[start:j])
        where = f"{readme}--line-{start}"
        docs = load_all(text, where)
        if len(docs) != 1 or not isinstance(docs[0], dict):
            problem(where, "expected one YAML mapping")
            continue
        block = docs[0]
        if "pipeline_execution_policy" in block:
            # A security policy file, not CI configuration: no schema here; its content's include
            # is another block. Still check that it is well-formed YAML (done above).
            written.append(("-", f"{readme} line {start}: a pipeline execution policy, not CI configuration: parsed only"))
            continue
        includes = block.get("include") or []
        includes = [includes] if isinstance(includes, dict) else includes
        policy = any("pipeline-policy" in str(v) for v in block.values()) or "pipeline-policy" in text
        base = None
        for inc in includes:
            if isinstance(inc, dict) and "component" in inc:
                comp = inc["component"]
                name = comp.rsplit("/", 1)[-1].split("@", 1)[0]
                if "@" not in comp:
                    problem(where, f"component {comp!r} has no @version")
                path = f"{COMPONENT_DIR}/templates/{name}.yml"
                if not os.path.exists(os.path.join(ROOT, path)):
                    problem(where, f"component {name!r}: no {path}")
                    continue
                rendered, _, _ = render_component(path, inc.get("inputs") or {}, where)
                base = deep_merge(base or {}, rendered or {})
            elif isinstance(inc, dict) and inc.get("file") == TEMPLATE:
                base = deep_merge(base or {}, load_all(open(os.path.join(ROOT, TEMPLATE)).read())[0])
        # Complete: it includes the gate and defines jobs of its own; an include alone is a snippet
        # of a larger file, whose other jobs (named in `needs`) are not shown.
        complete = base is not None and any(
            isinstance(v, dict) and "script" in v for k, v in block.items() if k not in KEYWORDS)
        if base is None:  # a fragment of a project that uses what the README documents
            if context.endswith("templates/change-gate.yml"):
                base, _, _ = render_component(context, {}, where)
            else:
                base = load_all(open(os.path.join(ROOT, context)).read())[0]
        merged = deep_merge(base, block)
        what = f"{readme} line {start}: ```yaml block, merged with " + (
            "its include" if base is not None and includes else os.path.basename(context)) + (
            "" if complete else " (a snippet: needs and stages not checked)")
        finish(where, merged, what, complete=complete, policy=policy)

for path, what in written:
    print(f"{path}\t{what}")
for p in problems:
    print(f"prepare: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
