//! The client against the ServiceNow simulator, over HTTP.

use std::time::{Duration, Instant};

use domain::Error;
use gatehouse_servicenow::{Client, DisplayValue, Query, Record, ServiceNowConfig, SnAuth};
use serde_json::{Map, Value, json};
use servicenow_sim::{SnFaults, SnSim, SnSimConfig};

const RITM: &str = "sc_req_item";
const CHG: &str = "change_request";

async fn sim_with(config: SnSimConfig) -> SnSim {
    SnSim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap()
}

async fn sim() -> SnSim {
    sim_with(SnSimConfig::default()).await
}

fn basic() -> SnAuth {
    SnAuth::Basic { user: "gatehouse".into(), password: "secret".into() }
}

fn oauth() -> SnAuth {
    SnAuth::OAuthClientCredentials { client_id: "gh-client".into(), client_secret: "gh-secret".into() }
}

/// Fast retries for tests.
fn config(sim: &SnSim, auth: SnAuth) -> ServiceNowConfig {
    ServiceNowConfig {
        instance_url: sim.base_url(),
        auth,
        timeout: Duration::from_secs(5),
        max_retries: 4,
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
        ..ServiceNowConfig::default()
    }
}

fn client(sim: &SnSim) -> Client {
    Client::new(config(sim, basic())).unwrap()
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// (system, detail, the whole chain) of an Upstream error.
fn upstream(err: &Error) -> (String, String, String) {
    match err {
        Error::Upstream { system, detail, .. } => (system.clone(), detail.clone(), err.chain()),
        other => panic!("expected Upstream, got {other:?}"),
    }
}

fn seed_ritm(sim: &SnSim) -> String {
    sim.insert(RITM, map(json!({"short_description": "VM web-01", "u_gatehouse_request_id": "req-1"})))
}

fn seed_change(sim: &SnSim, correlation_id: &str) -> String {
    sim.insert(CHG, map(json!({"short_description": "Deploy", "correlation_id": correlation_id})))
}

#[tokio::test]
async fn basic_auth_create_get_update_query() {
    let sim = sim().await;
    let sn = client(&sim);
    let created = sn
        .create(RITM, &map(json!({"short_description": "VM web-01", "u_gatehouse_request_id": "req-42"})))
        .await
        .unwrap();
    let sys_id = created.sys_id().unwrap().to_string();
    assert_eq!(sys_id.len(), 32);
    assert_eq!(created.number(), Some("RITM0010001"));
    assert_eq!(created.str("state"), Some("1"));
    assert_eq!(created.str("sys_created_by"), Some("gatehouse"));

    let got = sn.get(RITM, &sys_id, DisplayValue::Stored).await.unwrap().unwrap();
    assert_eq!(got.str("u_gatehouse_request_id"), Some("req-42"));

    let updated = sn.update(RITM, &sys_id, &map(json!({"state": "3"}))).await.unwrap();
    assert_eq!(updated.str("state"), Some("3"));
    assert_eq!(updated.str("active"), Some("false"));

    let q = Query::new().eq("u_gatehouse_request_id", "req-42").unwrap();
    let found = sn.query(RITM, &q, &["sys_id", "number"], DisplayValue::Stored, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].sys_id(), Some(sys_id.as_str()));
    assert_eq!(found[0].raw("short_description"), None, "only the asked fields");

    assert!(sn.get(RITM, "0123456789abcdef0123456789abcdef", DisplayValue::Stored).await.unwrap().is_none());
    let err = sn.update(RITM, "0123456789abcdef0123456789abcdef", &map(json!({"state": "2"}))).await.unwrap_err();
    let (system, detail, _) = upstream(&err);
    assert_eq!(system, "ServiceNow sc_req_item");
    assert_eq!(detail, "record 0123456789abcdef0123456789abcdef: does not exist (HTTP 404)");
}

