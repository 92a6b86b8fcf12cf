//! Caller identity and the request's source (DESIGN.md, "Trust and identity"): scoped
//! credentials, intake checked against the request item ServiceNow approved, and separation of
//! duties — each as a user would meet it, through HTTP against `gatehouse serve`.

mod support;

use std::time::Duration;

use domain::config::{ApiTokens, Scope};
use serde_json::{Value, json};
use servicenow_sim::{ItemVariables, LAPTOP_CATALOG_ITEM, PersonSpec};
use support::{Harness, intake_body, links, page_of, sys_id};

const APPROVER: &str = "approver@demo.invalid";
const REQUESTER: &str = "ada@example.com";
const SERVICENOW_TOKEN: &str = "servicenow-token-0123456789abcdef0123";
const CI_TOKEN: &str = "ci-token-0123456789abcdef0123456789ab";

async fn post_as(h: &Harness, token: Option<&str>, path: &str, body: &Value) -> (u16, String, Value) {
    let mut req = h.http.post(h.url(path)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, resp.json().await.unwrap_or(Value::Null))
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().into_iter().flatten().map(|e| e["field"].as_str().unwrap().to_string()).collect()
}

/// Nobody was mailed anything: no approver asked, no requester told.
async fn assert_no_mail(h: &Harness) {
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(h.mails().is_empty(), "{:?}", h.mails().iter().map(|m| &m.subject).collect::<Vec<_>>());
}

#[tokio::test]
async fn each_token_calls_only_the_routes_of_its_scope() {
    let h = Harness::start_with(|c| {
        c.api_tokens = ApiTokens::new([(Scope::ServiceNow, SERVICENOW_TOKEN), (Scope::Ci, CI_TOKEN)]);
    })
    .await;
    let body = intake_body(&sys_id());
    let (status, content_type, problem) = post_as(&h, Some(CI_TOKEN), "/v1/requests", &body).await;
    assert_eq!((status, content_type.as_str()), (403, "application/problem+json"), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("scope servicenow"), "{problem}");
    let (status, _, problem) = post_as(&h, None, "/v1/requests", &body).await;
    assert_eq!(status, 401, "{problem}");
    let (status, _, _) = post_as(&h, Some("not-a-token-at-all-0123456789abcdef"), "/v1/requests", &body).await;
    assert_eq!(status, 401);
    let clouds = h.http.get(h.url("/v1/clouds")).bearer_auth(CI_TOKEN).send().await.unwrap();
    assert_eq!(clouds.status(), 403);
    assert!(clouds.headers()["www-authenticate"].to_str().unwrap().contains("scope=\"servicenow\""));
    assert_no_mail(&h).await;
    let (status, _, answer) = post_as(&h, Some(SERVICENOW_TOKEN), "/v1/requests", &body).await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test]
