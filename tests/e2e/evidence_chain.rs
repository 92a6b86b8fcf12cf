//! The request's history chain end to end (DESIGN.md "Audit evidence"): after a full provisioning
//! flow with ServiceNow write-backs, `GET /v1/requests/{id}` shows a chain that verifies; after one
//! history row is edited directly in the SQLite file, the same GET says the chain is broken and
//! names the entry. A rotated evidence key leaves the chain whole while the old key is kept as
//! retired.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::process::{EVIDENCE_KEY, ServeProcess, SimProcess};
use support::{Harness, intake_body, links, page_of, sys_id};

const APPROVER: &str = "approver@demo.invalid";

/// The active request once every message it owes (mails, work notes) went out: a delivered
/// work note's history entry is written with the message's removal, so its history is final.
async fn settled(h: &Harness, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = h.request(id).await;
        if r["messages"].as_array().is_some_and(|m| m.is_empty()) {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "the write-backs never all went out: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_provisioned_request_shows_a_verified_chain_until_a_row_is_edited() {
    let h = Harness::start_with_servicenow(|_| {}).await;
    let (status, answer) = h.intake(&h.order()).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let mails = h.wait_mails_to(APPROVER, 1).await;
    let page = page_of(&links(mails.iter().find(|m| m.text.contains(&id)).unwrap()).0);
    let resp = h.http.post(&page).header("accept", "application/json").json(&json!({"decision": "approve"})).send();
    assert_eq!(resp.await.unwrap().status(), 200);
    h.wait_status(&id, "active", Duration::from_secs(20)).await;

    let r = settled(&h, &id).await;
    let history = r["history"].as_array().unwrap();
    let steps: Vec<&str> = history.iter().filter(|e| e["from"] != e["to"]).map(|e| e["to"].as_str().unwrap()).collect();
    assert_eq!(steps, ["pending_approval", "approved", "provisioning", "active"], "{r}");
    let notes = history.iter().filter(|e| e["from"] == e["to"] && e["actor"] == "servicenow").count();
    assert!(notes >= 3, "the work notes written on the item are in the history too: {r}");
    let chain = &r["chain"];
    assert_eq!(chain["ok"], true, "{chain}");
    assert_eq!(chain["count"], history.len(), "every entry is in the chain: {r}");
    assert_eq!(chain["unchained"], 0);
    assert_eq!(chain["broken"], Value::Null);
    for entry in history {
        let hash = entry["hash"].as_str().unwrap_or_else(|| panic!("an entry without a hash: {entry}"));
        assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    }
    assert_eq!(chain["hash"], history.last().unwrap()["hash"], "the head is the last entry's hash");

    // Someone with the database but not the evidence key rewrites who approved.
    let approval = history.iter().position(|e| e["to"] == "approved").unwrap();
    support::rewrite_history_actor(&h.data_dir, &id, approval, "mallory@example.com");

    let r = h.request(&id).await;
    assert_eq!(r["history"][approval]["actor"], "mallory@example.com", "the edit shows: {r}");
    let chain = &r["chain"];
    assert_eq!(chain["ok"], false, "{chain}");
    assert_eq!(chain["broken"]["entry"], approval, "the edited entry is named: {chain}");
    assert!(chain["broken"]["reason"].as_str().unwrap().contains("edited"), "{chain}");
    assert_eq!(chain["count"], history.len(), "the head itself is untouched");
}

/// The evidence key rotated while a request waits for approval: the operator sets a new
/// `GATEHOUSE_EVIDENCE_KEY` and moves the old one to `GATEHOUSE_EVIDENCE_KEYS_RETIRED`. The
/// request's chain (old entries under the old key, new ones under the new) verifies; without the
/// retired key its first entry is broken, and with only the old key the first entry written after
/// the rotation.
#[tokio::test]
async fn after_a_key_rotation_the_chain_verifies_while_the_old_key_is_retired() {
    let sim = SimProcess::start(300);
    let mut serve = ServeProcess::start(&sim, &[]).await;
    let (status, answer) = serve.intake(&intake_body(&sys_id())).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let mails = serve.wait_mails_to("approver@example.com", 1).await;
    let page = page_of(&links(mails.iter().find(|m| m.text.contains(&id)).unwrap()).0);
    let before = serve.request(&id).await["history"].as_array().unwrap().len();

    let new_key = domain::evidence::EvidenceKey::generate().to_base64();
    serve
        .restart_with(&[("GATEHOUSE_EVIDENCE_KEY", &new_key), ("GATEHOUSE_EVIDENCE_KEYS_RETIRED", EVIDENCE_KEY)])
        .await;
    let resp = serve.http.post(&page).header("accept", "application/json").json(&json!({"decision": "approve"}));
    assert_eq!(resp.send().await.unwrap().status(), 200);
    let r = serve.wait_status(&id, "active", Duration::from_secs(20)).await;
    let history = r["history"].as_array().unwrap().len();
    assert!(history > before, "entries were written after the rotation: {r}");
    assert_eq!((r["chain"]["ok"].as_bool(), r["chain"]["count"].as_u64()), (Some(true), Some(history as u64)), "{r}");

    serve.restart_with(&[("GATEHOUSE_EVIDENCE_KEYS_RETIRED", "")]).await;
    let r = serve.request(&id).await;
    assert_eq!((r["chain"]["ok"].as_bool(), r["chain"]["broken"]["entry"].as_u64()), (Some(false), Some(0)), "{r}");

    serve.restart_with(&[("GATEHOUSE_EVIDENCE_KEY", EVIDENCE_KEY)]).await;
    let r = serve.request(&id).await;
    assert_eq!(r["chain"]["ok"], false, "{r}");
    let broken = r["chain"]["broken"]["entry"].as_u64().unwrap() as usize;
    assert!((before..history).contains(&broken), "an entry sealed after the rotation ({before}..{history}): {r}");
}