#[tokio::test]
async fn refused_credentials_are_upstream_errors_without_secrets() {
    let sim = sim().await;
    let id = seed_ritm(&sim);
    let bad = SnAuth::Basic { user: "gatehouse".into(), password: "wrong-pass-123".into() };
    let sn = Client::new(config(&sim, bad)).unwrap();
    let err = sn.get(RITM, &id, DisplayValue::Stored).await.unwrap_err();
    let (system, detail, chain) = upstream(&err);
    assert_eq!(system, "ServiceNow sc_req_item");
    assert_eq!(detail, format!("record {id}: credentials were refused (HTTP 401)"));
    assert!(chain.contains("User Not Authenticated"), "ServiceNow's message goes to the source: {chain}");
    for shown in [chain, format!("{err:?}"), format!("{sn:?}")] {
        assert!(!shown.contains("wrong-pass-123"), "{shown}");
    }
    assert_eq!(sim.calls(), 1, "a 401 is not retried");

    let bad_client =
        SnAuth::OAuthClientCredentials { client_id: "gh-client".into(), client_secret: "nope-nope".into() };
    let sn = Client::new(config(&sim, bad_client)).unwrap();
    let err = sn.get(RITM, &id, DisplayValue::Stored).await.unwrap_err();
    let (_, detail, chain) = upstream(&err);
    assert_eq!(detail, format!("record {id}: OAuth token request: credentials were refused (HTTP 401)"));
    assert!(!chain.contains("nope-nope") && !format!("{err:?}").contains("nope-nope"));
}

#[tokio::test]
async fn oauth_token_is_reused() {
    let sim = sim().await;
    let id = seed_ritm(&sim);
    let sn = Client::new(config(&sim, oauth())).unwrap();
    for _ in 0..3 {
        assert!(sn.get(RITM, &id, DisplayValue::Stored).await.unwrap().is_some());
    }
    let clone = sn.clone();
    let rec = clone.create(RITM, &map(json!({"short_description": "x"}))).await.unwrap();
    assert_eq!(rec.str("sys_created_by"), Some("gatehouse"));
    assert_eq!(sim.token_requests(), 1);
    assert_eq!(sim.calls(), 5);
}

