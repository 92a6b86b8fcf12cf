//! The audit page's API (DESIGN.md "Audit evidence"), through HTTP against `gatehouse serve`: the
//! search finds a request by any part of its requester (any case) and by its number, and nobody
//! else's; the period bounds it; bad parameters are 422s naming the field; another scope's token
//! gets 403. An auditor listed in `GATEHOUSE_AUDITORS` signs in at a real OpenID provider
//! (node-oidc-provider, tests/oidc/start-provider.sh) and searches with the session; someone else
//! signing in gets 403 and no session; an approver's session opens nothing here.

mod support;

#[path = "../oidc/signin.rs"]
mod signin;

use domain::config::{ApiTokens, ApproverProof, Scope};
use jiff::Timestamp;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::Value;
use signin::{no_redirects, set_cookie, sign_in_at_real_provider};
use support::{Harness, intake_body, links, page_of, real_provider, sys_id};

const SERVICENOW_TOKEN: &str = "audit-page-test-token-of-scope-servicenow-0001";
const AUDIT_TOKEN: &str = "audit-page-test-token-of-scope-audit-000000001";
const AUDITOR: &str = "approver@demo.invalid";
const NOT_AN_AUDITOR: &str = "second@demo.invalid";
const PASSWORD: &str = "demo";

fn tokens(c: &mut domain::config::Config) {
    c.api_tokens = ApiTokens::new([(Scope::ServiceNow, SERVICENOW_TOKEN), (Scope::Audit, AUDIT_TOKEN)]);
}

