//! `ServiceNowChanges` against the ServiceNow simulator, which enforces the normal change model.

use std::time::Duration;

use domain::Error;
use domain::changes::{ChangeDetails, ChangeDraft, ChangeKind, ChangeManagement, state};
use gatehouse_servicenow::{Client, ServiceNowChanges, ServiceNowConfig, SnAuth};
use reqwest::StatusCode;
use serde_json::{Value, json};
use servicenow_sim::{SHOP_SERVICE, SnSim, SnSimConfig};

const CHG: &str = "change_request";

async fn sim() -> SnSim {
    SnSim::start("127.0.0.1:0".parse().unwrap(), SnSimConfig::default()).await.unwrap()
}

fn changes(sim: &SnSim) -> ServiceNowChanges {
    let config = ServiceNowConfig {
        instance_url: sim.base_url(),
        auth: SnAuth::Basic { user: "gatehouse".into(), password: "secret".into() },
        timeout: Duration::from_secs(5),
        max_retries: 2,
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        ..ServiceNowConfig::default()
    };
    ServiceNowChanges::new(Client::new(config).unwrap())
}

fn details() -> ChangeDetails {
    ChangeDetails {
        assignment_group: Some("Platform Team".into()),
        cmdb_ci: Some(SHOP_SERVICE.into()),
        risk: Some("3".into()),
        impact: Some("2".into()),
        implementation_plan: Some("Deploy with the pipeline".into()),
        backout_plan: Some("Redeploy the previous release".into()),
        test_plan: Some("Smoke tests".into()),
    }
}

fn draft(correlation_id: &str, details: ChangeDetails) -> ChangeDraft {
    ChangeDraft {
        correlation_id: correlation_id.into(),
        short_description: "Deploy shop to production".into(),
        description: "MR !7".into(),
        planned_start: None,
        planned_end: None,
        details,
        kind: ChangeKind::Normal,
    }
}

fn stored(sim: &SnSim, sys_id: &str, field: &str) -> String {
    sim.record(CHG, sys_id).unwrap()[field].as_str().unwrap_or_default().to_string()
}

fn sys_id_named(sim: &SnSim, table: &str, name: &str) -> Value {
    sim.records(table).into_iter().find(|r| r["name"] == name).unwrap()["sys_id"].clone()
}

/// A change created by the adapter, then approved by the Assess group and the CAB.
async fn scheduled(sim: &SnSim, sn: &ServiceNowChanges, cid: &str) -> String {
    let c = sn.create(&draft(cid, ChangeDetails::default())).await.unwrap();
    sim.approve_change(&c.sys_id).unwrap();
    sim.approve_change(&c.sys_id).unwrap();
    assert_eq!(stored(sim, &c.sys_id, "state"), state::SCHEDULED);
    c.sys_id
}

#[tokio::test]
async fn create_asks_for_approval_and_stops_in_assess_with_the_details() {
    let sim = sim().await;
    let sn = changes(&sim);
    let c = sn.create(&draft("gitlab:1:abc:production", details())).await.unwrap();
    assert_eq!((c.state.as_str(), c.state_display.as_str()), ("-4", "Assess"));
    assert_eq!(c.approval, "requested");
    let rec = sim.record(CHG, &c.sys_id).unwrap();
    assert_eq!(rec["type"], "normal");
    assert_eq!(rec["assignment_group"], sys_id_named(&sim, "sys_user_group", "Platform Team"));
    assert_eq!(rec["cmdb_ci"], sys_id_named(&sim, "cmdb_ci", SHOP_SERVICE));
    for (field, value) in [
        ("risk", "3"),
        ("impact", "2"),
        ("implementation_plan", "Deploy with the pipeline"),
        ("backout_plan", "Redeploy the previous release"),
        ("test_plan", "Smoke tests"),
        ("correlation_id", "gitlab:1:abc:production"),
    ] {
        assert_eq!(rec[field], value, "{field}");
    }

    // Creating again finds the same change and moves nothing.
    let again = sn.create(&draft("gitlab:1:abc:production", details())).await.unwrap();
    assert_eq!((again.sys_id.as_str(), again.state.as_str()), (c.sys_id.as_str(), "-4"));
    assert_eq!(sim.records(CHG).len(), 1);

    // The approvers move it on, not Gatehouse.
    assert_eq!(sim.approve_change(&c.sys_id).as_deref(), Ok("-3"));
    let again = sn.create(&draft("gitlab:1:abc:production", details())).await.unwrap();
    assert_eq!((again.state.as_str(), again.approval.as_str()), (state::AUTHORIZE, "requested"));
    assert_eq!(sim.approve_change(&c.sys_id).as_deref(), Ok("-2"));
    let now = sn.get(&c.sys_id).await.unwrap().unwrap();
    assert_eq!((now.state.as_str(), now.approval.as_str()), (state::SCHEDULED, "approved"));
}

