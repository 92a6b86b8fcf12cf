#!/usr/bin/env python3
"""Checks template.yaml as SAM would deploy it: translated offline by SAM's own translator
(samtranslator, from the aws-sam-cli install), then read as CloudFormation.

    tests/aws/check-translated-template.py [TEMPLATE]

What it holds the translated template to (each a line of output when it fails; exit 1):
- the sweeper runs alone: reserved concurrency 1, no asynchronous or scheduler retries, a timeout
  below its one-minute schedule;
- two stacks fit in one account: no fixed physical name (no schedule Name, no FunctionName, ...);
- every function logs to a log group of its own with the LogRetentionDays retention;
- every alarm notifies AlarmTopicArn, and the alarms DESIGN.md "Observability" asks for exist;
- each role allows exactly the actions (and resources) infra/aws/permissions.yaml lists, the VPC
  policy only under InVpc, and no role exists that the list does not describe;
- HTTP functions end before API Gateway's 30 s, every function traces, the change-gate functions
  are conditional, every Handler is one functions/bootstrap dispatches;
- every route of shared/http/src/openapi.json (with HEAD beside each GET) is on the API;
- every setting the configuration loader reads is wired: an environment variable, a key of the
  secret, or named below as not used on Lambda, and every variable wired is one the code reads.
"""
import copy
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samcli.yamlhelper import yaml_parse  # noqa: E402  (the translator's own YAML reading)
from samtranslator.translator.transform import transform  # noqa: E402
import yaml  # noqa: E402

# Settings of the loader that have no place on Lambda, and why.
NOT_ON_LAMBDA = {
    "GATEHOUSE_DATA_DIR": "the SQLite store's folder (gatehouse serve)",
    "GATEHOUSE_OUTBOX_DIR": "the outbox mail transport (gatehouse serve); Lambda sends through SES",
    "GATEHOUSE_SMTP_URL": "the SMTP mail transport; Lambda sends through SES",
    "GATEHOUSE_SMTP_USER": "the SMTP mail transport",
    "GATEHOUSE_SMTP_PASSWORD": "the SMTP mail transport",
    "GATEHOUSE_SMTP_CA_FILE": "the SMTP mail transport",
    "GATEHOUSE_LINK_KEY_FILE": "a key file; on Lambda GATEHOUSE_LINK_KEY comes from the secret",
    "GATEHOUSE_EVIDENCE_KEY_FILE": "a key file; on Lambda GATEHOUSE_EVIDENCE_KEY comes from the secret",
    # shared/lambda writes the secret's *_CONTENT entries to /tmp and points these at the files.
    "GATEHOUSE_CLOUDS_YAML": "written from the secret's GATEHOUSE_CLOUDS_YAML_CONTENT",
    "GATEHOUSE_CHANGE_POLICY": "written from the secret's GATEHOUSE_CHANGE_POLICY_CONTENT",
    "GATEHOUSE_APPROVAL_POLICY": "written from the secret's GATEHOUSE_APPROVAL_POLICY_CONTENT",
}
# Read by shared/lambda rather than the loader.
# Read on Lambda outside the configuration loader: the secret itself, and the metrics namespace
# (telemetry starts before the configuration is loaded).
LAMBDA_ONLY = {"GATEHOUSE_SECRET_ARN", "GATEHOUSE_METRICS_NAMESPACE"}

# Properties that fix a resource's physical name: two stacks in one account would collide.
NAME_PROPERTIES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Events::Rule": "Name",
}
# Name-like properties whose literal value is scoped to their parent, not the account.
SCOPED_NAMES = {("AWS::ApiGatewayV2::Stage", "StageName"), ("AWS::CloudWatch::Alarm", "MetricName")}

problems = []


def problem(text):
    problems.append(text)


class NoManagedPolicies:
    """The translator asks for AWS's managed policy list only to expand policy names in a
    function's Policies; the template's roles are explicit, so it needs none (and no network)."""

    def load(self):
        return {}


