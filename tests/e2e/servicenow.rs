//! Write-back onto the ServiceNow request item through the flow, against the ServiceNow simulator.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use servicenow_sim::SnFaults;
use support::{Harness, links, page_of};

const APPROVER: &str = "approver@demo.invalid";

async fn submit(h: &Harness) -> (String, String, String) {
    let order = h.order();
    let sid = order["source"]["sys_id"].as_str().unwrap().to_string();
    let (status, body) = h.intake(&order).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let mails = h.wait_mails_to(APPROVER, 1).await;
    let mail = mails.iter().find(|m| m.text.contains(&id)).unwrap();
    (id, sid, page_of(&links(mail).0))
}

async fn decide(h: &Harness, page: &str, decision: &str, comment: &str) {
    let resp = h
        .http
        .post(page)
        .header("accept", "application/json")
        .json(&json!({"decision": decision, "comment": comment}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn notes(h: &Harness, sys_id: &str) -> Vec<String> {
    let mut texts: Vec<String> =
        h.sn.as_ref().unwrap().work_notes("sc_req_item", sys_id).into_iter().map(|n| n.text).collect();
    texts.sort();
    texts
}

/// Waits until the item carries `n` notes and has the `state`, then returns the notes.
async fn wait_item(h: &Harness, sys_id: &str, n: usize, state: &str) -> Vec<String> {
    let sn = h.sn.as_ref().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let item = sn.record("sc_req_item", sys_id).unwrap_or(Value::Null);
        if sn.work_notes("sc_req_item", sys_id).len() >= n && item["state"] == state {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let owed = h.running.services.store.messages_due(jiff::Timestamp::MAX, 100).await.unwrap();
            panic!("item never got {n} notes and state {state}: {item} {:#?}; still owed: {owed:#?}", notes(h, sys_id));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    notes(h, sys_id)
}

fn has(notes: &[String], fragment: &str) -> bool {
    notes.iter().any(|n| n.contains(fragment))
}

#[tokio::test]
async fn a_provisioned_request_leaves_every_step_on_the_item_and_closes_it_complete() {
    let h = Harness::start_with_servicenow(|_| {}).await;
    let (id, sid, page) = submit(&h).await;
    decide(&h, &page, "approve", "fine by me").await;
    let r = h.wait_status(&id, "active", Duration::from_secs(20)).await;
    let notes = wait_item(&h, &sid, 4, "3").await;
    assert_eq!(notes.len(), 4, "{notes:#?}");
    assert!(has(&notes, "Gatehouse received this request"));
    assert!(has(
        &notes,
        "Approved in Gatehouse by approver@demo.invalid (link only: anyone holding the link could decide). Comment: fine by me"
    ));
    assert!(has(&notes, "Provisioning started on demo: web-01"));
    let address = r["servers"][0]["addresses"][0].as_str().unwrap();
    let server_id = r["servers"][0]["id"].as_str().unwrap();
    assert!(has(&notes, address) && has(&notes, server_id), "{notes:#?}");
    let history = h.request(&id).await["history"].clone();
    let written = history.as_array().unwrap().iter().filter(|e| e["actor"] == "servicenow").count();
    assert_eq!(written, 4, "each write-back shows in the history: {history}");
    let item = h.sn.as_ref().unwrap().record("sc_req_item", &sid).unwrap();
    assert_eq!(item["stage"], "complete", "Gatehouse closes the item's stage too: {item}");
}

#[tokio::test]
async fn a_denied_request_says_who_and_why_and_closes_incomplete() {
    let h = Harness::start_with_servicenow(|_| {}).await;
    let (_, sid, page) = submit(&h).await;
    decide(&h, &page, "deny", "no budget this quarter").await;
    let notes = wait_item(&h, &sid, 2, "4").await;
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(has(
        &notes,
        "Denied in Gatehouse by approver@demo.invalid (link only: anyone holding the link could decide). Comment: no budget this quarter"
    ));
    assert_eq!(h.sn.as_ref().unwrap().record("sc_req_item", &sid).unwrap()["stage"], "Request Cancelled");
}

#[tokio::test]
async fn a_failed_request_gives_the_reason_and_closes_incomplete() {
    let h = Harness::start_with_servicenow(|_| {}).await;
    h.sim.set_faults(pcd_sim::Faults { server_error: Some("No valid host was found.".into()), ..Default::default() });
    let (id, sid, page) = submit(&h).await;
    decide(&h, &page, "approve", "").await;
    h.wait_status(&id, "failed", Duration::from_secs(20)).await;
    let notes = wait_item(&h, &sid, 4, "4").await;
    assert!(has(&notes, "Provisioning failed: server web-01 went to ERROR: No valid host was found."), "{notes:#?}");
}

#[tokio::test]
async fn an_expired_request_says_so_and_closes_incomplete() {
    let h = Harness::start_with_servicenow(|c| {
        c.approval_ttl = Duration::from_millis(1200);
        c.sweep_interval = Duration::from_millis(200);
    })
    .await;
    let (id, sid, _) = submit(&h).await;
    h.wait_status(&id, "expired", Duration::from_secs(10)).await;
    let notes = wait_item(&h, &sid, 2, "4").await;
    assert!(has(&notes, "before its approval links expired"), "{notes:#?}");
}

#[tokio::test]
async fn servicenow_down_for_a_while_builds_nothing_unchecked_and_loses_or_doubles_no_note() {
    let h = Harness::start_with_servicenow(|c| c.sweep_interval = Duration::from_millis(300)).await;
    let sn = h.sn.as_ref().unwrap();
    // Intake reads the item, so it needs ServiceNow: an outage there is a 502 the business rule retries.
    sn.set_faults(SnFaults { status: Some(503), ..Default::default() });
    let order = h.order();
    let sid = order["source"]["sys_id"].as_str().unwrap().to_string();
    let (status, problem) = h.intake(&order).await;
    assert_eq!(status, 502, "{problem}");
    assert!(h.mails_to(APPROVER).is_empty(), "nobody is asked for an item Gatehouse could not check");
    sn.set_faults(SnFaults::default());
    let (status, body) = h.intake(&order).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    // ServiceNow goes down: the approval is recorded, but no VM is built until the item has been
    // read again (it might have been cancelled meanwhile).
    sn.set_faults(SnFaults { status: Some(503), ..Default::default() });
    let mail = h.wait_mails_to(APPROVER, 1).await.remove(0);
    decide(&h, &page_of(&links(&mail).0), "approve", "").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.request(&id).await["status"], "approved", "waits for ServiceNow");
    assert!(h.sim.servers().is_empty(), "nothing created unchecked");
    // Back, but rate-limiting: the flow goes on.
    sn.set_faults(SnFaults { status: Some(429), retry_after_secs: Some(1), remaining: Some(3), ..Default::default() });
    h.wait_status(&id, "active", Duration::from_secs(30)).await;
    // Writes that are applied but whose answers are lost, then recovery.
    sn.set_faults(SnFaults { drop_response_after_write: true, remaining: Some(2), ..Default::default() });
    let notes = wait_item(&h, &sid, 4, "3").await;
    assert_eq!(notes.len(), 4, "every note exactly once: {notes:#?}");
    let mut unique = notes.clone();
    unique.dedup();
    assert_eq!(unique.len(), 4);
}
