//! Anchors outside Gatehouse end to end (DESIGN.md "Audit evidence"), against `gatehouse serve` and
//! the ServiceNow simulator: every work note Gatehouse writes on a request item ends with the
//! request's head; `gatehouse audit verify --anchors` reads them from ServiceNow's journal with the
//! auditor's own credentials and passes; a history cut short in the SQLite file, its head rewritten
//! to match (what someone with the database but not the evidence key can do), passes the plain
//! `verify` but not `--anchors`; nor does a request deleted outright. `GET /v1/audit/records`
//! finds a record by its item's sys_id.

mod support;

use std::time::Duration;

use domain::config::{ApiTokens, Scope};
use domain::evidence::{ChainHead, anchor_line, parse_anchors};
use serde_json::{Value, json};
use support::{Harness, links, page_of};

const APPROVER: &str = "approver@demo.invalid";
const SERVICENOW_TOKEN: &str = "anchors-test-token-of-scope-servicenow-00001";
const AUDIT_TOKEN: &str = "anchors-test-token-of-scope-audit-0000000001";

async fn start() -> Harness {
    let mut h = Harness::start_with_servicenow(|c| {
        c.api_tokens = ApiTokens::new([(Scope::ServiceNow, SERVICENOW_TOKEN), (Scope::Audit, AUDIT_TOKEN)]);
    })
    .await;
    h.api.token = SERVICENOW_TOKEN.into();
    h
}