def translate(path):
    template = yaml_parse(path.read_text())
    # As `sam package` would: code in S3, which the translator insists on.
    template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://bucket/gatehouse.zip"
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in resource.get("Properties", {}):
            resource["Properties"]["CodeUri"] = "s3://bucket/gatehouse.zip"
    # The translator changes what it is given; the checks read the source too.
    return template, transform(copy.deepcopy(template), {"AWS::Region": "us-east-1"}, NoManagedPolicies())


def as_list(value):
    return value if isinstance(value, list) else [value]


def of_type(resources, kind):
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def ref(value):
    return value.get("Ref") if isinstance(value, dict) else None


def getatt_arn(value):
    if isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), list) and value["Fn::GetAtt"][1] == "Arn":
        return value["Fn::GetAtt"][0]
    return None


def resource_symbol(res, log_group, resources):
    """The permissions.yaml name of a statement's resource."""
    if res == "*":
        return "*"
    if getatt_arn(res) == "Table":
        return "table"
    if getatt_arn(res) == "ProvisionFailures":
        return "failure-queue"
    if log_group and getatt_arn(res) == log_group:
        return "log-group"
    if getatt_arn(res) in of_type(resources, "AWS::Lambda::Function"):
        return f"function:{getatt_arn(res)}"
    if ref(res) == "SecretArn":
        return "secret"
    sub = res.get("Fn::Sub") if isinstance(res, dict) else None
    if sub == "${Table.Arn}/index/gsi1":
        return "gsi1"
    if sub == "${Table.Arn}/index/gsi2":
        return "gsi2"
    if sub == "${Table.Arn}/stream/*":
        return "stream"
    if isinstance(sub, str) and re.search(r":ses:\$\{AWS::Region\}:\$\{AWS::AccountId\}:identity/\$\{SesIdentity\}$", sub):
        return "ses-identity"
    cond = res.get("Fn::If") if isinstance(res, dict) else None
    if cond and cond[0] == "HasConfigurationSet" and ref(cond[2]) == "AWS::NoValue":
        if re.search(r":configuration-set/\$\{SesConfigurationSet\}$", cond[1].get("Fn::Sub", "")):
            return "ses-identity"
    return json.dumps(res, sort_keys=True)


def granted(role, log_group, resources):
    """(action, resource) pairs a role's inline policies allow."""
    grants = set()
    for policy in role["Properties"].get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement:
                problem(f"{policy['PolicyName']}: only plain Allow statements are expected: {statement}")
                continue
            for action in as_list(statement["Action"]):
                for res in as_list(statement["Resource"]):
                    grants.add((action, resource_symbol(res, log_group, resources)))
    return grants


def expected(entries):
    return {(action, res) for action, on in (entries or {}).items() for res in as_list(on)}


def describe(pairs):
    return ", ".join(f"{a} on {r}" for a, r in sorted(pairs))