#[tokio::test]
async fn oauth_token_is_renewed_a_minute_before_it_expires() {
    // 61 s of life: usable for 1 s, then renewed.
    let sim = sim_with(SnSimConfig { token_ttl: Duration::from_secs(61), ..SnSimConfig::default() }).await;
    let id = seed_ritm(&sim);
    let sn = Client::new(config(&sim, oauth())).unwrap();
    sn.get(RITM, &id, DisplayValue::Stored).await.unwrap();
    sn.get(RITM, &id, DisplayValue::Stored).await.unwrap();
    assert_eq!(sim.token_requests(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sn.get(RITM, &id, DisplayValue::Stored).await.unwrap();
    assert_eq!(sim.token_requests(), 2);

    // 60 s or less: never reused.
    let sim = sim_with(SnSimConfig { token_ttl: Duration::from_secs(60), ..SnSimConfig::default() }).await;
    let id = seed_ritm(&sim);
    let sn = Client::new(config(&sim, oauth())).unwrap();
    sn.get(RITM, &id, DisplayValue::Stored).await.unwrap();
    sn.get(RITM, &id, DisplayValue::Stored).await.unwrap();
    assert_eq!(sim.token_requests(), 2);
}

#[tokio::test]
async fn oauth_reauthenticates_once_on_a_401() {
    let sim = sim().await;
    let id = seed_ritm(&sim);
    let sn = Client::new(config(&sim, oauth())).unwrap();
    sn.get(RITM, &id, DisplayValue::Stored).await.unwrap();
    assert_eq!(sim.token_requests(), 1);

    // The token is revoked mid-way: one 401, a new token, the call again.
    sim.expire_tokens();
    sn.get(RITM, &id, DisplayValue::Stored).await.unwrap();
    assert_eq!(sim.token_requests(), 2);
    assert_eq!(sim.calls(), 5);

    // One 401 from the API: the same.
    sim.set_faults(SnFaults { status: Some(401), remaining: Some(1), ..SnFaults::default() });
    sn.update(RITM, &id, &map(json!({"state": "2"}))).await.unwrap();
    assert_eq!(sim.token_requests(), 3);

    // 401s that do not stop: one re-authentication (refused too), then the error; no loop.
    sim.set_faults(SnFaults { status: Some(401), ..SnFaults::default() });
    let before = sim.calls();
    let err = sn.get(RITM, &id, DisplayValue::Stored).await.unwrap_err();
    let (_, detail, _) = upstream(&err);
    assert!(detail.contains("credentials were refused (HTTP 401)"), "{detail}");
    assert_eq!(sim.calls() - before, 2, "the call and one token request");
}

#[tokio::test]
async fn query_values_cannot_inject_conditions() {
    let sim = sim().await;
    let sn = client(&sim);
    seed_change(&sim, "gitlab:1:aaa:production");
    seed_change(&sim, "gitlab:1:bbb:production");

    for bad in ["gitlab:1:zzz:production^ORcorrelation_id=gitlab:1:aaa:production", "x^NQactive=true", "x\nactive=true"]
    {
        let err = Query::new().eq("correlation_id", bad).unwrap_err();
        match err {
            Error::Invalid(errs) => assert_eq!(errs[0].field, "correlation_id"),
            other => panic!("{other:?}"),
        }
    }

    let q = Query::new().eq("correlation_id", "gitlab:1:aaa:production").unwrap().active(true);
    let found = sn.query(CHG, &q, &[], DisplayValue::Stored, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(q.matches(&found[0]));

    // ServiceNow drops a condition on a field it does not have: everything matches. An exact
    // lookup checks the answer.
    let typo = Query::new().eq("correlation_idd", "gitlab:1:aaa:production").unwrap();
    let all = sn.query(CHG, &typo, &[], DisplayValue::Stored, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| !typo.matches(r)));
}

#[tokio::test]
async fn query_follows_link_paging() {
    let sim = sim().await;
    for i in 0..5 {
        sim.insert(CHG, map(json!({"short_description": format!("change {i}"), "correlation_id": "batch"})));
    }
    sim.insert(CHG, map(json!({"short_description": "other", "correlation_id": "other"})));
    let sn = Client::new(ServiceNowConfig { page_size: 2, ..config(&sim, basic()) }).unwrap();
    let q = Query::new().eq("correlation_id", "batch").unwrap().order_by("number").unwrap();

    let all = sn.query(CHG, &q, &["number"], DisplayValue::Stored, 100).await.unwrap();
    let numbers: Vec<&str> = all.iter().map(|r| r.number().unwrap()).collect();
    assert_eq!(numbers, ["CHG0030001", "CHG0030002", "CHG0030003", "CHG0030004", "CHG0030005"]);
    assert_eq!(sim.calls(), 3, "pages of 2, 2 and 1");

    let three = sn.query(CHG, &q, &["number"], DisplayValue::Stored, 3).await.unwrap();
    assert_eq!(three.len(), 3);
    assert_eq!(sim.calls(), 5, "two more pages");

    let newest = Query::new().eq("correlation_id", "batch").unwrap().order_by_desc("number").unwrap();
    let one = sn.query(CHG, &newest, &["number"], DisplayValue::Stored, 1).await.unwrap();
    assert_eq!(one[0].number(), Some("CHG0030005"));

    // A bound on pages.
    let capped = Client::new(ServiceNowConfig { page_size: 1, max_pages: 3, ..config(&sim, basic()) }).unwrap();
    let err = capped.query(CHG, &q, &["number"], DisplayValue::Stored, 100).await.unwrap_err();
    let (system, detail, _) = upstream(&err);
    assert_eq!(system, "ServiceNow change_request");
    assert!(detail.contains("more than 3 pages"), "{detail}");
}

#[tokio::test]
async fn display_values_stored_display_and_both() {
    let sim = sim().await;
    let sn = client(&sim);
    let created = sn.create(RITM, &map(json!({"short_description": "VM"}))).await.unwrap();
    let id = created.sys_id().unwrap().to_string();
    sn.add_work_note(RITM, &id, "Approved by ada@example.com", "[gh:1]").await.unwrap();

    let stored = sn.get(RITM, &id, DisplayValue::Stored).await.unwrap().unwrap();
    assert_eq!(stored.str("state"), Some("1"));
    assert_eq!(stored.str("approval"), Some("not requested"));
    assert_eq!(stored.str("work_notes"), Some(""));
    let user_link = stored.link("opened_by").expect("a reference with its link").to_string();
    assert!(user_link.starts_with(&format!("{}/api/now/table/sys_user/", sim.base_url())), "{user_link}");

    let display = sn.get(RITM, &id, DisplayValue::Display).await.unwrap().unwrap();
    assert_eq!(display.str("state"), Some("Open"));
    assert_eq!(display.str("approval"), Some("Not Yet Requested"));
    assert_eq!(display.display("opened_by").as_deref(), Some("Gatehouse Integration"));
    let notes = display.str("work_notes").unwrap();
    assert!(
        notes.contains(" - Gatehouse Integration (Work notes)\nApproved by ada@example.com\n[gh:1]\n\n"),
        "{notes:?}"
    );

    let both = sn.get(RITM, &id, DisplayValue::Both).await.unwrap().unwrap();
    assert_eq!(both.value("state").as_deref(), Some("1"));
    assert_eq!(both.display("state").as_deref(), Some("Open"));
    assert_eq!(both.str("number"), created.str("number"));
    assert_eq!(both.link("opened_by"), Some(user_link.as_str()));

    sim.set_field(RITM, &id, "state", "3");
    let closed = sn.get(RITM, &id, DisplayValue::Both).await.unwrap().unwrap();
    assert_eq!(closed.display("state").as_deref(), Some("Closed Complete"));
    assert_eq!(closed.value("active").as_deref(), Some("false"));
}

#[tokio::test]
async fn rate_limit_honours_retry_after_then_succeeds() {
    let sim = sim().await;
    let id = seed_ritm(&sim);
    let sn = client(&sim);
    sim.set_faults(SnFaults {
        status: Some(429),
        retry_after_secs: Some(1),
        remaining: Some(1),
        ..SnFaults::default()
    });
    let started = Instant::now();
    assert!(sn.get(RITM, &id, DisplayValue::Stored).await.unwrap().is_some());
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
    assert_eq!(sim.calls(), 2);

    // Retry-After is capped (here at 50 ms).
    let capped =
        Client::new(ServiceNowConfig { max_retry_after: Duration::from_millis(50), ..config(&sim, basic()) }).unwrap();
    sim.set_faults(SnFaults {
        status: Some(429),
        retry_after_secs: Some(3600),
        remaining: Some(2),
        ..SnFaults::default()
    });
    let started = Instant::now();
    assert!(capped.get(RITM, &id, DisplayValue::Stored).await.unwrap().is_some());
    assert!(started.elapsed() < Duration::from_secs(1), "waited {:?}", started.elapsed());

    // A 429 is retried even for a create: ServiceNow did not process it.
    sim.set_faults(SnFaults { status: Some(429), remaining: Some(1), ..SnFaults::default() });
    sn.create(RITM, &map(json!({"short_description": "after 429"}))).await.unwrap();
    assert_eq!(sim.records(RITM).len(), 2);
}

#[tokio::test]
async fn service_unavailable_twice_then_success() {
    let sim = sim().await;
    let id = seed_change(&sim, "c");
    let sn = client(&sim);
    sim.set_faults(SnFaults { status: Some(503), remaining: Some(2), ..SnFaults::default() });
    let rec = sn.update(CHG, &id, &map(json!({"short_description": "renamed"}))).await.unwrap();
    assert_eq!(rec.str("short_description"), Some("renamed"));
    assert_eq!(sim.calls(), 3);
}

#[tokio::test]
async fn server_errors_beyond_max_retries_name_the_table_and_record() {
    let sim = sim().await;
    let id = seed_change(&sim, "c");
    let sn = Client::new(ServiceNowConfig { max_retries: 2, ..config(&sim, basic()) }).unwrap();
    sim.set_faults(SnFaults { status: Some(503), ..SnFaults::default() });
    let err = sn.get(CHG, &id, DisplayValue::Both).await.unwrap_err();
    let (system, detail, chain) = upstream(&err);
    assert_eq!(system, "ServiceNow change_request");
    assert_eq!(detail, format!("record {id}: answered HTTP 503 (3 attempts)"));
    assert!(chain.contains("Service Unavailable"), "ServiceNow's error body in the source: {chain}");
    assert_eq!(sim.calls(), 3);
    assert_eq!(err.to_string(), format!("ServiceNow change_request: record {id}: answered HTTP 503 (3 attempts)"));

    sim.set_faults(SnFaults { status: Some(500), ..SnFaults::default() });
    let err = sn.query(CHG, &Query::new().active(true), &[], DisplayValue::Stored, 5).await.unwrap_err();
    assert_eq!(upstream(&err).1, "listing records: answered HTTP 500 (3 attempts)");
}

#[tokio::test]
async fn every_call_has_the_timeout() {
    let sim = sim().await;
    let id = seed_ritm(&sim);
    let sn =
        Client::new(ServiceNowConfig { timeout: Duration::from_millis(100), max_retries: 1, ..config(&sim, basic()) })
            .unwrap();
    sim.set_faults(SnFaults { latency_ms: 400, ..SnFaults::default() });
    let started = Instant::now();
    let err = sn.get(RITM, &id, DisplayValue::Stored).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(390), "{:?}", started.elapsed());
    let (system, detail, _) = upstream(&err);
    assert_eq!(system, "ServiceNow sc_req_item");
    assert_eq!(detail, format!("record {id}: did not answer within 100 ms (2 attempts)"));
}

#[tokio::test]
async fn a_work_note_is_written_once_even_when_the_answer_is_lost() {
    let sim = sim().await;
    let id = seed_ritm(&sim);
    let sn = client(&sim);
    sim.set_faults(SnFaults { drop_response_after_write: true, remaining: Some(1), ..SnFaults::default() });
    sn.add_work_note(RITM, &id, "VM web-01 is ACTIVE (10.0.0.5)", "[gatehouse:req-1:msg-3]").await.unwrap();
    let notes = sim.work_notes(RITM, &id);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].text, "VM web-01 is ACTIVE (10.0.0.5)\n[gatehouse:req-1:msg-3]");
    assert_eq!(notes[0].author, "gatehouse");
    assert!(sim.faults().status.is_none() && !sim.faults().drop_response_after_write, "the fault was used");

    // Delivered again (an outbox retry after a crash): still once.
    sn.add_work_note(RITM, &id, "VM web-01 is ACTIVE (10.0.0.5)", "[gatehouse:req-1:msg-3]").await.unwrap();
    assert_eq!(sim.work_notes(RITM, &id).len(), 1);

    // A marker already in the text is not repeated; another note is written.
    sn.add_work_note(RITM, &id, "[gatehouse:req-1:msg-4] Request closed", "[gatehouse:req-1:msg-4]").await.unwrap();
    let notes = sim.work_notes(RITM, &id);
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[1].text, "[gatehouse:req-1:msg-4] Request closed");
    assert!(sn.has_work_note(RITM, &id, "[gatehouse:req-1:msg-4]").await.unwrap());
    assert!(!sn.has_work_note(RITM, &id, "[gatehouse:req-1:msg-5]").await.unwrap());

    // On a table the simulator has no journal field for, the check reads sys_journal_field.
    let other = sim.insert("u_gatehouse_thing", map(json!({"name": "x"})));
    sim.set_faults(SnFaults { drop_response_after_write: true, remaining: Some(1), ..SnFaults::default() });
    sn.add_work_note("u_gatehouse_thing", &other, "note", "[m:1]").await.unwrap();
    sn.add_work_note("u_gatehouse_thing", &other, "note", "[m:1]").await.unwrap();
    assert_eq!(sim.work_notes("u_gatehouse_thing", &other).len(), 1);

    assert!(sn.add_work_note(RITM, &id, "x", "bad\nmarker").await.is_err());
    let err = sn.add_work_note(RITM, "0123456789abcdef0123456789abcdef", "x", "[m:2]").await.unwrap_err();
    assert!(upstream(&err).1.contains("does not exist (HTTP 404)"));
}