/// Orders a VM in the ServiceNow simulator, approves it through the approver's mail and waits
/// until it is active and every message it owes went out (its history is final then). Answers
/// the request's id and its item's sys_id.
async fn provision(h: &Harness) -> (String, String) {
    let order = h.order();
    let (status, answer) = h.intake(&order).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    support::wait_until(Duration::from_secs(15), || h.mails_to(APPROVER).iter().any(|m| m.text.contains(&id))).await;
    let mails = h.mails_to(APPROVER);
    let page = page_of(&links(mails.iter().find(|m| m.text.contains(&id)).unwrap()).0);
    let resp = h.http.post(&page).header("accept", "application/json").json(&json!({"decision": "approve"})).send();
    assert_eq!(resp.await.unwrap().status(), 200);
    h.wait_status(&id, "active", Duration::from_secs(20)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !h.request(&id).await["messages"].as_array().is_some_and(|m| m.is_empty()) {
        assert!(tokio::time::Instant::now() < deadline, "the write-backs never all went out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (id, order["source"]["sys_id"].as_str().unwrap().to_string())
}

/// `gatehouse audit ARGS` with only the audit token and the auditor's ServiceNow user (the
/// simulator's, as the demo prints them) in its environment.
async fn gatehouse_audit(h: &Harness, args: &[&str]) -> (i32, String, String) {
    let sn = h.sn.as_ref().unwrap().config();
    let env = [
        ("GATEHOUSE_AUDIT_SERVICENOW_USER", sn.user.as_str()),
        ("GATEHOUSE_AUDIT_SERVICENOW_PASSWORD", sn.password.as_str()),
    ];
    support::gatehouse_audit_env(args, AUDIT_TOKEN, &env).await
}

fn db(h: &Harness) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(h.data_dir.join("gatehouse.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db
}

/// Deletes the last `n` history rows of request `id` and sets its head to what is left (count and
/// last hash), straight in serve's SQLite file: the chain then verifies again.
fn cut_history(h: &Harness, id: &str, n: usize) -> ChainHead {
    let db = db(h);
    let deleted = db
        .execute(
            "DELETE FROM history WHERE request_id = ?1
             AND seq IN (SELECT seq FROM history WHERE request_id = ?1 ORDER BY seq DESC LIMIT ?2)",
            rusqlite::params![id, n as i64],
        )
        .unwrap();
    assert_eq!(deleted, n);
    let (count, hash): (u64, String) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM history WHERE request_id = ?1),
                    (SELECT json_extract(data, '$.hash') FROM history WHERE request_id = ?1 ORDER BY seq DESC LIMIT 1)",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    let changed = db
        .execute(
            "UPDATE requests SET data = json_set(data, '$.chain.count', ?2, '$.chain.hash', ?3) WHERE id = ?1",
            rusqlite::params![id, count as i64, hash],
        )
        .unwrap();
    assert_eq!(changed, 1);
    ChainHead { count, hash }
}

/// Deletes request `id` and every row that belongs to it.
fn delete_request(h: &Harness, id: &str) {
    let db = db(h);
    for table in ["history", "messages", "tokens"] {
        db.execute(&format!("DELETE FROM {table} WHERE request_id = ?1"), [id]).unwrap();
    }
    assert_eq!(db.execute("DELETE FROM requests WHERE id = ?1", [id]).unwrap(), 1);
}

/// The work notes of item `sys_id`, each checked to end with a well-formed anchor; their anchors.
fn anchors_on_item(h: &Harness, sys_id: &str) -> Vec<ChainHead> {
    let notes = h.sn.as_ref().unwrap().work_notes("sc_req_item", sys_id);
    assert!(notes.len() >= 3, "{notes:#?}");
    notes
        .iter()
        .map(|note| {
            let last = note.text.lines().last().unwrap_or_default();
            let anchors = parse_anchors(last);
            assert_eq!(anchors.len(), 1, "the note's last line is its anchor: {:?}", note.text);
            assert_eq!(last, anchor_line(&anchors[0]));
            anchors[0].clone()
        })
        .collect()
}

async fn record_of(h: &Harness, query: &str) -> (u16, Value) {
    let resp = h.http.get(h.url(&format!("/v1/audit/records?{query}"))).bearer_auth(AUDIT_TOKEN).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn anchors_in_servicenow_catch_a_history_cut_short_and_a_deleted_request() {
    let h = start().await;
    let (cut, cut_item) = provision(&h).await;
    let (gone, gone_item) = provision(&h).await;

    // Every note on the items ends with the head as it stood when it was written: heads that grow,
    // each one an entry of the history as it stands.
    for (id, item) in [(&cut, &cut_item), (&gone, &gone_item)] {
        let anchors = anchors_on_item(&h, item);
        // The evidence record's history: every entry, the mails sent included.
        let history =
            record_of(&h, &format!("servicenow_sys_id={item}")).await.1["history"].as_array().unwrap().clone();
        let mut counts: Vec<u64> = anchors.iter().map(|a| a.count).collect();
        counts.sort();
        assert_eq!(counts, anchors.iter().map(|a| a.count).collect::<Vec<_>>(), "written in order: {anchors:?}");
        for anchor in &anchors {
            let entry = &history[anchor.count as usize - 1];
            assert_eq!(entry["hash"], anchor.hash.as_str(), "entry {} of {id}: {anchor:?}", anchor.count);
        }
    }

    // The record by its item's sys_id (any case), the same as its evidence; 404 and 422 otherwise.
    let (status, found) = record_of(&h, &format!("servicenow_sys_id={}", cut_item.to_uppercase())).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!((found["kind"].as_str(), found["id"].as_str()), (Some("request"), Some(cut.as_str())));
    assert_eq!(found["chain"]["count"], found["history"].as_array().unwrap().len(), "{found}");
    let (status, _) = record_of(&h, &format!("servicenow_sys_id={}", support::sys_id())).await;
    assert_eq!(status, 404);
    let (status, problem) = record_of(&h, "servicenow_sys_id=RITM0010001").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some("servicenow_sys_id")), "{problem}");

    let base = h.base.clone();
    let sn_url = h.sn.as_ref().unwrap().base_url();
    let plain = ["verify", "--url", &base];
    let anchored = ["verify", "--url", &base, "--anchors", "--servicenow-url", &sn_url];
    let (code, stdout, stderr) = gatehouse_audit(&h, &anchored).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("every history chain verifies"), "{stdout}");
    assert!(stdout.contains("anchors checked") && stdout.contains("on 2 records"), "{stdout}");

    // The second request deleted outright: the export no longer has it, so the chains all verify,
    // but ServiceNow still holds its anchors.
    delete_request(&h, &gone);
    let (code, stdout, stderr) = gatehouse_audit(&h, &plain).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = gatehouse_audit(&h, &anchored).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("sc_req_item {gone_item}")), "{stdout}");
    assert!(stdout.contains("record is missing"), "{stdout}");
    let latest = anchors_on_item(&h, &gone_item).into_iter().max_by_key(|a| a.count).unwrap();
    assert!(stdout.contains(&anchor_line(&latest)), "the latest anchor is named: {stdout}");

    // The first one's last two entries removed and its head rewritten to match: its chain
    // verifies, the anchors written after those entries do not.
    let head = cut_history(&h, &cut, 2);
    let shown = h.request(&cut).await;
    assert_eq!(shown["chain"]["ok"], true, "the chain alone cannot show it: {}", shown["chain"]);
    assert_eq!(shown["chain"]["count"], head.count);
    let (code, stdout, stderr) = gatehouse_audit(&h, &plain).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = gatehouse_audit(&h, &anchored).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("request {cut}")), "the request is named: {stdout}");
    assert!(stdout.contains(&cut_item) && stdout.contains("entries were removed"), "{stdout}");

    // Without the auditor's own ServiceNow credentials, --anchors does not start (exit 3).
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("audit")
        .args(anchored)
        .env_clear()
        .env("GATEHOUSE_TOKEN", AUDIT_TOKEN)
        .output()
        .await
        .unwrap();
    assert_eq!(child.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&child.stderr).contains("GATEHOUSE_AUDIT_SERVICENOW_USER"));
}

