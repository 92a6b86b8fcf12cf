//! The API as described against the API as mounted. `gatehouse serve` (demo wiring, every function
//! and the change gate, with one token per scope) serves `/openapi.json`; the document must list
//! exactly the routes of `Running.routes` with the security of each route's access, template.yaml
//! must wire exactly those routes to the function that mounts them, the scopes must
//! hold live, and what the routes answer must match the documented responses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use domain::config::{ApiTokens, Scope, Secret};
use domain::model::{RequestId, Status};
use domain::token::ApprovalToken;
use gatehouse::serve::{Running, Simulators, demo_config, start_with, use_gitlab_sim, use_servicenow_sim};
use hmac::{Hmac, Mac};
use http_api::{Access, RouteSpec};
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;

#[path = "openapi/template.rs"]
mod template;
use template::template_problems;

#[path = "openapi/document.rs"]
mod document;
use document::document_problems;

#[path = "openapi/answers.rs"]
mod answers;
use answers::{Answer, answer, conforms, problem_type};

#[path = "openapi/seed.rs"]
mod seed;
use seed::{seed, seed_in, seed_lease, seed_owed_message};

const SERVICENOW_TOKEN: &str = "openapi-test-token-of-scope-servicenow-0001";
const CI_TOKEN: &str = "openapi-test-token-of-scope-ci-000000000000001";
const WEBHOOK_TOKEN: &str = "openapi-test-token-of-scope-webhook-000000001";
const AUDIT_TOKEN: &str = "openapi-test-token-of-scope-audit-00000000001";
const WEBHOOK_SECRET: &str = "openapi-test-webhook-secret-0123456789abcdef";
const SHA: &str = "af5b13261899fb2c0db30abdd0af8b07cb44fdc5";

fn token_of(scope: Scope) -> &'static str {
    match scope {
        Scope::ServiceNow => SERVICENOW_TOKEN,
        Scope::Ci => CI_TOKEN,
        Scope::Webhook => WEBHOOK_TOKEN,
        Scope::Audit => AUDIT_TOKEN,
    }
}

const TEMPLATE: &str = include_str!("../../template.yaml");

/// `gatehouse serve --demo` as `serve::start` wires it (PCD, ServiceNow and GitLab simulators, so
/// the change gate is mounted too), but with one token per scope and a webhook secret.
async fn serve() -> Running {
    let sims = Simulators::start_demo().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = std::env::temp_dir().join(format!("gatehouse-openapi-{}", RequestId::generate()));
    let (mut config, _) = demo_config(sims.pcd.as_ref().unwrap(), dir, addr).unwrap();
    use_servicenow_sim(&mut config, sims.servicenow.as_ref().unwrap());
    use_gitlab_sim(&mut config, sims.gitlab.as_ref().unwrap());
    config.api_tokens = ApiTokens::new(Scope::ALL.map(|scope| (scope, token_of(scope))));
    config.webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
    let running = start_with(listener, config, None, sims, true).await.unwrap();
    assert!(
        running.routes.iter().any(|r| r.path == "/v1/changes"),
        "the change gate is not mounted: this test needs every route"
    );
    running
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn fetch_document(running: &Running) -> Value {
    let resp = client().get(format!("{}/openapi.json", running.base_url)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc, serde_json::from_str::<Value>(http_api::openapi::DOCUMENT).unwrap());
    doc
}

/// `GET /v1/x` as the table, the document and the template all spell it.
fn key(method: &str, path: &str) -> (String, String) {
    (method.to_ascii_uppercase(), path.to_string())
}

fn route_key(r: &RouteSpec) -> (String, String) {
    key(r.method.as_str(), r.path)
}

// ---------------------------------------------------------------------------------------------
// The document and the template against the route tables (the document's checks: document.rs).

/// Each function's own routes (its Handler, its route table), mounted as its
/// `src/lambda.rs` mounts them on Lambda.
fn functions(running: &Running) -> BTreeMap<&'static str, Vec<RouteSpec>> {
    let services = &running.services;
    let tokens = running.config.api_tokens.clone();
    let records = Arc::new(store::SqliteStore::in_memory().unwrap());
    let gate = runtime::change_gate(&running.config, records).unwrap().expect("the change gate is configured");
    BTreeMap::from([
        (
            "catalog",
            catalog::router(services.catalog.clone(), tokens.clone())
                .merge(http_api::openapi::router())
                .merge(http_api::health::router())
                .specs,
        ),
        ("intake", intake::router(services.clone(), tokens.clone()).specs),
        ("audit", audit::router(services.clone(), tokens.clone()).specs),
        ("approval", approval::router(services.clone()).specs),
        ("change-gate", change_gate::router(gate.clone(), tokens.clone(), None).specs),
        ("servicenow-webhook", servicenow_webhook::router(gate, tokens, running.config.webhook_secret.clone()).specs),
    ])
}