async fn intake_refuses_what_servicenow_did_not_approve_and_sends_no_mail() {
    let h = Harness::start_with_servicenow(|_| {}).await;

    let not_approved = h.order_with(|item| item.approval = Some("requested".into()));
    let (status, problem) = h.intake(&not_approved).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["source.sys_id"]);
    assert!(problem.to_string().contains("not approved"), "{problem}");

    let missing = intake_body(&sys_id());
    let (status, problem) = h.intake(&missing).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["source.sys_id"]);

    let laptop = h.order_with(|item| item.cat_item = Some(LAPTOP_CATALOG_ITEM.into()));
    let (status, problem) = h.intake(&laptop).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["source.sys_id"]);

    // One small VM approved; ten large ones asked.
    let mut inflated = h.order();
    inflated["count"] = json!(10);
    inflated["flavor"] = json!("m1.large");
    let (status, problem) = h.intake(&inflated).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["flavor", "count"]);
    assert!(problem.to_string().contains("ServiceNow approved \\\"1\\\""), "{problem}");

    let mut wrong_number = h.order();
    wrong_number["source"]["number"] = json!("RITM9999999");
    let (status, problem) = h.intake(&wrong_number).await;
    assert_eq!((status, fields(&problem)), (422, vec!["source.number".to_string()]), "{problem}");

    assert_no_mail(&h).await;
    assert!(h.running.services.store.messages_due(jiff::Timestamp::MAX, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_requester_is_servicenows_not_the_bodys() {
    let h = Harness::start_with_servicenow(|_| {}).await;
    let mut someone_else = h.order();
    someone_else["requester"] = json!({"email": "mallory@example.com", "name": "Mallory"});
    let (status, problem) = h.intake(&someone_else).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["requester.email"]);

    // Opened by Bob for Ada: both recorded, from ServiceNow.
    let on_behalf = h.order_with(|item| item.opened_by = Some(PersonSpec::new("bob@example.com", "Bob Smith", "bob")));
    let mut claims_other_opener = on_behalf.clone();
    claims_other_opener["opened_by"] = json!({"email": "eve@example.com", "name": "Eve"});
    let (status, problem) = h.intake(&claims_other_opener).await;
    assert_eq!((status, fields(&problem)), (422, vec!["opened_by.email".to_string()]), "{problem}");
    assert_no_mail(&h).await;

    let (status, answer) = h.intake(&on_behalf).await;
    assert_eq!(status, 202, "{answer}");
    let request = h.request(answer["id"].as_str().unwrap()).await;
    assert_eq!(request["requester"]["user_name"], "ada");
    assert_eq!(request["opened_by"]["email"], "bob@example.com");
    assert_eq!(request["opened_by"]["name"], "Bob Smith");

    // An upper-case sys_id is the same item: a replay, not a second request.
    let mut shouted = on_behalf.clone();
    shouted["source"]["sys_id"] = json!(on_behalf["source"]["sys_id"].as_str().unwrap().to_uppercase());
    let (status, again) = h.intake(&shouted).await;
    assert_eq!((status, &again["id"]), (200, &answer["id"]), "{again}");
}

#[tokio::test]
async fn an_item_cancelled_after_approval_gets_no_vm() {
    let h = Harness::start_with_servicenow(|_| {}).await;
    let order = h.order();
    let sid = order["source"]["sys_id"].as_str().unwrap().to_string();
    let (status, answer) = h.intake(&order).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let mail = h.wait_mails_to(APPROVER, 1).await.remove(0);
    // The requester cancels the item in ServiceNow; the business rule's cancel call never arrives.
    let sn = h.sn.as_ref().unwrap();
    assert!(sn.set_field("sc_req_item", &sid, "state", "4"));
    assert!(sn.set_field("sc_req_item", &sid, "active", "false"));
    let resp = h.http.post(page_of(&links(&mail).0)).form(&[("decision", "approve")]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let request = h.wait_status(&id, "cancelled", Duration::from_secs(15)).await;
    assert!(request["history"].to_string().contains("closed in ServiceNow"), "{request}");
    assert!(h.sim.servers().is_empty(), "no VM for a cancelled item");
    let mails = h.wait_mails_to(REQUESTER, 2).await;
    assert!(
        mails.iter().any(|m| m.subject.contains("ancel")),
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_approver_may_not_decide_what_they_opened_or_asked_for_under_another_tag() {
    let h = Harness::start_with_servicenow(|c| {
        c.approvers.default = vec![APPROVER.into(), "second@demo.invalid".into()];
    })
    .await;
    // The approver ordered on behalf of Ada.
    let opened = h.order_with(|item| item.opened_by = Some(PersonSpec::new(APPROVER, "Approver", "approver")));
    let (status, answer) = h.intake(&opened).await;
    assert_eq!(status, 202, "{answer}");
    // The approver ordered for themself as approver+x@…
    let tagged = h.order_with(|item| {
        item.requested_for = PersonSpec::new("Approver+x@demo.invalid", "Approver", "approver.x");
        item.variables = ItemVariables::vm("demo", "Ubuntu 24.04 LTS", "m1.small", "dev-net", "web-02", 1);
    });
    let mut tagged = tagged;
    tagged["requester"] = json!({"email": "Approver+x@demo.invalid", "name": "Approver", "user_name": "approver.x"});
    tagged["server_name"] = json!("web-02");
    let (status, answer2) = h.intake(&tagged).await;
    assert_eq!(status, 202, "{answer2}");

    let mails = h.wait_mails_to(APPROVER, 2).await;
    for mail in &mails {
        let resp = h
            .http
            .post(page_of(&links(mail).0))
            .header("accept", "application/json")
            .json(&json!({"decision": "approve"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{}", resp.text().await.unwrap());
    }
    for id in [&answer["id"], &answer2["id"]] {
        assert_eq!(h.request(id.as_str().unwrap()).await["status"], "pending_approval");
    }
    // The other approver may.
    let second = h.wait_mails_to("second@demo.invalid", 2).await;
    let resp = h.http.post(page_of(&links(&second[0]).0)).form(&[("decision", "approve")]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_request_only_its_own_requester_could_approve_is_refused_at_intake() {
    let h = Harness::start_with_servicenow(|_| {}).await;
    let own = h.order_with(|item| item.requested_for = PersonSpec::new(APPROVER, "Approver", "approver"));
    let mut own = own;
    own["requester"] = json!({"email": APPROVER, "name": "Approver", "user_name": "approver"});
    let (status, problem) = h.intake(&own).await;
    assert_eq!((status, fields(&problem)), (422, vec!["requester.email".to_string()]), "{problem}");
    assert_no_mail(&h).await;
}

#[tokio::test]
async fn invisible_and_bidi_characters_are_refused_in_every_text_field() {
    let h = Harness::start().await;
    for (path, value) in [
        ("/requester/name", "Ada\u{202e}ecalevoL"),
        ("/justification", "load\u{200b}test"),
        ("/metadata/cost_center", "CC\u{2066}42"),
        ("/image", "Ubuntu\u{feff} 24.04 LTS"),
    ] {
        let mut body = intake_body(&sys_id());
        *body.pointer_mut(path).unwrap() = json!(value);
        let (status, problem) = h.intake(&body).await;
        let field = path.trim_start_matches('/').replace('/', ".");
        assert_eq!((status, fields(&problem)), (422, vec![field]), "{problem}");
    }
    assert_no_mail(&h).await;
}

#[tokio::test]
async fn the_lease_is_the_one_servicenow_approved_within_the_clouds_limit() {
    let h = Harness::start_with_servicenow(|c| {
        // The demo cloud is the last in clouds.yaml: its own longest lease, under its gatehouse: key.
        let mut clouds = std::fs::read_to_string(&c.clouds_yaml).unwrap();
        clouds.push_str("    gatehouse:\n      max_lease_days: 60\n");
        std::fs::write(&c.clouds_yaml, clouds).unwrap();
    })
    .await;
    let leased = h.order_with(|item| item.variables.lease_days = Some("30".into()));

    // Dropped on the way, changed, or sent as a later instant instead: refused, naming the field.
    let (status, problem) = h.intake(&leased).await;
    assert_eq!((status, fields(&problem)), (422, vec!["lease_days".to_string()]), "{problem}");
    assert!(problem.to_string().contains("approved with a lease of \\\"30\\\" days"), "{problem}");
    let mut longer = leased.clone();
    longer["lease_days"] = json!(300);
    let (status, problem) = h.intake(&longer).await;
    assert_eq!((status, fields(&problem)), (422, vec!["lease_days".to_string()]), "{problem}");
    let mut later = leased.clone();
    later["retire_at"] = json!((jiff::Timestamp::now() + jiff::SignedDuration::from_hours(31 * 24)).to_string());
    let (status, problem) = h.intake(&later).await;
    assert_eq!((status, fields(&problem)), (422, vec!["retire_at".to_string()]), "{problem}");
    assert!(problem.to_string().contains("allows a lease of at most 30 days"), "{problem}");

    // Added on the way to an item ordered without one.
    let mut added = h.order();
    added["lease_days"] = json!(5);
    let (status, problem) = h.intake(&added).await;
    assert_eq!((status, fields(&problem)), (422, vec!["lease_days".to_string()]), "{problem}");
    assert_no_mail(&h).await;

    // What ServiceNow approved, within the cloud's 60 days: taken, retired 30 days from now.
    let mut sent = leased.clone();
    sent["lease_days"] = json!(30);
    let before = jiff::Timestamp::now();
    let (status, answer) = h.intake(&sent).await;
    assert_eq!(status, 202, "{answer}");
    let request = h.request(answer["id"].as_str().unwrap()).await;
    let retire_at: jiff::Timestamp = request["retire_at"].as_str().unwrap().parse().unwrap();
    let days = retire_at.duration_since(before).as_secs_f64() / 86_400.0;
    assert!((29.99..30.01).contains(&days), "{request}");

    // An API caller may end the servers sooner than the item allows (retire_at), never later.
    let mut sooner = h.order_with(|item| item.variables.lease_days = Some("30".into()));
    let end = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    sooner["retire_at"] = json!(end.to_string());
    let (status, answer) = h.intake(&sooner).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(h.request(answer["id"].as_str().unwrap()).await["retire_at"], end.to_string().as_str());

    // ServiceNow approved 90 days, but cloud demo allows 60: the cloud's limit is named.
    let mut too_long = h.order_with(|item| item.variables.lease_days = Some("90".into()));
    too_long["lease_days"] = json!(90);
    let (status, problem) = h.intake(&too_long).await;
    assert_eq!((status, fields(&problem)), (422, vec!["lease_days".to_string()]), "{problem}");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert_eq!(message, "must be from 1 to 60 (the limit on cloud demo)");
}
