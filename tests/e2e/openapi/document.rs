//! `/openapi.json` read against the route table: every mounted route is documented with the
//! security of its access and its path parameters, and nothing else is.

use std::collections::{BTreeMap, BTreeSet};

use domain::config::Scope;
use http_api::{Access, RouteSpec};
use serde_json::Value;

use crate::{key, route_key};

const OPERATIONS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The apiKey scheme of GitLab's webhook secret (`X-Gitlab-Token`).
const GITLAB_WEBHOOK_SCHEME: &str = "gitlabWebhookToken";

/// The cookie scheme of an auditor's session (the audit page's sign-in).
const AUDITOR_SESSION_SCHEME: &str = "auditorSession";

/// The bearer scheme of GitLab CI/CD ID tokens.
const ID_TOKEN_SCHEME: &str = "gitlabIdToken";

/// The security requirement objects an access allows: each a set of scheme names.
fn expected_security(access: Access, signature_scheme: Option<&str>) -> BTreeSet<BTreeSet<String>> {
    let one = |name: &str| BTreeSet::from([name.to_string()]);
    match access {
        Access::Public => BTreeSet::new(),
        Access::Scope(scope) => BTreeSet::from([one(scope.as_str())]),
        Access::SignedOr(scope) => BTreeSet::from([
            one(signature_scheme.unwrap_or("<no apiKey scheme for the signature header>")),
            one(scope.as_str()),
        ]),
        Access::IdTokenOr(scope) => BTreeSet::from([one(ID_TOKEN_SCHEME), one(scope.as_str())]),
        Access::GitLabWebhookToken => BTreeSet::from([one(GITLAB_WEBHOOK_SCHEME)]),
        Access::AuditorSessionOr(scope) => BTreeSet::from([one(scope.as_str()), one(AUDITOR_SESSION_SCHEME)]),
    }
}

fn security_of(operation: &Value) -> Option<BTreeSet<BTreeSet<String>>> {
    operation.get("security")?.as_array().map(|reqs| {
        reqs.iter().map(|req| req.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()).collect()
    })
}

/// The name of the apiKey scheme for `X-Gatehouse-Signature`, if the document has one.
fn signature_scheme(doc: &Value) -> Option<String> {
    doc["components"]["securitySchemes"].as_object()?.iter().find_map(|(name, s)| {
        (s["type"] == "apiKey"
            && s["in"] == "header"
            && s["name"].as_str().is_some_and(|h| h.eq_ignore_ascii_case("x-gatehouse-signature")))
        .then(|| name.clone())
    })
}

/// Everything in which the document and the route table disagree.
pub fn document_problems(doc: &Value, routes: &[RouteSpec]) -> Vec<String> {
    let mut problems = Vec::new();
    if !doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")) {
        problems.push(format!("openapi is {}, not 3.1.x", doc["openapi"]));
    }
    if doc.get("security").is_some() {
        problems.push("a top-level `security` default: give every operation its own".into());
    }
    let schemes = &doc["components"]["securitySchemes"];
    for scope in Scope::ALL {
        let s = &schemes[scope.as_str()];
        if s["type"] != "http" || !s["scheme"].as_str().is_some_and(|v| v.eq_ignore_ascii_case("bearer")) {
            problems.push(format!("securitySchemes.{scope} is not an http bearer scheme: {s}"));
        }
    }
    let signature = signature_scheme(doc);
    if signature.is_none() {
        problems.push("no apiKey security scheme for the X-Gatehouse-Signature header".into());
    }

    let mut documented = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in OPERATIONS {
            if let Some(operation) = item.get(method) {
                documented.insert(key(method, path), (item, operation));
            }
        }
    }
    for route in routes {
        let k = route_key(route);
        let Some((item, operation)) = documented.get(&k) else {
            problems.push(format!("{} {} is not in the document", k.0, k.1));
            continue;
        };
        let want = expected_security(route.access, signature.as_deref());
        match security_of(operation) {
            None => problems.push(format!("{} {}: no `security` (want {want:?})", k.0, k.1)),
            Some(got) if got != want => problems
                .push(format!("{} {}: security {got:?}, but the route is {:?}: want {want:?}", k.0, k.1, route.access)),
            Some(_) => {}
        }
        // Every `{name}` of the path is a declared path parameter, and nothing else is.
        let in_path: BTreeSet<String> =
            route.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).map(String::from).collect();
        let declared: BTreeSet<String> = [&item["parameters"], &operation["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|p| resolve(doc, p))
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str().map(String::from))
            .collect();
        if in_path != declared {
            problems.push(format!("{} {}: path parameters declared {declared:?}, the path has {in_path:?}", k.0, k.1));
        }
        if operation["responses"].as_object().is_none_or(|r| r.is_empty()) {
            problems.push(format!("{} {}: no responses", k.0, k.1));
        }
    }
    let table: BTreeSet<_> = routes.iter().map(route_key).collect();
    for (k, _) in documented {
        if !table.contains(&k) {
            problems.push(format!("{} {} is documented but no function mounts it", k.0, k.1));
        }
    }
    problems
}

/// Follows a local `$ref` (`#/components/...`).
pub fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => resolve(doc, doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref #{pointer}"))),
        None => value,
    }
}