#[tokio::test]
async fn the_document_and_the_template_describe_exactly_the_mounted_routes() {
    let running = serve().await;
    let doc = fetch_document(&running).await;

    let problems = document_problems(&doc, &running.routes);
    assert!(problems.is_empty(), "/openapi.json disagrees with the route table:\n{}", problems.join("\n"));

    let functions = functions(&running);
    let mut by_functions: Vec<_> = functions.values().flatten().map(route_key).collect();
    by_functions.sort();
    let mut served: Vec<_> = running.routes.iter().map(route_key).collect();
    served.sort();
    assert_eq!(by_functions, served, "serve mounts other routes than the Lambda functions do");
    let problems = template_problems(TEMPLATE, &functions);
    assert!(problems.is_empty(), "template.yaml disagrees with the route tables:\n{}", problems.join("\n"));

    // The checks themselves catch what they are for: a route missing from the document, a wrong
    // scope, a phantom operation; a route missing from the template, a phantom event.
    let mut missing = doc.clone();
    missing["paths"]["/v1/requests"].as_object_mut().unwrap().remove("post");
    assert!(document_problems(&missing, &running.routes).iter().any(|p| p.starts_with("POST /v1/requests is not in")));
    let mut wrong = doc.clone();
    wrong["paths"]["/v1/changes"]["post"]["security"] = json!([{"servicenow": []}]);
    assert!(document_problems(&wrong, &running.routes).iter().any(|p| p.starts_with("POST /v1/changes: security")));
    let mut public = doc.clone();
    public["paths"]["/v1/clouds"]["get"]["security"] = json!([]);
    assert!(document_problems(&public, &running.routes).iter().any(|p| p.starts_with("GET /v1/clouds: security")));
    let mut unsigned = doc.clone();
    unsigned["paths"]["/v1/webhooks/servicenow"]["post"]["security"] = json!([{"webhook": []}]);
    assert!(!document_problems(&unsigned, &running.routes).is_empty());
    let mut phantom = doc.clone();
    phantom["paths"]["/v1/requests/{id}/archive"] =
        json!({"post": {"security": [{"servicenow": []}], "responses": {}}});
    assert!(document_problems(&phantom, &running.routes).iter().any(|p| p.contains("/archive is documented but")));

    let without_openapi: String =
        TEMPLATE.lines().filter(|l| !l.contains("Path: /openapi.json")).map(|l| format!("{l}\n")).collect();
    assert!(
        template_problems(&without_openapi, &functions).iter().any(|p| p.starts_with("GET /openapi.json is not wired"))
    );
    let extra = TEMPLATE.replace(
        "        Callback: {Type",
        "        Archive: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: \"/v1/requests/{id}/archive\"}}\n        Callback: {Type",
    );
    assert!(template_problems(&extra, &functions).iter().any(|p| p.contains("POST /v1/requests/{id}/archive")));
    let misrouted = TEMPLATE.replace("Method: POST, Path: /v1/webhooks/servicenow", "Method: POST, Path: /v1/changes");
    assert!(!template_problems(&misrouted, &functions).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Live: the scopes hold, and the answers are the documented ones.

/// A concrete path for a route, with a sample value for each parameter.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            None => segment.to_string(),
            Some("cloud") => "demo".into(),
            Some("kind") => "images".into(),
            Some("id") => RequestId::generate().to_string(),
            Some("mid") => RequestId::generate().to_string(),
            Some("project_id") => "4242".into(),
            Some("sha") => SHA.into(),
            Some("token") => ApprovalToken::generate().expose().to_string(),
            Some(other) => panic!("no sample value for path parameter {{{other}}}: add one to concrete()"),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn call(running: &Running, route: &RouteSpec, token: Option<&str>) -> RequestBuilder {
    let mut url = format!("{}{}", running.base_url, concrete(route.path));
    if route.path.starts_with("/v1/changes/") && route.method == Method::GET {
        url.push_str("?environment=production");
    }
    let mut req = client().request(route.method.clone(), url);
    if route.method == Method::POST {
        req = req.header("content-type", "application/json").body("{}");
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req
}

#[tokio::test]
async fn every_scoped_route_refuses_a_missing_unknown_or_foreign_credential() {
    let running = serve().await;
    let doc = fetch_document(&running).await;
    let mut problems = Vec::new();
    let mut scoped = 0;
    for route in &running.routes {
        let (method, path) = (route.method.as_str(), route.path);
        let scope = match route.access {
            Access::Public => {
                let a = answer(call(&running, route, None)).await;
                if a.status == 401 || a.status == 403 {
                    problems.push(format!("{method} {path} is public but answered {} without a token", a.status));
                }
                problems.extend(conforms(&doc, method, path, &a));
                continue;
            }
            Access::GitLabWebhookToken => {
                // Without GitLab's secret (or with a bearer token of any scope): 401.
                for token in [None, Some(token_of(Scope::Webhook))] {
                    let a = answer(call(&running, route, token)).await;
                    if a.status != 401 || a.content_type != "application/problem+json" {
                        problems.push(format!("{method} {path} without X-Gitlab-Token: {} {}", a.status, a.body));
                    }
                    problems.extend(conforms(&doc, method, path, &a));
                }
                continue;
            }
            Access::Scope(scope)
            | Access::SignedOr(scope)
            | Access::IdTokenOr(scope)
            | Access::AuditorSessionOr(scope) => scope,
        };
        scoped += 1;
        for token in [None, Some("openapi-test-token-nobody-knows-0000000000")] {
            let a = answer(call(&running, route, token)).await;
            if a.status != 401
                || a.content_type != "application/problem+json"
                || !problem_type(&a).ends_with("/unauthorized")
            {
                problems
                    .push(format!("{method} {path} with token {token:?}: {} {} {}", a.status, a.content_type, a.body));
            }
            if !a.challenge.starts_with("Bearer") {
                problems.push(format!("{method} {path}: 401 without WWW-Authenticate: Bearer"));
            }
            problems.extend(conforms(&doc, method, path, &a));
        }
        for other in Scope::ALL.into_iter().filter(|s| *s != scope) {
            let a = answer(call(&running, route, Some(token_of(other)))).await;
            let detail =
                serde_json::from_str::<Value>(&a.body).ok().and_then(|v| v["detail"].as_str().map(String::from));
            if a.status != 403
                || a.content_type != "application/problem+json"
                || !problem_type(&a).ends_with("/insufficient-scope")
                || !detail.is_some_and(|d| d.contains(scope.as_str()))
            {
                problems
                    .push(format!("{method} {path} with a {other} token: {} {} {}", a.status, a.content_type, a.body));
            }
            let want = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
            if a.challenge != want {
                problems.push(format!("{method} {path}: 403 with WWW-Authenticate {:?}, want {want:?}", a.challenge));
            }
            problems.extend(conforms(&doc, method, path, &a));
        }
        let a = answer(call(&running, route, Some(token_of(scope)))).await;
        if a.status == 401 || a.status == 403 {
            problems.push(format!("{method} {path} refused its own scope's token: {} {}", a.status, a.body));
        }
        problems.extend(conforms(&doc, method, path, &a));
    }
    assert!(scoped >= 9, "only {scoped} scoped routes: is the change gate mounted?");

    // The webhook's other credential: a valid signature instead of a bearer token; a bad one is 401.
    let webhook = "/v1/webhooks/servicenow";
    let payload = r#"{"sys_id":"0123456789abcdef0123456789abcdef","approval":"approved"}"#;
    for (signature, signed) in
        [(sign(payload, jiff::Timestamp::now().as_second()), true), ("t=1,v1=00".to_string(), false)]
    {
        let req = client()
            .post(format!("{}{webhook}", running.base_url))
            .header("content-type", "application/json")
            .header("x-gatehouse-signature", signature)
            .body(payload);
        let a = answer(req).await;
        if signed && (a.status == 401 || a.status == 403) || !signed && a.status != 401 {
            problems.push(format!("POST {webhook} signed={signed}: {} {}", a.status, a.body));
        }
        problems.extend(conforms(&doc, "POST", webhook, &a));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn sign(payload: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn what_the_routes_answer_is_what_the_document_says() {
    let running = serve().await;
    let doc = fetch_document(&running).await;
    let http = client();
    let url = |path: &str| format!("{}{path}", running.base_url);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut check = |route: (&str, &str), a: Answer, expected: u16| {
        seen.insert(key(route.0, route.1));
        if a.status != expected {
            problems.push(format!("{} {}: {} (expected {expected}) {}", route.0, route.1, a.status, a.body));
        }
        problems.extend(conforms(&doc, route.0, route.1, &a));
    };
    let sn = |req: RequestBuilder| req.bearer_auth(SERVICENOW_TOKEN);
    let ci = |req: RequestBuilder| req.bearer_auth(CI_TOKEN);

    check(("GET", "/healthz"), answer(http.get(url("/healthz"))).await, 200);
    check(("GET", "/openapi.json"), answer(http.get(url("/openapi.json"))).await, 200);

    // Catalog.
    check(("GET", "/v1/clouds"), answer(sn(http.get(url("/v1/clouds")))).await, 200);
    let options = ("GET", "/v1/clouds/{cloud}/options");
    check(options, answer(sn(http.get(url("/v1/clouds/demo/options")))).await, 200);
    check(options, answer(sn(http.get(url("/v1/clouds/nowhere/options")))).await, 404);
    for kind in ["images", "flavors", "networks"] {
        check(
            ("GET", "/v1/clouds/{cloud}/{kind}"),
            answer(sn(http.get(url(&format!("/v1/clouds/demo/{kind}"))))).await,
            200,
        );
    }
    check(("GET", "/v1/clouds/{cloud}/{kind}"), answer(sn(http.get(url("/v1/clouds/demo/volumes")))).await, 404);

    // Intake: refusals (a real submission needs the request item in ServiceNow; the other e2e
    // tests cover it), then a seeded request read back and cancelled.
    let submit = ("POST", "/v1/requests");
    let post = |body: String, ct: &str| sn(http.post(url("/v1/requests"))).header("content-type", ct).body(body);
    check(submit, answer(post("{}".into(), "application/json")).await, 422);
    check(submit, answer(post("{\"source\":".into(), "application/json")).await, 400);
    check(submit, answer(post("{}".into(), "text/plain")).await, 415);
    check(submit, answer(post(format!("\"{}\"", "x".repeat(70_000)), "application/json")).await, 413);
    let (first, _) = seed(&running).await;
    let show = ("GET", "/v1/requests/{id}");
    check(show, answer(sn(http.get(url(&format!("/v1/requests/{}", first.id))))).await, 200);
    check(show, answer(sn(http.get(url(&format!("/v1/requests/{}", RequestId::generate()))))).await, 404);
    let cancel = ("POST", "/v1/requests/{id}/cancel");
    let cancel_url = url(&format!("/v1/requests/{}/cancel", first.id));
    check(cancel, answer(sn(http.post(&cancel_url)).json(&json!({"reason": "RITM cancelled"}))).await, 200);
    check(cancel, answer(sn(http.post(&cancel_url))).await, 200);
    check(cancel, answer(sn(http.post(&cancel_url)).json(&json!({"why": "?"}))).await, 422);
    // Retire: a request that is not active, one unknown, a body that names no decommission item
    // ServiceNow holds (the leases test retires one for real), and a retired request answered again.
    let retire = ("POST", "/v1/requests/{id}/retire");
    let retire_url = |id: &RequestId| url(&format!("/v1/requests/{id}/retire"));
    let decommission = json!({"source": {"number": "RITM0099999", "sys_id": "0123456789abcdef0123456789abcdef"}});
    check(retire, answer(sn(http.post(retire_url(&first.id))).json(&decommission)).await, 409);
    check(retire, answer(sn(http.post(retire_url(&RequestId::generate()))).json(&decommission)).await, 404);
    let active = seed_in(&running, Status::Active).await;
    check(retire, answer(sn(http.post(retire_url(&active))).json(&decommission)).await, 422);
    check(retire, answer(sn(http.post(retire_url(&active))).json(&json!({"source": {"number": "x"}}))).await, 422);
    let retired = seed_in(&running, Status::Retired).await;
    check(retire, answer(sn(http.post(retire_url(&retired))).json(&decommission)).await, 200);
    // A dead message of a request, revived; one still being tried; one the request does not have.
    let (owner, dead) = seed_owed_message(&running, true).await;
    let retry = ("POST", "/v1/requests/{id}/messages/{mid}/retry");
    let retry_url = |owner: &RequestId, mid: &str| url(&format!("/v1/requests/{owner}/messages/{mid}/retry"));
    check(retry, answer(sn(http.post(retry_url(&owner, &dead)))).await, 202);
    check(retry, answer(sn(http.post(retry_url(&owner, RequestId::generate().as_str())))).await, 404);
    let (owner, pending) = seed_owed_message(&running, false).await;
    check(retry, answer(sn(http.post(retry_url(&owner, &pending)))).await, 409);

    // Audit: a request's evidence record (JSON and the HTML page), one unknown; the export of a
    // period a page at a time, and a period given wrong.
    let evidence = ("GET", "/v1/requests/{id}/evidence");
    let audit = |req: RequestBuilder| req.bearer_auth(AUDIT_TOKEN);
    let evidence_url = url(&format!("/v1/requests/{}/evidence", first.id));
    check(evidence, answer(audit(http.get(&evidence_url))).await, 200);
    check(evidence, answer(audit(http.get(&evidence_url)).header("accept", "text/html")).await, 200);
    check(
        evidence,
        answer(audit(http.get(url(&format!("/v1/requests/{}/evidence", RequestId::generate()))))).await,
        404,
    );
    let export = ("GET", "/v1/audit/export");
    check(export, answer(audit(http.get(url("/v1/audit/export?since=2020-01-01T00%3A00%3A00Z&limit=1")))).await, 200);
    check(export, answer(audit(http.get(url("/v1/audit/export?until=2020-01-01T00%3A00%3A00Z")))).await, 422);
    // A record by its ServiceNow sys_id: found, none, and a sys_id given wrong.
    let records = ("GET", "/v1/audit/records");
    let record_url = |sys_id: &str| url(&format!("/v1/audit/records?servicenow_sys_id={sys_id}"));
    check(records, answer(audit(http.get(record_url(&first.source.sys_id)))).await, 200);
    check(records, answer(audit(http.get(record_url(&"0".repeat(32))))).await, 404);
    check(records, answer(audit(http.get(record_url("RITM0010001")))).await, 422);
    // The audit page and its API: a search, one with an unknown parameter; who is calling; the
    // sign-in (none configured here); the page's files.
    let search = ("GET", "/v1/audit/search");
    check(search, answer(audit(http.get(url("/v1/audit/search?since=2020-01-01T00%3A00%3A00Z&person=a")))).await, 200);
    check(search, answer(audit(http.get(url("/v1/audit/search?since=2020-01-01T00%3A00%3A00Z&who=a")))).await, 422);
    check(("GET", "/v1/audit/me"), answer(audit(http.get(url("/v1/audit/me")))).await, 200);
    check(("GET", "/v1/audit/sign-in"), answer(http.get(url("/v1/audit/sign-in"))).await, 404);
    for file in ["/audit/", "/audit/audit.js", "/audit/audit.css"] {
        check(("GET", file), answer(http.get(url(file))).await, 200);
    }

    // Approval: the page and the decision, as JSON and as HTML.
    let (_, link) = seed(&running).await;
    let page = ("GET", "/v1/approvals/{token}");
    let page_url = url(&format!("/v1/approvals/{link}"));
    check(page, answer(http.get(&page_url).header("accept", "application/json")).await, 200);
    check(page, answer(http.get(&page_url)).await, 200);
    check(page, answer(http.get(url(&format!("/v1/approvals/{}", ApprovalToken::generate().expose())))).await, 404);
    let decide = ("POST", "/v1/approvals/{token}");
    let json_decision = |body: Value| http.post(&page_url).header("accept", "application/json").json(&body);
    check(decide, answer(json_decision(json!({"decision": "maybe"}))).await, 422);
    check(decide, answer(json_decision(json!({"decision": "deny", "comment": "not this quarter"}))).await, 200);
    check(decide, answer(json_decision(json!({"decision": "approve"}))).await, 409);
    check(decide, answer(http.post(&page_url).form(&[("decision", "approve")])).await, 409);
    check(decide, answer(http.post(&page_url).header("accept", "application/json").body("x")).await, 415);
    // Sign-in: this serve lets the link alone decide, so there is none to start or finish.
    let sign_in = ("GET", "/v1/approvals/{token}/sign-in");
    check(sign_in, answer(http.get(format!("{page_url}/sign-in"))).await, 404);
    let callback = ("GET", "/v1/auth/callback");
    check(callback, answer(http.get(url("/v1/auth/callback"))).await, 400);
    check(callback, answer(http.get(url("/v1/auth/callback?code=c&state=s"))).await, 404);

    // The change gate, against the ServiceNow and GitLab simulators.
    let body = json!({
        "project_id": 4242, "project_path": "acme/shop", "sha": SHA, "ref": "main",
        "environment": "production", "pipeline_id": 900001,
        "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001",
        "job_id": 77001, "merge_request_iid": 7, "title": "Deploy shop 1.4.2"
    });
    let changes = ("POST", "/v1/changes");
    let created = answer(ci(http.post(url("/v1/changes"))).json(&body)).await;
    let change: Value = serde_json::from_str(&created.body).unwrap_or(Value::Null);
    check(changes, created, 201);
    check(changes, answer(ci(http.post(url("/v1/changes"))).json(&body)).await, 200);
    check(changes, answer(ci(http.post(url("/v1/changes"))).json(&json!({"project_id": 4242}))).await, 422);
    let status = ("GET", "/v1/changes/{project_id}/{sha}");
    let status_url = url(&format!("/v1/changes/4242/{SHA}"));
    check(status, answer(ci(http.get(format!("{status_url}?environment=production")))).await, 200);
    check(status, answer(ci(http.get(format!("{status_url}?environment=staging")))).await, 404);
    check(status, answer(ci(http.get(&status_url))).await, 422);
    let report = ("POST", "/v1/changes/{project_id}/{sha}/deployments");
    let deployment = json!({"environment": "production", "status": "success",
        "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001"});
    // Not approved yet: recorded on the change, which stays open.
    check(report, answer(ci(http.post(format!("{status_url}/deployments"))).json(&deployment)).await, 409);
    // The change record's evidence, its lookup by the change's sys_id, and a change not there.
    let change_evidence = ("GET", "/v1/changes/{project_id}/{sha}/evidence");
    let evidence_url = format!("{status_url}/evidence");
    check(change_evidence, answer(audit(http.get(format!("{evidence_url}?environment=production")))).await, 200);
    check(change_evidence, answer(audit(http.get(format!("{evidence_url}?environment=staging")))).await, 404);
    check(change_evidence, answer(audit(http.get(&evidence_url))).await, 422);
    let change_sys_id = change["sys_id"].as_str().unwrap_or_default();
    check(records, answer(audit(http.get(record_url(change_sys_id)))).await, 200);
    let webhook = ("POST", "/v1/webhooks/servicenow");
    let payload = json!({"sys_id": change["sys_id"], "number": change["number"], "approval": "requested"}).to_string();
    let signed = http
        .post(url("/v1/webhooks/servicenow"))
        .header("content-type", "application/json")
        .header("x-gatehouse-signature", sign(&payload, jiff::Timestamp::now().as_second()))
        .body(payload);
    check(webhook, answer(signed).await, 202);
    let unknown = json!({"sys_id": "0123456789abcdef0123456789abcdef"});
    check(
        webhook,
        answer(http.post(url("/v1/webhooks/servicenow")).bearer_auth(WEBHOOK_TOKEN).json(&unknown)).await,
        404,
    );

    // Lease: the Extend link's page and its one extension, as JSON and as HTML.
    let lease = seed_lease(&running).await;
    let lease_page = ("GET", "/v1/leases/{token}");
    let lease_url = url(&format!("/v1/leases/{lease}"));
    check(lease_page, answer(http.get(&lease_url).header("accept", "application/json")).await, 200);
    check(lease_page, answer(http.get(&lease_url)).await, 200);
    check(lease_page, answer(http.get(url(&format!("/v1/leases/{}", ApprovalToken::generate().expose())))).await, 404);
    let extend = ("POST", "/v1/leases/{token}");
    check(extend, answer(http.post(&lease_url).header("accept", "application/json")).await, 200);
    check(extend, answer(http.post(&lease_url).header("accept", "application/json")).await, 409);
    check(extend, answer(http.post(&lease_url)).await, 409);

    // GitLab's webhook: this serve has no GitLab secret configured, so every event is refused.
    let gitlab_hook = ("POST", "/v1/webhooks/gitlab");
    let event = json!({"object_kind": "pipeline", "project": {"id": 4242}, "object_attributes": {"id": 900001}});
    check(
        gitlab_hook,
        answer(http.post(url("/v1/webhooks/gitlab")).header("x-gitlab-token", "guess").json(&event)).await,
        401,
    );

    assert!(problems.is_empty(), "answers that differ from /openapi.json:\n{}", problems.join("\n"));
    let unexercised: Vec<_> =
        running.routes.iter().map(route_key).filter(|k| !seen.contains(k)).map(|(m, p)| format!("{m} {p}")).collect();
    assert!(unexercised.is_empty(), "routes this test does not exercise yet: {unexercised:?}");
}