def check_roles(resources, functions, log_groups, permissions):
    vpc_arn = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/" + permissions["vpc-managed-policy"]}
    vpc_only = {"Fn::If": ["InVpc", [vpc_arn], {"Ref": "AWS::NoValue"}]}
    listed = permissions["functions"]
    roles = of_type(resources, "AWS::IAM::Role")
    described = set(permissions.get("other-roles", {}))
    for name, fn in functions.items():
        if name not in listed:
            problem(f"{name}: not in infra/aws/permissions.yaml")
            continue
        role_id = getatt_arn(fn["Properties"].get("Role"))
        if role_id not in roles:
            problem(f"{name}: its Role is not a role of this template (SAM-made roles carry managed policies)")
            continue
        described.add(role_id)
        role = roles[role_id]
        want = expected(permissions["every-function"]) | expected(listed[name])
        have = granted(role, log_groups.get(name), resources)
        if have - want:
            problem(f"{role_id} ({name}) allows what permissions.yaml does not list: {describe(have - want)}")
        if want - have:
            problem(f"{role_id} ({name}) lacks what permissions.yaml lists: {describe(want - have)}")
        managed = role["Properties"].get("ManagedPolicyArns")
        if managed is not None and managed != vpc_only:
            problem(f"{role_id}: managed policies other than the VPC policy under InVpc: {managed}")
        principals = json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
        if "lambda.amazonaws.com" not in principals:
            problem(f"{role_id}: not assumable by Lambda")
        if role.get("Condition") != fn.get("Condition"):
            problem(f"{role_id}: Condition {role.get('Condition')} differs from its function's {fn.get('Condition')}")
    for name in set(listed) - set(functions):
        problem(f"permissions.yaml lists {name}, which is not a function of the template")
    for role_id, entries in permissions.get("other-roles", {}).items():
        if role_id not in roles:
            problem(f"permissions.yaml lists the role {role_id}, which the translated template does not have")
            continue
        have, want = granted(roles[role_id], None, resources), expected(entries)
        if have != want:
            problem(f"{role_id} allows {describe(have)}; permissions.yaml lists {describe(want)}")
    for role_id in set(roles) - described:
        problem(f"{role_id}: a role that infra/aws/permissions.yaml does not describe")


def check_sweeper(resources, functions):
    sweeper = functions["SweeperFunction"]["Properties"]
    if sweeper.get("ReservedConcurrentExecutions") != 1:
        problem(f"SweeperFunction: ReservedConcurrentExecutions is {sweeper.get('ReservedConcurrentExecutions')}, not 1")
    configs = [c for c in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
               if ref(c["Properties"]["FunctionName"]) == "SweeperFunction"]
    if len(configs) != 1 or configs[0]["Properties"].get("MaximumRetryAttempts") != 0:
        problem("SweeperFunction: asynchronous invocations must not be retried (EventInvokeConfig MaximumRetryAttempts 0)")
    schedules = [s for s in of_type(resources, "AWS::Scheduler::Schedule").values()
                 if getatt_arn(s["Properties"]["Target"]["Arn"]) == "SweeperFunction"]
    if len(schedules) != 1:
        problem(f"SweeperFunction: {len(schedules)} schedules, expected 1")
    for s in schedules:
        if s["Properties"]["ScheduleExpression"] != "rate(1 minute)":
            problem(f"SweeperFunction: schedule {s['Properties']['ScheduleExpression']}; the timeout check assumes a minute")
        if s["Properties"]["Target"].get("RetryPolicy", {}).get("MaximumRetryAttempts") != 0:
            problem("SweeperFunction: the scheduler must not retry a sweep (Target RetryPolicy MaximumRetryAttempts 0)")
    if not sweeper.get("Timeout", 3) < 60:
        problem(f"SweeperFunction: Timeout {sweeper.get('Timeout')} s is not below its one-minute schedule")


def check_names(resources, outputs):
    for name, res in resources.items():
        props = res.get("Properties", {})
        fixed = NAME_PROPERTIES.get(res["Type"])
        if fixed and fixed in props:
            problem(f"{name}: {fixed} fixes a physical name (a second stack in the account would collide)")
        for key, value in props.items():
            if key.endswith("Name") and isinstance(value, str) and (res["Type"], key) not in SCOPED_NAMES:
                problem(f"{name}: {key} is the literal {value!r}")
    for name, output in outputs.items():
        export = output.get("Export", {}).get("Name")
        if export is not None and "AWS::StackName" not in json.dumps(export):
            problem(f"output {name}: its export name does not contain the stack name")


