//! The auditor's view end to end (DESIGN.md "Audit evidence"), against `gatehouse serve`:
//! a provisioned request's evidence record verifies and its HTML page is escaped and locked down;
//! the export of a period holds exactly the requests touched in it, a page at a time, each once;
//! `gatehouse audit verify` passes, then names the request and entry of a history row edited in
//! the SQLite file; `gatehouse audit export --format csv` writes a file a CSV reader takes; a token
//! of another scope gets 403.

mod support;

use std::time::Duration;

use domain::config::{ApiTokens, Scope};
use jiff::Timestamp;
use serde_json::{Value, json};
use support::{Harness, intake_body, links, page_of, sys_id};

const APPROVER: &str = "approver@demo.invalid";
const SERVICENOW_TOKEN: &str = "audit-test-token-of-scope-servicenow-00000001";
const AUDIT_TOKEN: &str = "audit-test-token-of-scope-audit-0000000000001";
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// One token per scope: ServiceNow's for intake and the request API, the auditor's for the rest.
fn two_tokens(c: &mut domain::config::Config) {
    c.api_tokens = ApiTokens::new([(Scope::ServiceNow, SERVICENOW_TOKEN), (Scope::Audit, AUDIT_TOKEN)]);
}

async fn start(with_servicenow: bool) -> Harness {
    let mut h = if with_servicenow {
        Harness::start_with_servicenow(two_tokens).await
    } else {
        Harness::start_with(two_tokens).await
    };
    h.api.token = SERVICENOW_TOKEN.into();
    h
}