/// A request for `email` (`name`) under ServiceNow `number`, through intake; answers its id.
async fn order(h: &Harness, number: &str, email: &str, name: &str) -> String {
    let mut body = intake_body(&sys_id());
    body["source"]["number"] = number.into();
    body["requester"] = serde_json::json!({"email": email, "name": name});
    let (status, answer) = h.intake(&body).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// GET /v1/audit/search?<pairs> with `auth` applied: status and body.
async fn search_with(
    h: &Harness,
    pairs: &[(&str, &str)],
    auth: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (u16, Value) {
    let resp = auth(h.http.get(h.url(&format!("/v1/audit/search?{}", query(pairs))))).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn search(h: &Harness, pairs: &[(&str, &str)]) -> (u16, Value) {
    search_with(h, pairs, |r| r.bearer_auth(AUDIT_TOKEN)).await
}

fn numbers(answer: &Value) -> Vec<String> {
    answer["results"].as_array().unwrap().iter().map(|r| r["number"].as_str().unwrap().to_string()).collect()
}

fn field_of(answer: &Value) -> String {
    answer["errors"][0]["field"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn the_search_finds_a_request_by_its_requester_or_number_in_its_period_only() {
    let mut h = Harness::start_with(tokens).await;
    h.api.token = SERVICENOW_TOKEN.into();
    let before = Timestamp::now().to_string();
    let grace = order(&h, "RITM0020001", "grace.hopper@example.com", "Grace Hopper").await;
    let ada = order(&h, "RITM0020002", "ada@example.com", "Ada Lovelace").await;
    let since = before.as_str();

    // By the requester: any part of the name or address, in any case.
    for person in ["HOPPER", "grace.hopper@EXAMPLE.com", "e.hop"] {
        let (status, answer) = search(&h, &[("since", since), ("person", person)]).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(numbers(&answer), ["RITM0020001"], "person={person}: {answer}");
    }
    let (_, answer) = search(&h, &[("since", since), ("person", "grace")]).await;
    let found = &answer["results"][0];
    assert_eq!((found["kind"].as_str(), found["id"].as_str()), (Some("request"), Some(grace.as_str())));
    assert_eq!((found["cloud"].as_str(), &found["environment"]), (Some("demo"), &Value::Null));
    assert_eq!(found["status"], "pending_approval");
    assert!(found["people"].as_array().unwrap().contains(&"Grace Hopper <grace.hopper@example.com>".into()));
    assert_eq!((answer["next_cursor"].clone(), answer["scanned"].as_u64()), (Value::Null, Some(2)));

    // Not by someone else; by the number (any case); the approver is on both.
    let (_, answer) = search(&h, &[("since", since), ("person", "ada@")]).await;
    assert_eq!(numbers(&answer), ["RITM0020002"]);
    let (_, answer) = search(&h, &[("since", since), ("person", "turing")]).await;
    assert_eq!(numbers(&answer), Vec::<String>::new());
    let (_, answer) = search(&h, &[("since", since), ("number", "ritm0020002")]).await;
    assert_eq!(numbers(&answer), ["RITM0020002"]);
    assert_eq!(answer["results"][0]["id"], ada.as_str());
    let (_, answer) =
        search(&h, &[("since", since), ("person", "APPROVER@demo"), ("status", "pending_approval")]).await;
    assert_eq!(numbers(&answer), ["RITM0020001", "RITM0020002"], "in the order they were written");
    let (_, answer) = search(&h, &[("since", since), ("cloud", "elsewhere")]).await;
    assert_eq!(numbers(&answer), Vec::<String>::new());

    // The period bounds the search: one that ended before the requests, one that starts after.
    let (_, answer) = search(&h, &[("since", "2020-01-01T00:00:00Z"), ("until", since), ("person", "grace")]).await;
    assert_eq!(numbers(&answer), Vec::<String>::new());
    let after = Timestamp::now().to_string();
    let (_, answer) = search(&h, &[("since", &after), ("person", "grace")]).await;
    assert_eq!(numbers(&answer), Vec::<String>::new());

    // The evidence it points at opens with the same token.
    let (_, answer) = search(&h, &[("since", since), ("number", "RITM0020001")]).await;
    let evidence = answer["results"][0]["evidence_url"].as_str().unwrap().to_string();
    assert_eq!(evidence, format!("/v1/requests/{grace}/evidence"));
    let resp = h.http.get(h.url(&evidence)).bearer_auth(AUDIT_TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let record: Value = resp.json().await.unwrap();
    assert_eq!(
        (record["chain_ok"].as_bool(), record["servicenow"]["number"].as_str()),
        (Some(true), Some("RITM0020001"))
    );

    // Bad parameters: a 422 naming the field.
    for (pairs, field) in [
        (vec![("person", "grace")], "since"),
        (vec![("since", "yesterday")], "since"),
        (vec![("since", since), ("until", "2020-01-01T00:00:00Z")], "until"),
        (vec![("since", since), ("requester", "grace")], "requester"),
        (vec![("since", since), ("person", "a"), ("person", "b")], "person"),
        (vec![("since", since), ("cursor", "not-a-cursor")], "cursor"),
        (vec![("since", since), ("number", &"R".repeat(201))], "number"),
    ] {
        let (status, answer) = search(&h, &pairs).await;
        assert_eq!((status, field_of(&answer).as_str()), (422, field), "{pairs:?}: {answer}");
    }

    // Another scope's token: 403 naming the scope; none: 401.
    let (status, answer) = search_with(&h, &[("since", since)], |r| r.bearer_auth(SERVICENOW_TOKEN)).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["detail"].as_str().unwrap().contains("audit"), "{answer}");
    let (status, _) = search_with(&h, &[("since", since)], |r| r).await;
    assert_eq!(status, 401);
}

/// Starts the audit page's sign-in, signs in at the provider as `email`, and answers the
/// callback URL with the browser's binding cookie.
async fn audit_sign_in(h: &Harness, email: &str) -> (String, String) {
    let start = no_redirects().get(h.url("/v1/audit/sign-in")).send().await.unwrap();
    assert_eq!(start.status(), 303, "{}", start.text().await.unwrap());
    let (binding, attrs) = set_cookie(&start, "gatehouse_audit_signin").expect("the sign-in's browser cookie");
    assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax") && attrs.contains("Path=/v1/auth/callback"));
    let authorize = start.headers()[LOCATION].to_str().unwrap().to_string();
    let callback = sign_in_at_real_provider(&no_redirects(), &authorize, email, PASSWORD).await;
    assert!(callback.contains("/v1/auth/callback?"), "{callback}");
    (callback, binding)
}

#[tokio::test]
async fn an_auditor_signs_in_and_searches_and_nobody_else_gets_a_session() {
    let mut h = Harness::start_with(|c| {
        tokens(c);
        c.approver_proof = ApproverProof::SignIn(real_provider());
        c.auditors = vec![AUDITOR.to_uppercase()];
    })
    .await;
    h.api.token = SERVICENOW_TOKEN.into();
    let http = no_redirects();
    let before = Timestamp::now().to_string();
    order(&h, "RITM0020003", "ada@example.com", "Ada Lovelace").await;

    // Without a credential: 401, and /v1/audit/me says so.
    assert_eq!(http.get(h.url("/v1/audit/me")).send().await.unwrap().status(), 401);

    // The auditor signs in (their address listed in another case) and gets the page's session.
    let (callback, binding) = audit_sign_in(&h, AUDITOR).await;
    let back = http.get(&callback).header(COOKIE, format!("gatehouse_audit_signin={binding}")).send().await.unwrap();
    assert_eq!(back.status(), 303, "{}", back.text().await.unwrap());
    assert_eq!(back.headers()[LOCATION], "/audit/");
    let (session, attrs) = set_cookie(&back, "gatehouse_audit_session").expect("an auditor's session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/;", "Max-Age=900"] {
        assert!(format!("{attrs};").contains(attr), "{attr} in {attrs}");
    }
    assert!(!attrs.contains("Secure"), "plain http on loopback: no Secure attribute");
    // The callback works once.
    let again = http.get(&callback).header(COOKIE, format!("gatehouse_audit_signin={binding}")).send().await.unwrap();
    assert_eq!(again.status(), 403);

    let with_session = |path: &str| http.get(h.url(path)).header(COOKIE, format!("gatehouse_audit_session={session}"));
    let me: Value = with_session("/v1/audit/me").send().await.unwrap().json().await.unwrap();
    assert_eq!((me["via"].as_str(), me["email"].as_str()), (Some("sign_in"), Some(AUDITOR)), "{me}");
    let resp = with_session(&format!("/v1/audit/search?{}", query(&[("since", &before), ("person", "ada")])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(numbers(&answer), ["RITM0020003"]);
    let evidence = answer["results"][0]["evidence_url"].as_str().unwrap();
    assert_eq!(with_session(evidence).send().await.unwrap().status(), 200);
    let export = with_session(&format!("/v1/audit/export?{}", query(&[("since", &before)]))).send().await.unwrap();
    assert_eq!(export.status(), 200);
    assert!(export.text().await.unwrap().contains("RITM0020003"));

    // Someone not listed signs in: 403, a page saying so, and no session.
    let (callback, binding) = audit_sign_in(&h, NOT_AN_AUDITOR).await;
    let refused = http.get(&callback).header(COOKIE, format!("gatehouse_audit_signin={binding}")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(set_cookie(&refused, "gatehouse_audit_session").is_none());
    let page = refused.text().await.unwrap();
    assert!(page.contains("not an auditor") && page.contains("GATEHOUSE_AUDITORS"), "{page}");

    // A sign-in finished in another browser (without the binding cookie): 403, no session.
    let (callback, _) = audit_sign_in(&h, AUDITOR).await;
    let elsewhere = http.get(&callback).send().await.unwrap();
    assert_eq!(elsewhere.status(), 403);
    assert!(set_cookie(&elsewhere, "gatehouse_audit_session").is_none());

    // An approver's session (the same person, signed in for an approval link) opens nothing here.
    support::wait_until(std::time::Duration::from_secs(15), || !h.mails_to(AUDITOR).is_empty()).await;
    let link = page_of(&links(&h.mails_to(AUDITOR)[0]).0);
    let token = link.rsplit('/').next().unwrap().to_string();
    let start = http.get(format!("{link}/sign-in")).send().await.unwrap();
    assert_eq!(start.status(), 303);
    let authorize = start.headers()[LOCATION].to_str().unwrap().to_string();
    let callback = sign_in_at_real_provider(&no_redirects(), &authorize, AUDITOR, PASSWORD).await;
    let back = http.get(&callback).header(COOKIE, format!("gatehouse_link={token}")).send().await.unwrap();
    assert_eq!(back.status(), 303);
    let (approver_session, _) = set_cookie(&back, "gatehouse_session").expect("an approver's session");
    for cookie in
        [format!("gatehouse_audit_session={approver_session}"), format!("gatehouse_session={approver_session}")]
    {
        let resp = http.get(h.url("/v1/audit/me")).header(COOKIE, &cookie).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{cookie}");
    }
}