/// Anchored notes someone else wrote on the instance (another Gatehouse deployment sharing it,
/// or a person pasting one) name records this deployment does not have; with
/// `--servicenow-author` only the notes of Gatehouse's own ServiceNow user count.
#[tokio::test]
async fn with_servicenow_author_only_the_notes_of_gatehouses_user_count() {
    let h = start().await;
    let (_, item) = provision(&h).await;
    let sn = h.sn.as_ref().unwrap();
    // Another deployment's item and anchored note, written as the simulator's "system" user.
    let elsewhere = sn.insert("sc_req_item", serde_json::Map::new());
    let note = format!("Approved elsewhere.\n\ngatehouse-chain: 2:{}", "ab".repeat(32));
    assert!(sn.set_field("sc_req_item", &elsewhere, "work_notes", &note));

    let (base, sn_url, user) = (h.base.clone(), sn.base_url(), sn.config().user.clone());
    let anchored = ["verify", "--url", &base, "--anchors", "--servicenow-url", &sn_url];
    let (code, stdout, stderr) = gatehouse_audit(&h, &anchored).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("sc_req_item {elsewhere}")) && stdout.contains("record is missing"), "{stdout}");

    let by = |author: &str| format!("--servicenow-author={author}");
    let (code, stdout, stderr) = gatehouse_audit(&h, &[&anchored[..], &[&by(&user)]].concat()).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("on 1 records"), "{stdout}");
    assert_eq!(anchors_on_item(&h, &item).len(), count_checked(&stdout), "every note Gatehouse wrote: {stdout}");
    let (code, stdout, stderr) = gatehouse_audit(&h, &[&anchored[..], &[&by("system")]].concat()).await;
    assert_eq!(code, 1, "only the other user's note: {stdout}{stderr}");
    assert!(stdout.contains(&format!("sc_req_item {elsewhere}")), "{stdout}");
    let (code, _, stderr) = gatehouse_audit(&h, &[&anchored[..], &[&by("two^users")]].concat()).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("--servicenow-author"), "{stderr}");
}

/// How many anchors `verify --anchors` says it checked.
fn count_checked(stdout: &str) -> usize {
    let (before, _) = stdout.split_once(" anchors checked").expect("a count of anchors checked");
    before.rsplit(' ').next().unwrap().parse().unwrap()
}