/// GET `path` with the audit token (and `accept`): status, headers, body.
async fn audit_get(h: &Harness, path: &str, accept: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = h.http.get(h.url(path)).bearer_auth(AUDIT_TOKEN).header("accept", accept).send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Approves `id` through the link in the approver's mail, with `comment`.
async fn approve(h: &Harness, id: &str, comment: &str) {
    support::wait_until(Duration::from_secs(15), || h.mails_to(APPROVER).iter().any(|m| m.text.contains(id))).await;
    let mails = h.mails_to(APPROVER);
    let mail = mails.iter().find(|m| m.text.contains(id)).expect("the approver's mail for the request");
    let page = page_of(&links(mail).0);
    let body = json!({"decision": "approve", "comment": comment});
    let resp = h.http.post(&page).header("accept", "application/json").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// Waits until every message `id` owes went out (a delivered work note joins its history).
async fn settled(h: &Harness, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = h.request(id).await;
        if r["messages"].as_array().is_some_and(|m| m.is_empty()) {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "the messages never all went out: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn submit(h: &Harness, body: &Value) -> String {
    let (status, answer) = h.intake(body).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provisioned_requests_evidence_verifies_and_its_page_shows_it_escaped() {
    let h = start(true).await;
    let mut order = h.order();
    order["justification"] = json!("<script>alert('x')</script> & load test");
    let id = submit(&h, &order).await;
    approve(&h, &id, "fine").await;
    h.wait_status(&id, "active", Duration::from_secs(20)).await;
    let shown = settled(&h, &id).await;

    let (status, headers, body) = audit_get(&h, &format!("/v1/requests/{id}/evidence"), "application/json").await;
    assert_eq!(status, 200, "{body}");
    assert!(header(&headers, "content-type").starts_with("application/json"));
    assert_eq!(header(&headers, "cache-control"), "no-store");
    let record: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(record["kind"], "request");
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["chain_ok"], true, "{record}");
    assert_eq!(record["chain_break"], Value::Null);
    assert_eq!(record["status"], "active");
    assert_eq!(record["servicenow"]["number"], order["source"]["number"]);
    assert_eq!(record["servicenow"]["sys_id"], order["source"]["sys_id"]);
    // The full history with its hashes, as the request's own view shows it.
    let history = record["history"].as_array().unwrap();
    assert_eq!(record["history"], shown["history"]);
    assert_eq!(record["request"]["chain"]["count"], history.len());
    assert!(history.iter().all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64)), "{record}");
    assert!(record["request"].get("history").is_none(), "the history is given once, at the top");
    assert_eq!(record["request"]["justification"], order["justification"]);
    // The approval: who, in which stage of which rule, when, and how they proved who they were.
    let approvals = record["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 1, "{record}");
    assert_eq!(approvals[0]["approver"], APPROVER);
    assert_eq!((approvals[0]["stage"].clone(), approvals[0]["rule"].clone()), (json!(0), json!("default")));
    assert!(approvals[0]["proof"].as_str().is_some_and(|p| p.starts_with("link only")), "{record}");
    assert_eq!(record["decision"]["decided_by"], APPROVER);
    // The servers, and what the record says of mails.
    let servers = record["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    assert!(servers[0]["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(servers[0]["addresses"].as_array().is_some_and(|a| !a.is_empty()), "{record}");
    assert!(record["mails"]["kept"].as_str().unwrap().contains("entry of the request's history"));
    // Every mail sent, from the chained history: to whom, which, the subject, when.
    let sent = record["mails"]["sent"].as_array().unwrap();
    let asked = sent.iter().find(|m| m["template"] == "approval_request").expect("the approver's mail");
    assert_eq!(asked["to"], APPROVER);
    assert!(asked["subject"].as_str().unwrap().starts_with("Approval needed:"), "{asked}");
    assert!(asked["sent_at"].is_string());
    assert!(sent.iter().any(|m| m["template"] == "active"), "the requester heard the VM is up: {sent:?}");
    assert_eq!(record["mails"]["owed"], json!([]));

    let (status, headers, page) = audit_get(&h, &format!("/v1/requests/{id}/evidence"), "text/html").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert_eq!(header(&headers, "content-security-policy"), CSP);
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert_eq!(header(&headers, "referrer-policy"), "no-referrer");
    assert!(!page.contains("<script"), "the justification shows as text, never as a script: {page}");
    assert!(page.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2F;script&gt; &amp; load test"), "{page}");
    assert!(page.contains("History chain verified"));
    assert!(page.contains(history.last().unwrap()["hash"].as_str().unwrap()), "every hash is shown");

    // Another scope's token is refused, naming the scope needed; an unknown request is 404.
    let resp = h.get(&format!("/v1/requests/{id}/evidence")).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("audit"));
    let (status, _, _) = audit_get(&h, &format!("/v1/requests/{}/evidence", sys_like_id()), "application/json").await;
    assert_eq!(status, 404);
}

async fn cancel(h: &Harness, id: &str) {
    let resp = h.post(&format!("/v1/requests/{id}/cancel")).json(&json!({"reason": "closed"})).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

fn sys_like_id() -> String {
    domain::model::RequestId::generate().to_string()
}

/// Every record of the export of `query`, following `Link: <…>; rel="next"`, and the pages.
async fn walk(h: &Harness, query: &str) -> (Vec<Value>, usize) {
    let (mut records, mut pages) = (Vec::new(), 0);
    let mut next = Some(format!("/v1/audit/export?{query}"));
    while let Some(path) = next.take() {
        let (status, headers, body) = audit_get(h, &path, "*/*").await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(header(&headers, "content-type"), "application/jsonl");
        pages += 1;
        records.extend(body.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
        let link = header(&headers, "link");
        if !link.is_empty() {
            let target = link.strip_prefix('<').and_then(|l| l.split_once(">; rel=\"next\"")).expect(link).0;
            assert!(target.starts_with("/v1/audit/export?") && target.contains("cursor="), "{link}");
            next = Some(target.to_string());
        }
    }
    (records, pages)
}

fn ids(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

fn query(since: Timestamp, until: Timestamp, limit: Option<usize>) -> String {
    let mut q = format!("since={}&until={}", encode(since), encode(until));
    if let Some(n) = limit {
        q.push_str(&format!("&limit={n}"));
    }
    q
}

fn encode(t: Timestamp) -> String {
    t.to_string().replace(':', "%3A")
}

/// A 422 naming `field`.
async fn refused(h: &Harness, query: &str, field: &str) {
    let (status, headers, body) = audit_get(h, &format!("/v1/audit/export?{query}"), "*/*").await;
    assert_eq!(status, 422, "{query}: {body}");
    assert_eq!(header(&headers, "content-type"), "application/problem+json");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_export_of_a_period_holds_exactly_its_requests_each_once() {
    let h = start(false).await;
    let before = submit(&h, &intake_body(&sys_id())).await;
    let revisited = submit(&h, &intake_body(&sys_id())).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let since = Timestamp::now();
    let mut inside = Vec::new();
    for _ in 0..7 {
        inside.push(submit(&h, &intake_body(&sys_id())).await);
    }
    // Created before the period and written in it (cancelled): it belongs to the period.
    cancel(&h, &revisited).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let until = Timestamp::now();
    let after = submit(&h, &intake_body(&sys_id())).await;

    let (all, pages) = walk(&h, &query(since, until, None)).await;
    assert_eq!(pages, 1);
    let mut want = inside.clone();
    want.push(revisited.clone());
    assert_eq!(ids(&all), want, "every request touched in the period, in the order written, and nothing else");
    for out in [&before, &after] {
        assert!(!ids(&all).contains(out), "{out} was not touched in the period");
    }
    assert!(all.iter().all(|r| r["chain_ok"] == true && r["history"].as_array().is_some_and(|h| !h.is_empty())));

    // Pages of three: 8 records in three pages, each exactly once, in the same order.
    let (paged, pages) = walk(&h, &query(since, until, Some(3))).await;
    assert_eq!(pages, 3);
    assert_eq!(ids(&paged), ids(&all));
    let (one_by_one, pages) = walk(&h, &query(since, until, Some(1))).await;
    assert_eq!((ids(&one_by_one), pages), (ids(&all), 8));

    // `before`, written now (cancelled), moves into a later period and out of none it was in.
    cancel(&h, &before).await;
    let (later, _) = walk(&h, &format!("since={}", encode(until))).await;
    assert_eq!(ids(&later), vec![after.clone(), before.clone()]);

    // Bad input is a 422 naming the field.
    refused(&h, "", "since").await;
    refused(&h, "since=yesterday", "since").await;
    refused(&h, &format!("since={}&until=2000-01-01T00%3A00%3A00Z", encode(since)), "until").await;
    refused(&h, &format!("since={}&cursor=bm90LWEtY3Vyc29y", encode(since)), "cursor").await;
    refused(&h, &format!("since={}&limit=0", encode(since)), "limit").await;
    refused(&h, &format!("since={}&page=2", encode(since)), "page").await;
    // A cursor from this period is refused for another.
    let first = audit_get(&h, &format!("/v1/audit/export?{}", query(since, until, Some(1))), "*/*").await.1;
    let link = header(&first, "link");
    let cursor = link.split("cursor=").nth(1).unwrap().split(['&', '>']).next().unwrap().to_string();
    refused(&h, &format!("since={}&cursor={cursor}", encode(until)), "cursor").await;

    // Another scope's token gets 403 naming the scope; none gets 401.
    let resp = h.get(&format!("/v1/audit/export?{}", query(since, until, None))).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("audit"));
    let resp = h.http.get(h.url("/v1/audit/export?since=2026-01-01T00%3A00%3A00Z")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

/// RFC 4180 as a reader takes it: quoted fields with doubled quotes, rows ending in CRLF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => {
                assert!(field.is_empty(), "a quote inside an unquoted field");
                quoted = true;
            }
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "a row ends with CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted && field.is_empty() && row.is_empty(), "the file ends after a whole row");
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_verifies_names_an_edited_row_and_writes_csv() {
    let h = start(false).await;
    let since = Timestamp::now();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submit(&h, &intake_body(&sys_id())).await);
    }
    let edited = ids[1].clone();
    approve(&h, &edited, "He said \"yes\", twice\nand meant it").await;
    h.wait_status(&edited, "active", Duration::from_secs(20)).await;
    let base = h.base.clone();
    let since_arg = since.to_string();

    let (code, stdout, stderr) =
        support::gatehouse_audit(&["verify", "--url", &base, "--since", &since_arg], AUDIT_TOKEN).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("3 requests touched in") && stdout.contains("every history chain verifies"), "{stdout}");

    let out = support::temp_dir("audit-csv").join("period.csv");
    let out_arg = out.to_str().unwrap();
    let args = ["export", "--url", &base, "--since", &since_arg, "--format", "csv", "--output", out_arg];
    let (code, stdout, stderr) = support::gatehouse_audit(&args, AUDIT_TOKEN).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let rows = parse_csv(&std::fs::read_to_string(&out).unwrap());
    let header =
        "record_id,number,requester,cloud,status,entry,at,actor,from,to,note,proof,hash,kind,environment,event";
    assert_eq!(rows[0].join(","), header);
    let mut entries = 0;
    for id in &ids {
        let history = h.request(id).await["history"].as_array().unwrap().clone();
        let mine: Vec<&Vec<String>> = rows.iter().filter(|r| &r[0] == id).collect();
        assert_eq!(mine.len(), history.len(), "one row per history entry of {id}");
        for (i, (row, entry)) in mine.iter().zip(&history).enumerate() {
            assert_eq!(row.len(), 16);
            assert_eq!((row[5].as_str(), row[7].as_str()), (i.to_string().as_str(), entry["actor"].as_str().unwrap()));
            assert_eq!(row[10], entry["note"].as_str().unwrap_or(""), "the note, quotes and line breaks kept");
            assert_eq!(row[12], entry["hash"].as_str().unwrap());
        }
        entries += history.len();
    }
    assert_eq!(rows.len(), 1 + entries);
    assert!(rows.iter().any(|r| r[10].contains("\"yes\", twice\nand")), "the comment survives quoting");

    // Someone with the database but not the evidence key rewrites the approval.
    let history = h.request(&edited).await["history"].as_array().unwrap().clone();
    let entry = history.iter().position(|e| e["to"] == "approved").unwrap();
    support::rewrite_history_actor(&h.data_dir, &edited, entry, "mallory@example.com");
    let (code, stdout, stderr) =
        support::gatehouse_audit(&["verify", "--url", &base, "--since", &since_arg], AUDIT_TOKEN).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("request {edited}")), "{stdout}");
    assert!(stdout.contains(&format!("history entry {entry} is broken")), "{stdout}");
    assert!(stdout.contains("edited"), "{stdout}");

    // A token of another scope: refused (403), exit 3.
    let (code, _, stderr) = support::gatehouse_audit(&["verify", "--url", &base], SERVICENOW_TOKEN).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("403") && stderr.contains("scope audit"), "{stderr}");
}