#[tokio::test]
async fn a_create_is_not_retried_blindly_and_find_or_create_creates_once() {
    let sim = sim().await;
    let sn = client(&sim);
    sim.set_faults(SnFaults { drop_response_after_write: true, remaining: Some(1), ..SnFaults::default() });
    let err = sn.create(CHG, &map(json!({"short_description": "lost answer"}))).await.unwrap_err();
    let (system, detail, _) = upstream(&err);
    assert_eq!(system, "ServiceNow change_request");
    assert_eq!(detail, "creating a record: answered HTTP 503; the write may or may not have been applied");
    assert_eq!(sim.records(CHG).len(), 1, "written once, not retried");

    let cid = "gitlab:4242:0123456789abcdef0123456789abcdef01234567:production";
    let existing =
        Query::new().eq("correlation_id", cid).unwrap().active(true).order_by_desc("sys_created_on").unwrap();
    let fields = map(json!({"short_description": "Deploy shop 1.4.2", "correlation_id": cid, "type": "normal"}));
    sim.set_faults(SnFaults { drop_response_after_write: true, remaining: Some(1), ..SnFaults::default() });
    let (first, created) = sn.find_or_create(CHG, &existing, &fields).await.unwrap();
    assert!(created, "created by this call, although its answer was lost");
    assert_eq!(first.str("correlation_id"), Some(cid));
    let (again, created) = sn.find_or_create(CHG, &existing, &fields).await.unwrap();
    assert!(!created);
    assert_eq!(again.sys_id(), first.sys_id());
    assert_eq!(sim.records(CHG).len(), 2);
}