def check_logs(resources, functions):
    groups = of_type(resources, "AWS::Logs::LogGroup")
    for name, group in groups.items():
        if ref(group["Properties"].get("RetentionInDays")) != "LogRetentionDays":
            problem(f"{name}: a log group without the LogRetentionDays retention")
    owner = {}
    for name, fn in functions.items():
        group = ref(fn["Properties"].get("LoggingConfig", {}).get("LogGroup"))
        if group not in groups:
            problem(f"{name}: logs to no log group of the template (Lambda would make one without a retention)")
            continue
        if group in owner.values():
            problem(f"{name}: shares its log group {group}")
        owner[name] = group
        if groups[group].get("Condition") != fn.get("Condition"):
            problem(f"{group}: Condition differs from its function's")
    return owner


def alarm_on(alarms, namespace, metric, dimension):
    return [name for name, a in alarms.items()
            if a["Properties"].get("Namespace") == namespace and a["Properties"].get("MetricName") == metric
            and dimension in a["Properties"].get("Dimensions", [dimension] if dimension is None else [])]


def check_alarms(resources, functions):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    topic = {"Ref": "AlarmTopicArn"}
    for name, alarm in alarms.items():
        for actions in ("AlarmActions", "OKActions"):
            if topic not in alarm["Properties"].get(actions, []):
                problem(f"{name}: {actions} do not notify AlarmTopicArn")
    consumers = {ref(m["Properties"]["FunctionName"]) for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()}
    for fn in functions:
        dim = {"Name": "FunctionName", "Value": {"Ref": fn}}
        metrics = ["Errors", "Throttles"] + (["IteratorAge"] if fn in consumers else [])
        for metric in metrics:
            found = alarm_on(alarms, "AWS/Lambda", metric, dim)
            if not found:
                problem(f"{fn}: no alarm on its {metric}")
            for name in found:
                if alarms[name].get("Condition") != functions[fn].get("Condition"):
                    problem(f"{name}: Condition differs from {fn}'s")
    wanted = [
        ("AWS/ApiGateway", "5xx", {"Name": "ApiId", "Value": {"Ref": "Api"}}, "the API's 5xx answers"),
        # In the stack's own namespace (GATEHOUSE_METRICS_NAMESPACE), so two stacks never share an alarm.
        ({"Fn::Sub": "Gatehouse/${AWS::StackName}"}, "gatehouse_messages", {"Name": "state", "Value": "dead"},
         "dead messages (DESIGN.md's gauge)"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
         {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ProvisionFailures", "QueueName"]}}, "the failure queue's depth"),
        ("AWS/SES", "Reputation.BounceRate", None, "the SES bounce rate"),
    ]
    for namespace, metric, dim, what in wanted:
        if not alarm_on(alarms, namespace, metric, dim):
            problem(f"no alarm on {what} ({namespace} {metric})")


def check_functions(template, resources, functions):
    dispatcher = (ROOT / "functions/bootstrap/src/main.rs").read_text()
    handlers = set(re.findall(r'^\s*"([a-z-]+)" =>', dispatcher, re.M))
    seen = {}
    http = {ref(p["Properties"]["FunctionName"]) for p in of_type(resources, "AWS::Lambda::Permission").values()
            if p["Properties"].get("Principal") == "apigateway.amazonaws.com"}
    for name, fn in functions.items():
        props = fn["Properties"]
        handler = props.get("Handler")
        if handler not in handlers:
            problem(f"{name}: Handler {handler!r} is not one functions/bootstrap/src/main.rs dispatches")
        if handler in seen:
            problem(f"{name}: Handler {handler!r} is also {seen[handler]}'s")
        seen[handler] = name
        if props.get("TracingConfig") != {"Mode": "Active"}:
            problem(f"{name}: tracing is not active")
        if name in http and not props.get("Timeout", 3) < 29:
            problem(f"{name}: an HTTP function with Timeout {props.get('Timeout')} s (API Gateway stops at 30 s)")
        vpc = props.get("VpcConfig")
        if vpc is not None and (not isinstance(vpc, dict) or vpc.get("Fn::If", [None])[0] != "InVpc"):
            problem(f"{name}: VpcConfig not under the InVpc condition")
        source = template["Resources"][name].get("Metadata", {})
        if source.get("BuildMethod") != "makefile":
            problem(f"{name}: not built by infra/aws/Makefile (Metadata BuildMethod makefile)")
    for name in ("ChangeGateFunction", "ServiceNowWebhookFunction"):
        if functions.get(name, {}).get("Condition") != "HasChangeGate":
            problem(f"{name}: must exist only with ServiceNow and GitLab configured (Condition HasChangeGate)")


def api_routes(resources):
    routes = set()
    body = resources["Api"]["Properties"]["Body"]

    def unwrap(value):
        while isinstance(value, dict) and "Fn::If" in value:
            value = value["Fn::If"][1]
        return value

    for path, methods in body["paths"].items():
        for method in unwrap(methods):
            routes.add((method.upper(), path))
    return routes


def check_routes(resources):
    document = json.loads((ROOT / "shared/http/src/openapi.json").read_text())
    documented = set()
    for path, item in document["paths"].items():
        for method in item:
            if method in ("get", "put", "post", "delete", "patch"):
                documented.add((method.upper(), path))
                if method == "get":
                    documented.add(("HEAD", path))
    wired = api_routes(resources)
    for method, path in sorted(documented - wired):
        problem(f"{method} {path} is in /openapi.json but not routed by the HTTP API")
    for method, path in sorted(wired - documented):
        problem(f"{method} {path} is routed by the HTTP API but not in /openapi.json")


def setting_names(text):
    return set(re.findall(r'"(GATEHOUSE_[A-Z0-9_]+)"', text))


def check_settings(template, functions):
    loader = ROOT / "shared/domain/src/config.rs"
    read = setting_names(loader.read_text())
    for part in sorted((ROOT / "shared/domain/src/config").glob("*.rs")):
        read |= setting_names(part.read_text())
    secret_doc = template["Parameters"]["SecretArn"]["Description"]
    in_secret = set(re.findall(r"GATEHOUSE_[A-Z0-9_]+", secret_doc))
    for name, fn in functions.items():
        wired = {k for k in fn["Properties"].get("Environment", {}).get("Variables", {}) if k.startswith("GATEHOUSE_")}
        for setting in sorted(read - wired - in_secret - set(NOT_ON_LAMBDA)):
            problem(f"{name}: setting {setting} is neither an environment variable, a key of the secret, nor listed as not used on Lambda")
        for setting in sorted(wired - read - LAMBDA_ONLY):
            problem(f"{name}: environment variable {setting} is no setting the configuration loader reads")
        for setting in sorted(wired & in_secret):
            problem(f"{name}: {setting} is both an environment variable and a key of the secret")
    content_keys = {k for k in in_secret if k.endswith("_CONTENT")}
    for setting in sorted(in_secret - read - content_keys):
        problem(f"the SecretArn description names {setting}, which the configuration loader does not read")


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
    permissions = yaml.safe_load((ROOT / "infra/aws/permissions.yaml").read_text())
    template, translated = translate(path)
    resources = translated["Resources"]
    functions = of_type(resources, "AWS::Lambda::Function")
    check_sweeper(resources, functions)
    check_names(resources, translated.get("Outputs", {}))
    log_groups = check_logs(resources, functions)
    check_alarms(resources, functions)
    check_roles(resources, functions, log_groups, permissions)
    check_functions(template, resources, functions)
    check_routes(resources)
    check_settings(template, functions)
    if problems:
        print(f"check-translated-template: {len(problems)} problem(s) in {path.name} as SAM translates it:")
        for p in problems:
            print(f"  - {p}")
        sys.exit(1)
    print(f"check-translated-template: {len(functions)} functions, {len(of_type(resources, 'AWS::IAM::Role'))} roles, "
          f"{len(of_type(resources, 'AWS::CloudWatch::Alarm'))} alarms: as infra/aws/permissions.yaml and DESIGN.md ask")


if __name__ == "__main__":
    main()