#[tokio::test]
async fn create_without_details_and_a_rejected_change_is_not_resubmitted() {
    let sim = sim().await;
    let sn = changes(&sim);
    let c = sn.create(&draft("gitlab:1:def:staging", ChangeDetails::default())).await.unwrap();
    assert_eq!(c.state, "-4");
    assert_eq!(stored(&sim, &c.sys_id, "assignment_group"), "");
    assert_eq!(sim.reject_change(&c.sys_id).as_deref(), Ok("-5"));
    let again = sn.create(&draft("gitlab:1:def:staging", ChangeDetails::default())).await.unwrap();
    assert_eq!((again.state.as_str(), again.approval.as_str()), (state::NEW, "rejected"));
}

#[tokio::test]
async fn an_unknown_group_or_ci_is_an_upstream_error_naming_it() {
    let sim = sim().await;
    let sn = changes(&sim);
    for (d, table, name) in [
        (ChangeDetails { assignment_group: Some("Nobody".into()), ..details() }, "sys_user_group", "Nobody"),
        (ChangeDetails { cmdb_ci: Some("Nothing".into()), ..details() }, "cmdb_ci", "Nothing"),
    ] {
        match sn.create(&draft("gitlab:1:x:production", d)).await {
            Err(Error::Upstream { system, detail, .. }) => {
                assert_eq!(system, format!("ServiceNow {table}"));
                assert!(detail.contains(&format!("\"{name}\"")), "{detail}");
            }
            other => panic!("expected Upstream, got {other:?}"),
        }
    }
    assert!(sim.records(CHG).is_empty(), "nothing created");
}

#[tokio::test]
async fn close_walks_the_states_from_scheduled_and_from_implement() {
    let sim = sim().await;
    let sn = changes(&sim);
    let id = scheduled(&sim, &sn, "gitlab:1:a:production").await;
    let closed = sn.close(&id, true, "Deployed by pipeline 9").await.unwrap();
    assert_eq!((closed.state.as_str(), closed.state_display.as_str()), (state::CLOSED, "Closed"));
    assert_eq!(stored(&sim, &id, "close_code"), "successful");
    assert_eq!(stored(&sim, &id, "close_notes"), "Deployed by pipeline 9");
    assert_eq!(stored(&sim, &id, "active"), "false");
    // New → Assess, two approvals, then Scheduled → Implement → Review → Closed: one write each.
    assert_eq!(stored(&sim, &id, "sys_mod_count"), "6");
    // Idempotent.
    assert_eq!(sn.close(&id, true, "again").await.unwrap().state, state::CLOSED);
    assert_eq!(stored(&sim, &id, "close_notes"), "Deployed by pipeline 9");

    // From Implement (a retry after the first step), and from Review.
    for start in [state::IMPLEMENT, state::REVIEW] {
        let id = scheduled(&sim, &sn, &format!("gitlab:1:{start}:production")).await;
        assert!(sim.set_field(CHG, &id, "state", state::IMPLEMENT));
        if start == state::REVIEW {
            assert!(sim.set_field(CHG, &id, "state", state::REVIEW));
        }
        let closed = sn.close(&id, false, "Deploy failed").await.unwrap();
        assert_eq!(closed.state, state::CLOSED, "from {start}");
        assert_eq!(stored(&sim, &id, "close_code"), "unsuccessful");
    }
}

