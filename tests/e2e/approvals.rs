//! Intake and scanner-safe approvals through HTTP against `gatehouse serve`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Harness, intake_body, links, page_of, sys_id};

const APPROVER: &str = "approver@demo.invalid";
const REQUESTER: &str = "ada@example.com";

async fn submit(h: &Harness) -> (String, String) {
    let (status, body) = h.intake(&intake_body(&sys_id())).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let mails = h.wait_mails_to(APPROVER, 1).await;
    let mail = mails.iter().find(|m| m.text.contains(&id)).expect("approver mail for the request");
    (id, links(mail).0)
}

/// History entries that decided the request.
fn decisions(request: &Value) -> usize {
    support::steps(request).iter().filter(|h| h["from"] == "pending_approval").count()
}

async fn post_decision(h: &Harness, link: &str, form: &[(&str, &str)]) -> (u16, String) {
    let resp = h.http.post(page_of(link)).form(form).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn post_json_decision(h: &Harness, link: &str, body: Value) -> (u16, Value) {
    let resp = h.http.post(page_of(link)).header("accept", "application/json").json(&body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn intake_mails_the_approver_links_only_show_and_the_button_approves() {
    let h = Harness::start().await;
    let (id, approve) = submit(&h).await;
    assert_eq!(h.mails_to(APPROVER).len(), 1, "exactly one approver mail");
    let received = h.wait_mails_to(REQUESTER, 1).await;
    assert!(received[0].subject.contains("Received"), "{}", received[0].subject);

    // Mail scanners fetch and render links: GET and HEAD, on both links, change nothing.
    let deny = approve.replace("decision=approve", "decision=deny");
    for link in [&approve, &deny] {
        let resp = h.http.get(link).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        for (header, value) in
            [("cache-control", "no-store"), ("referrer-policy", "no-referrer"), ("x-frame-options", "DENY")]
        {
            assert_eq!(resp.headers()[header], value);
        }
        assert!(resp.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        let page = resp.text().await.unwrap();
        assert!(page.contains("<form method=\"post\"") && page.contains("RITM0010001"));
        assert_eq!(h.http.head(link).send().await.unwrap().status(), 200);
    }
    let page = h.http.get(&approve).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("class=\"approve pre\""), "?decision=approve preselects Approve");
    let r = h.request(&id).await;
    assert_eq!(r["status"], "pending_approval");
    assert_eq!(support::steps(&r).len(), 1);

    let (status, page) = post_decision(&h, &approve, &[("decision", "approve"), ("comment", "")]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("approved"));
    let r = h.request(&id).await;
    assert_ne!(r["status"], "pending_approval");
    let last = r["history"].as_array().unwrap().iter().find(|h| h["to"] == "approved").unwrap().clone();
    assert_eq!(last["actor"], APPROVER);
    assert_eq!(last["from"], "pending_approval");
    assert_eq!(last["to"], "approved");
    let at: jiff::Timestamp = last["at"].as_str().unwrap().parse().unwrap();
    assert!((jiff::Timestamp::now() - at).get_seconds() < 30);

    let mails = h.wait_mails_to(REQUESTER, 2).await;
    assert!(mails[1].subject.starts_with("Approved: RITM0010001"), "{}", mails[1].subject);
    assert!(mails[1].text.contains(APPROVER));

    // The link is spent: a second click shows the decision with 409.
    let (status, page) = post_decision(&h, &approve, &[("decision", "deny")]).await;
    assert_eq!(status, 409);
    assert!(page.contains("already approved by approver@demo.invalid"), "{page}");
    assert_eq!(decisions(&h.request(&id).await), 1);
}

#[tokio::test]
async fn deny_carries_the_comment_to_the_requester_and_kills_the_links() {
    let h = Harness::start().await;
    let (id, link) = submit(&h).await;
    let (status, body) =
        post_json_decision(&h, &link, json!({"decision": "deny", "comment": "Use the shared <pool> instead"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "denied");
    let r = h.request(&id).await;
    assert_eq!(r["status"], "denied");
    assert_eq!(support::steps(&r)[1]["note"], "Use the shared <pool> instead");
    let mails = h.wait_mails_to(REQUESTER, 2).await;
    let denied = mails.iter().find(|m| m.subject.starts_with("Denied")).expect("denied mail");
    assert!(denied.text.contains("Comment: Use the shared <pool> instead"));
    assert!(denied.html.contains("Use the shared &lt;pool&gt; instead"), "escaped in HTML");
    let (status, body) = post_json_decision(&h, &link, json!({"decision": "approve"})).await;
    assert_eq!(status, 409);
    assert_eq!(body["status"], "denied");
    assert_eq!(body["decided_by"], APPROVER);
}

#[tokio::test]
async fn an_expired_link_answers_410_with_a_page_saying_so() {
    let h = Harness::start_with(|c| c.approval_ttl = Duration::from_millis(1500)).await;
    let (id, link) = submit(&h).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let resp = h.http.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), 410);
    assert!(resp.text().await.unwrap().contains("expired"));
    let (status, page) = post_decision(&h, &link, &[("decision", "approve")]).await;
    assert_eq!(status, 410);
    assert!(page.contains("This approval link expired"), "{page}");
    assert_eq!(h.request(&id).await["status"], "pending_approval", "nothing decided");
}

#[tokio::test]
async fn cancel_kills_the_links_and_tells_the_requester() {
    let h = Harness::start().await;
    let (id, link) = submit(&h).await;
    let resp =
        h.post(&format!("/v1/requests/{id}/cancel")).json(&json!({"reason": "RITM cancelled"})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["status"], "cancelled");
    assert_eq!(h.http.get(&link).send().await.unwrap().status(), 410);
    let (status, page) = post_decision(&h, &link, &[("decision", "approve")]).await;
    assert_eq!(status, 410);
    assert!(page.contains("cancelled"));
    let mails = h.wait_mails_to(REQUESTER, 2).await;
    assert!(mails.iter().any(|m| m.subject.starts_with("Cancelled: RITM0010001")));
    // Cancelling again answers the same; an unknown id is 404.
    assert_eq!(h.post(&format!("/v1/requests/{id}/cancel")).send().await.unwrap().status(), 200);
    let unknown = domain::model::RequestId::generate();
    assert_eq!(h.post(&format!("/v1/requests/{unknown}/cancel")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn fifty_concurrent_clicks_on_one_link_make_one_decision() {
    let h = Harness::start().await;
    let (id, link) = submit(&h).await;
    let clicks = (0..50).map(|i| {
        let decision = if i % 2 == 0 { "approve" } else { "deny" };
        post_json_decision(&h, &link, json!({"decision": decision}))
    });
    let results = futures::future::join_all(clicks).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let conflicts = results.iter().filter(|(s, _)| *s == 409).count();
    assert_eq!((ok, conflicts), (1, 49), "{results:?}");
    assert_eq!(decisions(&h.request(&id).await), 1);
}

#[tokio::test]
async fn fifty_concurrent_clicks_across_two_approvers_make_one_decision() {
    let h = Harness::start_with(|c| {
        c.approvers.by_cloud.insert("demo".into(), vec!["one@example.com".into(), "two@example.com".into()]);
    })
    .await;
    let (status, body) = h.intake(&intake_body(&sys_id())).await;
    assert_eq!(status, 202);
    let id = body["id"].as_str().unwrap().to_string();
    let one = links(&h.wait_mails_to("one@example.com", 1).await[0]).0;
    let two = links(&h.wait_mails_to("two@example.com", 1).await[0]).0;
    assert_ne!(one, two, "one token per approver");
    let clicks =
        (0..50).map(|i| post_json_decision(&h, if i % 2 == 0 { &one } else { &two }, json!({"decision": "approve"})));
    let results = futures::future::join_all(clicks).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 1);
    assert_eq!(results.iter().filter(|(s, _)| *s == 409).count(), 49);
    assert_eq!(decisions(&h.request(&id).await), 1);
}

#[tokio::test]
async fn a_replay_returns_the_same_request_and_sends_nothing_new() {
    let h = Harness::start().await;
    let sid = sys_id();
    let body = intake_body(&sid);
    let (status, first) = h.intake(&body).await;
    assert_eq!(status, 202);
    h.wait_mails_to(APPROVER, 1).await;
    // Same JSON, other key order and spacing.
    let text = serde_json::to_string_pretty(&body).unwrap();
    let resp = h.post("/v1/requests").header("content-type", "application/json").body(text).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let again: Value = resp.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let mut other = body.clone();
    other["server_name"] = json!("web-02");
    let (status, problem) = h.intake(&other).await;
    assert_eq!(status, 409, "{problem}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.mails_to(APPROVER).len(), 1, "no second approver mail");
    assert_eq!(h.mails_to(REQUESTER).len(), 1, "no second received mail");
}

#[tokio::test]
async fn forged_truncated_and_unknown_tokens_get_404() {
    let h = Harness::start().await;
    let (_, link) = submit(&h).await;
    let page = page_of(&link);
    let token = page.rsplit('/').next().unwrap().to_string();
    let never_issued = domain::token::ApprovalToken::generate();
    for bad in [
        token[..42].to_string(),
        format!("{token}x"),
        "not-a-token".to_string(),
        never_issued.expose().to_string(),
        "%2e%2e%2f%2e%2e%2fetc".to_string(),
    ] {
        let url = format!("{}/v1/approvals/{bad}", h.base);
        assert_eq!(h.http.get(&url).send().await.unwrap().status(), 404, "{bad}");
        let resp = h.http.post(&url).form(&[("decision", "approve")]).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{bad}");
    }
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request() {
    // A request only its requester could approve is refused at intake (see tests/e2e/trust.rs), so
    // here a colleague approves too.
    let h = Harness::start_with(|c| c.approvers.default = vec![REQUESTER.into(), "other@example.com".into()]).await;
    let (status, body) = h.intake(&intake_body(&sys_id())).await;
    assert_eq!(status, 202);
    let mail =
        h.wait_mails_to(REQUESTER, 2).await.into_iter().find(|m| m.subject.starts_with("Approval needed")).unwrap();
    let link = links(&mail).0;
    let (status, page) = post_decision(&h, &link, &[("decision", "approve")]).await;
    assert_eq!(status, 403);
    assert!(page.contains("another approver"));
    assert_eq!(h.request(body["id"].as_str().unwrap()).await["status"], "pending_approval");
}

#[tokio::test]
async fn every_field_shown_on_the_page_is_escaped() {
    let h = Harness::start().await;
    let mut body = intake_body(&sys_id());
    body["requester"]["name"] = json!("<script>alert(1)</script>");
    body["justification"] = json!("\"><img src=x onerror=alert(1)>");
    body["metadata"] = json!({"<b>": "<i>x</i>"});
    let (status, _) = h.intake(&body).await;
    assert_eq!(status, 202);
    let mail = h.wait_mails_to(APPROVER, 1).await.remove(0);
    assert!(!mail.html.contains("<script>") && !mail.html.contains("<img"));
    let page = h.http.get(links(&mail).0).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("<script>") && !page.contains("<img") && !page.contains("<b>"));
    assert!(page.contains("&lt;script&gt;"));
}

#[tokio::test]
async fn bad_input_gets_its_status_and_a_problem_naming_the_field() {
    let h = Harness::start().await;
    let base = intake_body(&sys_id());
    let with = |path: &[&str], value: Value| {
        let mut b = base.clone();
        let mut cur = &mut b;
        for p in &path[..path.len() - 1] {
            cur = &mut cur[*p];
        }
        cur[path[path.len() - 1]] = value;
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(&["image"], json!("No Such Image")), "image"),
        (with(&["flavor"], json!("m9.huge")), "flavor"),
        (with(&["network"], json!("nowhere-net")), "network"),
        (with(&["cloud"], json!("pcd-mars")), "cloud"),
        (with(&["server_name"], json!("Web_01")), "server_name"),
        (with(&["server_name"], json!("-web")), "server_name"),
        (with(&["count"], json!(0)), "count"),
        (with(&["count"], json!(11)), "count"),
        (with(&["count"], json!("two")), "count"),
        (with(&["count"], json!(-1)), "count"),
        (with(&["requester", "email"], json!("ada@example.com\r\nBcc: eve@evil.com")), "requester.email"),
        (with(&["requester", "email"], json!("ada@example.com, eve@evil.com")), "requester.email"),
        (with(&["requester", "name"], json!("Ada\nBcc: x")), "requester.name"),
        (with(&["source", "sys_id"], json!("not-hex")), "source.sys_id"),
        (with(&["source", "system"], json!("jira")), "source.system"),
        (with(&["surprise"], json!(true)), "surprise"),
        (with(&["requester", "phone"], json!("123")), "requester.phone"),
        (with(&["metadata"], json!("flat")), "metadata"),
    ];
    for (body, field) in cases {
        let resp = h.post("/v1/requests").json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 422, "{field}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let problem: Value = resp.json().await.unwrap();
        let fields: Vec<_> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_string()).collect();
        assert!(fields.contains(&field.to_string()), "{field}: {problem}");
    }
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("requester");
    let (status, problem) = h.intake(&missing).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "requester");

    let resp =
        h.post("/v1/requests").header("content-type", "application/json").body("{\"source\":").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let resp = h.post("/v1/requests").header("content-type", "text/plain").body(base.to_string()).send().await.unwrap();
    assert_eq!(resp.status(), 415);
    let mut huge = base.clone();
    huge["justification"] = json!("x".repeat(70 * 1024));
    let resp = h.post("/v1/requests").json(&huge).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    let resp = h.http.post(h.url("/v1/requests")).json(&base).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // Approval posts: a missing or unknown decision names the field; a wrong content type is 415.
    let (_, link) = submit(&h).await;
    let resp = h
        .http
        .post(page_of(&link))
        .header("accept", "application/json")
        .form(&[("comment", "hm")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "decision");
    let resp = h
        .http
        .post(page_of(&link))
        .header("accept", "application/json")
        .form(&[("decision", "maybe")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let resp =
        h.http.post(page_of(&link)).header("content-type", "text/plain").body("decision=approve").send().await.unwrap();
    assert_eq!(resp.status(), 415);
    // Nothing was half-written by any of it.
    let owed = h.mails_to(APPROVER).len();
    assert_eq!(owed, 1);
}

#[tokio::test]
async fn the_request_reads_back_in_the_designed_shape() {
    let h = Harness::start().await;
    let (id, _) = submit(&h).await;
    let r = h.request(&id).await;
    for key in [
        "id",
        "status",
        "source",
        "requester",
        "cloud",
        "image",
        "flavor",
        "network",
        "server_name",
        "count",
        "created_at",
        "updated_at",
        "expires_at",
        "servers",
        "error",
        "history",
    ] {
        assert!(r.get(key).is_some(), "missing {key}: {r}");
    }
    assert_eq!(r["image"]["name"], "Ubuntu 24.04 LTS");
    assert_eq!(r["image"]["id"], "1a9e0000-0000-4000-8000-000000000001");
    assert_eq!(r["source"]["number"], "RITM0010001");
    assert_eq!(r["history"][0]["to"], "pending_approval");
    let (status, _) = h.get_json("/v1/requests/not-an-id").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn with_the_mail_transport_failing_for_a_while_no_mail_is_lost() {
    let h = Harness::start().await;
    // Break the outbox: a file where the folder should be makes every delivery fail.
    let parked = h.outbox.with_extension("parked");
    std::fs::rename(&h.outbox, &parked).unwrap();
    std::fs::write(&h.outbox, b"not a folder").unwrap();
    let (status, body) = h.intake(&intake_body(&sys_id())).await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Recover.
    std::fs::remove_file(&h.outbox).unwrap();
    std::fs::rename(&parked, &h.outbox).unwrap();
    let approver = h.wait_mails_to(APPROVER, 1).await;
    let requester = h.wait_mails_to(REQUESTER, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.mails_to(APPROVER).len(), 1, "{approver:?}");
    assert_eq!(h.mails_to(REQUESTER).len(), 1, "{requester:?}");
    assert!(approver[0].text.contains(body["id"].as_str().unwrap()));
}

#[tokio::test]
async fn approvers_are_reminded_once_at_half_time_with_a_working_link_then_the_request_expires() {
    let h = Harness::start_with(|c| {
        c.approval_ttl = Duration::from_secs(6);
        c.sweep_interval = Duration::from_millis(200);
    })
    .await;
    let (id, _) = submit(&h).await;
    let mails = h.wait_mails_to(APPROVER, 2).await;
    let reminders: Vec<_> = mails.iter().filter(|m| m.subject.starts_with("Reminder: Approval needed")).collect();
    assert_eq!(reminders.len(), 1, "one reminder: {:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>());
    let fresh = links(reminders[0]).0;
    assert_eq!(h.http.get(&fresh).send().await.unwrap().status(), 200, "the reminder's link works");
    let r = h.wait_status(&id, "expired", Duration::from_secs(20)).await;
    assert_eq!(support::steps(&r).last().unwrap()["actor"], "sweeper");
    assert_eq!(h.http.get(&fresh).send().await.unwrap().status(), 410);
    let expired = h.wait_mails_to(REQUESTER, 2).await;
    assert!(expired.iter().any(|m| m.subject.starts_with("Expired: RITM0010001")));
    assert_eq!(h.mails_to(APPROVER).len(), 2, "reminded once only");
}