#[tokio::test]
async fn a_change_through_its_states() {
    let sim = sim().await;
    let sn = client(&sim);
    let cid = "gitlab:7:abc:staging";
    let (chg, created) = sn
        .find_or_create(
            CHG,
            &Query::new().eq("correlation_id", cid).unwrap().active(true),
            &map(json!({"short_description": "Deploy", "correlation_id": cid, "start_date": "2026-12-01 18:00:00"})),
        )
        .await
        .unwrap();
    assert!(created);
    let id = chg.sys_id().unwrap().to_string();
    assert_eq!(chg.number(), Some("CHG0030001"));
    assert_eq!((chg.str("state"), chg.str("approval")), (Some("-5"), Some("not requested")));
    assert_eq!(sn.form_url(CHG, &id), format!("{}/change_request.do?sys_id={id}", sim.base_url()));

    // Implement before approval: refused by the business rule, and not retried.
    let before = sim.calls();
    let err = sn.update(CHG, &id, &map(json!({"state": "-1"}))).await.unwrap_err();
    let (_, detail, chain) = upstream(&err);
    assert!(
        detail.starts_with(&format!("record {id}: credentials were refused for this operation (HTTP 403")),
        "{detail}"
    );
    assert!(chain.contains("Business Rule"), "{chain}");
    assert_eq!(sim.calls() - before, 1);

    // Request Approval (New → Assess); the approvers take it to Authorize, then Scheduled.
    let r = sn.update(CHG, &id, &map(json!({"state": "-4"}))).await.unwrap();
    assert_eq!(r.str("approval"), Some("requested"));
    sim.approve_change(&id).unwrap();
    sim.approve_change(&id).unwrap();
    sn.update(CHG, &id, &map(json!({"state": "-1"}))).await.unwrap();
    sn.add_work_note(CHG, &id, "Deployed: pipeline 900001 success", "[gatehouse:deploy:900001]").await.unwrap();
    assert!(sn.update(CHG, &id, &map(json!({"state": "3"}))).await.is_err(), "closing needs Review first");
    sn.update(CHG, &id, &map(json!({"state": "0"}))).await.unwrap();
    let closed = sn
        .update(CHG, &id, &map(json!({"state": "3", "close_code": "successful", "close_notes": "Deployed by GitLab"})))
        .await
        .unwrap();
    assert_eq!(closed.str("active"), Some("false"));
    let shown = sn.get(CHG, &id, DisplayValue::Both).await.unwrap().unwrap();
    assert_eq!(shown.display("state").as_deref(), Some("Closed"));
    assert_eq!(shown.display("close_code").as_deref(), Some("Successful"));

    // Once closed, a new pipeline's lookup for an open change finds none.
    let open = Query::new().eq("correlation_id", cid).unwrap().active(true);
    assert!(sn.query(CHG, &open, &[], DisplayValue::Stored, 5).await.unwrap().is_empty());
}

#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let sn = Client::new(ServiceNowConfig::new("https://x.service-now.com", basic())).unwrap();
    let q = Query::new();
    let m = Map::new();
    assert_send(sn.get(RITM, "a", DisplayValue::Stored));
    assert_send(sn.query(RITM, &q, &[], DisplayValue::Stored, 1));
    assert_send(sn.create(RITM, &m));
    assert_send(sn.update(RITM, "a", &m));
    assert_send(sn.find_or_create(RITM, &q, &m));
    assert_send(sn.add_work_note(RITM, "a", "t", "m"));
    let _: Option<Record> = None;
}