#[tokio::test]
async fn close_refuses_a_change_not_yet_scheduled() {
    let sim = sim().await;
    let sn = changes(&sim);
    let c = sn.create(&draft("gitlab:1:b:production", ChangeDetails::default())).await.unwrap();
    assert!(matches!(sn.close(&c.sys_id, true, "x").await, Err(Error::Conflict(_))));
    assert_eq!(stored(&sim, &c.sys_id, "state"), "-4");
}

#[tokio::test]
async fn the_simulator_refuses_scheduled_to_review_directly() {
    let sim = sim().await;
    let sn = changes(&sim);
    let id = scheduled(&sim, &sn, "gitlab:1:c:production").await;
    let resp = reqwest::Client::new()
        .patch(format!("{}/api/now/table/{CHG}/{id}", sim.base_url()))
        .basic_auth("gatehouse", Some("secret"))
        .json(&json!({"state": "0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["message"], "Operation Failed");
    assert_eq!(err["status"], "failure");
    assert_eq!(stored(&sim, &id, "state"), state::SCHEDULED);
}

#[tokio::test]
async fn cancel_from_assess_and_authorize_is_idempotent() {
    let sim = sim().await;
    let sn = changes(&sim);
    for approvals in [0, 1, 2] {
        let c = sn.create(&draft(&format!("gitlab:1:{approvals}:production"), details())).await.unwrap();
        for _ in 0..approvals {
            sim.approve_change(&c.sys_id).unwrap();
        }
        let marker = format!("[gatehouse:cancel:{approvals}]");
        let done = sn.cancel(&c.sys_id, &marker, "Pipeline 9 ended without deploying").await.unwrap();
        assert_eq!((done.state.as_str(), done.state_display.as_str()), (state::CANCELED, "Canceled"));
        assert!(!done.is_open());
        let again = sn.cancel(&c.sys_id, &marker, "Pipeline 9 ended without deploying").await.unwrap();
        assert_eq!(again.state, state::CANCELED);
        let notes = sim.work_notes(CHG, &c.sys_id);
        assert_eq!(notes.len(), 1, "the note is written once");
        assert!(notes[0].text.contains("ended without deploying") && notes[0].text.contains(&marker));
        // A new pipeline gets a new change.
        assert!(sn.find_open(&format!("gitlab:1:{approvals}:production")).await.unwrap().is_none());
    }
    // A rejected change (back in New) is cancelled too.
    let c = sn.create(&draft("gitlab:1:r:production", details())).await.unwrap();
    sim.reject_change(&c.sys_id).unwrap();
    assert_eq!(sn.cancel(&c.sys_id, "[gatehouse:rejected]", "Rejected").await.unwrap().state, state::CANCELED);
}

#[tokio::test]
async fn cancel_leaves_a_closed_change_and_refuses_one_in_review() {
    let sim = sim().await;
    let sn = changes(&sim);
    let id = scheduled(&sim, &sn, "gitlab:1:d:production").await;
    sn.close(&id, true, "ok").await.unwrap();
    assert_eq!(sn.cancel(&id, "[gatehouse:x]", "late").await.unwrap().state, state::CLOSED);
    assert!(sim.work_notes(CHG, &id).is_empty());

    let id = scheduled(&sim, &sn, "gitlab:1:e:production").await;
    assert!(sim.set_field(CHG, &id, "state", state::IMPLEMENT));
    assert!(sim.set_field(CHG, &id, "state", state::REVIEW));
    assert!(matches!(sn.cancel(&id, "[gatehouse:y]", "late").await, Err(Error::Conflict(_))));
    assert_eq!(stored(&sim, &id, "state"), state::REVIEW);
}
