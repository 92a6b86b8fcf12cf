//! A change's evidence end to end (DESIGN.md "Audit evidence"), against `gatehouse serve` with
//! the ServiceNow and GitLab simulators: after a full gate flow (request, approval, the verify
//! job played, proceed, the deploy reported and the change closed) the change record's history
//! verifies, names who asked and how they proved it, and every note Gatehouse wrote on the change
//! and on the merge request ends with an anchor of that history; the record is in the export;
//! `gatehouse audit verify` passes, then names the change and entry edited in the SQLite file.

mod support;

use std::time::Duration;

use domain::evidence::{ChainHead, parse_anchors};
use jiff::Timestamp;
use serde_json::{Value, json};
use support::Harness;
use support::gate::*;

const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn evidence_path(environment: &str) -> String {
    format!("/v1/changes/{PROJECT}/{SHA}/evidence?environment={environment}")
}

async fn evidence(h: &Harness, environment: &str) -> Value {
    let (status, record) = h.get_json(&evidence_path(environment)).await;
    assert_eq!(status, 200, "{record}");
    record
}

fn events(record: &Value) -> Vec<String> {
    record["history"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
}

/// The anchor ending `text` holds: the hash of that chained entry, as the record has it now.
fn assert_anchored(text: &str, record: &Value, what: &str) -> ChainHead {
    let last_line = text.trim_end().lines().last().unwrap_or_default();
    let anchors = parse_anchors(last_line);
    assert_eq!(anchors.len(), 1, "{what} does not end with an anchor: {text}");
    let anchor = anchors[0].clone();
    let entry = &record["history"][anchor.count as usize - 1];
    assert_eq!(entry["hash"].as_str(), Some(anchor.hash.as_str()), "{what}: {text}");
    anchor
}

/// Runs the full flow on `production`: request, approval in ServiceNow, the webhook plays the
/// verify job, the gate says proceed, the deploy is reported. Answers the change's first answer.
async fn full_flow(h: &Harness) -> Value {
    let (status, answer) = request(h, &body("production", 900001)).await;
    assert_eq!(status, 201, "{answer}");
    approve_in_servicenow(h, answer["sys_id"].as_str().unwrap());
    assert_eq!(callback(h, &answer, true).await, 202);
    assert_eq!(gate(h, "production").await["decision"], "proceed");
    let report_body = json!({"environment": "production", "status": "success",
        "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001"});
    let resp = report(h, "production", &report_body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    answer
}

#[tokio::test]
async fn a_full_gate_flow_leaves_a_change_record_that_verifies_and_is_anchored_outside() {
    let h = Harness::start_with_gate(OPEN).await;
    let since = Timestamp::now();
    let answer = full_flow(&h).await;
    let record = evidence(&h, "production").await;
    assert_eq!(record["kind"], "change");
    assert_eq!(record["id"], format!("{PROJECT}/{SHA}/production"));
    assert_eq!(record["chain_ok"], true, "{record}");
    assert_eq!(record["servicenow"]["number"], answer["number"]);
    assert_eq!(record["servicenow"]["table"], "change_request");
    assert_eq!((record["status"].as_str(), record["deployment"].as_str()), (Some("reported"), Some("success")));
    let events = events(&record);
    assert_eq!(&events[..3], ["requested", "created", "gate"], "{events:?}");
    assert!(events.contains(&"acted".to_string()), "the verify job played: {events:?}");
    assert_eq!(&events[events.len() - 2..], ["reported", "closed"], "{events:?}");
    let history = record["history"].as_array().unwrap();
    assert_eq!(record["chain"]["count"], history.len());
    assert!(history.iter().all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64)));
    // Who asked, as the job's ID token proved it; the gate's answers as they changed.
    let first = &history[0];
    assert_eq!(first["actor"], "gitlab:acme/shop pipeline 900001 job ".to_string() + &job_of(first));
    assert!(first["proof"].as_str().unwrap().starts_with("GitLab ID token: project acme/shop (4242)"), "{first}");
    // The user the job ran as: the pipeline's, as the token's user_login and user_email name it.
    let pipeline_user = format!("{} <{}>", gitlab_sim::PIPELINE_USERNAME, gitlab_sim::PIPELINE_USER_EMAIL);
    assert_eq!(first["user"], pipeline_user.as_str(), "{first}");
    assert_eq!(record["requested_by"][0]["user"], pipeline_user.as_str());
    assert!(history.iter().filter(|e| e["actor"] == "gatehouse").all(|e| e.get("user").is_none()), "{record}");
    assert!(history[1]["note"].as_str().unwrap().contains(answer["number"].as_str().unwrap()));
    let answers: Vec<&str> =
        history.iter().filter(|e| e["event"] == "gate").map(|e| e["note"].as_str().unwrap()).collect();
    assert!(answers[0].starts_with("wait: waiting for approval"), "{answers:?}");
    assert!(answers.iter().any(|a| a.starts_with("proceed:")), "{answers:?}");
    assert!(history.iter().any(|e| e["event"] == "acted" && e["note"].as_str().unwrap().contains("77001")));

    // Anchors: the change's work notes and the MR note end with this history's head as it was.
    let sys_id = answer["sys_id"].as_str().unwrap();
    let notes = sn(&h).work_notes("change_request", sys_id);
    assert!(!notes.is_empty());
    for note in &notes {
        assert_anchored(&note.text, &record, "a work note on the change");
    }
    let mr_notes = gitlab(&h).notes(PROJECT, 7);
    assert_eq!(mr_notes.len(), 1);
    let anchor = assert_anchored(&mr_notes[0].body, &record, "the MR note");
    assert!(anchor.count > 1, "the MR note was edited as the change went on");

    // The printable page.
    let resp = h.get(&evidence_path("production")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(resp.headers()["content-security-policy"], CSP);
    let page = resp.text().await.unwrap();
    assert!(page.contains("History chain verified") && page.contains(answer["number"].as_str().unwrap()));

    // The audit page's search finds it by environment, number, the project that asked and the
    // user its job ran as.
    for (field, value, found) in [
        ("environment", "production", true),
        ("number", answer["number"].as_str().unwrap(), true),
        ("person", "ACME/shop pipeline 900001", true),
        ("person", gitlab_sim::PIPELINE_USER_EMAIL, true),
        ("person", "nobody@example.com", false),
        ("environment", "staging", false),
    ] {
        let query = serde_urlencoded::to_string([("since", since.to_string()), (field, value.to_string())]).unwrap();
        let (status, page) = h.get_json(&format!("/v1/audit/search?{query}")).await;
        assert_eq!(status, 200, "{page}");
        let results = page["results"].as_array().unwrap();
        assert_eq!(results.len(), usize::from(found), "{field}={value}: {page}");
        if found {
            assert_eq!(
                (results[0]["kind"].as_str(), results[0]["environment"].as_str()),
                (Some("change"), Some("production"))
            );
            let (status, linked) = h.get_json(results[0]["evidence_url"].as_str().unwrap()).await;
            assert_eq!((status, &linked["id"]), (200, &record["id"]));
        }
    }

    // In the export of the period, and `gatehouse audit verify` checks it.
    let until = Timestamp::now() + jiff::SignedDuration::from_secs(1);
    let query = serde_urlencoded::to_string([("since", since.to_string()), ("until", until.to_string())]).unwrap();
    let resp = h.get(&format!("/v1/audit/export?{query}")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let lines: Vec<Value> = resp.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let changes: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "change").collect();
    assert_eq!(changes.len(), 1, "{lines:?}");
    assert_eq!(changes[0]["id"], record["id"]);
    let (since, until) = (since.to_string(), until.to_string());
    let args = ["verify", "--url", h.api.base.as_str(), "--since", since.as_str(), "--until", until.as_str()];
    let (code, out, err) = support::gatehouse_audit(&args, &h.token).await;
    assert_eq!(code, 0, "{out}{err}");

    // Someone with the database but not the key edits the gate's first answer.
    edit_change_entry(&h.data_dir, 2, "proceed: approved (edited)");
    let record = evidence(&h, "production").await;
    assert_eq!(record["chain_ok"], false);
    assert_eq!(record["chain_break"]["entry"], 2);
    let (code, out, err) = support::gatehouse_audit(&args, &h.token).await;
    assert_eq!(code, 1, "{out}{err}");
    let said = format!("{out}{err}");
    assert!(said.contains(&format!("{PROJECT}/{SHA}/production")) && said.contains("entry 2"), "{said}");
}

#[tokio::test]
async fn a_cancelled_change_and_the_next_one_share_one_history_anchored_outside() {
    let h = Harness::start_with_gate(OPEN).await;
    let since = Timestamp::now();
    let (_, first) = request(&h, &body("production", 900001)).await;
    let first_sys_id = first["sys_id"].as_str().unwrap().to_string();
    sn(&h).set_field("change_request", &first_sys_id, "approval", "rejected");
    assert_eq!(callback(&h, &first, false).await, 202);
    let (status, second) = request(&h, &body("production", 900005)).await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["number"], first["number"]);
    let record = evidence(&h, "production").await;
    assert_eq!(record["chain_ok"], true, "{record}");
    let events = events(&record);
    assert!(events.contains(&"cancelled".to_string()), "{events:?}");
    assert_eq!(events.iter().filter(|e| *e == "requested").count(), 2, "{events:?}");
    assert_eq!(events.iter().filter(|e| *e == "created").count(), 2, "{events:?}");
    assert_eq!(record["servicenow"]["number"], second["number"]);
    // The cancellation note on the first change is anchored too.
    let notes = sn(&h).work_notes("change_request", &first_sys_id);
    assert!(notes.iter().any(|n| n.text.contains("cancelled")));
    for note in &notes {
        assert_anchored(&note.text, &record, "a work note on the cancelled change");
    }

    // The anchors ServiceNow and GitLab hold, checked by the auditor with their own credentials:
    // the first (cancelled) change's notes are found through its correlation id.
    let until = (Timestamp::now() + jiff::SignedDuration::from_secs(1)).to_string();
    let (sn_url, gl_url) = (sn(&h).base_url(), gitlab(&h).base_url());
    let (user, password, gl_token) =
        (sn(&h).config().user.clone(), sn(&h).config().password.clone(), gitlab(&h).token());
    let env = [
        ("GATEHOUSE_AUDIT_SERVICENOW_USER", user.as_str()),
        ("GATEHOUSE_AUDIT_SERVICENOW_PASSWORD", password.as_str()),
        ("GATEHOUSE_AUDIT_GITLAB_TOKEN", gl_token.as_str()),
    ];
    let since = since.to_string();
    let plain = ["verify", "--url", h.api.base.as_str(), "--since", since.as_str(), "--until", until.as_str()];
    let mut anchored = plain.to_vec();
    anchored.extend(["--anchors", "--servicenow-url", sn_url.as_str(), "--gitlab-url", gl_url.as_str()]);
    let (code, out, err) = support::gatehouse_audit_env(&anchored, &h.token, &env).await;
    assert_eq!(code, 0, "{out}{err}");
    // Cut short to its first three entries and given a head that matches: the chain verifies,
    // the anchors do not.
    cut_change_history(&h.data_dir, 3);
    assert_eq!(evidence(&h, "production").await["chain_ok"], true);
    let (code, out, err) = support::gatehouse_audit(&plain, &h.token).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = support::gatehouse_audit_env(&anchored, &h.token, &env).await;
    assert_eq!(code, 1, "{out}{err}");
    let said = format!("{out}{err}");
    assert!(said.contains(&format!("{PROJECT}/{SHA}/production")) && said.contains("removed"), "{said}");

    for (path, status, field) in [
        (format!("/v1/changes/{PROJECT}/{SHA}/evidence"), 422, Some("environment")),
        (format!("/v1/changes/{PROJECT}/{SHA}/evidence?environment=production&x=1"), 422, Some("x")),
        (format!("/v1/changes/abc/{SHA}/evidence?environment=production"), 422, Some("project_id")),
        (format!("/v1/changes/{PROJECT}/xyz/evidence?environment=production"), 422, Some("sha")),
        (format!("/v1/changes/{PROJECT}/{SHA}/evidence?environment=staging"), 404, None),
    ] {
        let resp = h.get(&path).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let problem: Value = resp.json().await.unwrap();
        if let Some(field) = field {
            assert!(problem.to_string().contains(field), "{path}: {problem}");
        }
    }
    // Only an auditor (here: a ci token is not one).
    let resp =
        h.http.get(h.url(&evidence_path("production"))).bearer_auth(ci_token(&h, None, 900001)).send().await.unwrap();
    assert!(matches!(resp.status().as_u16(), 401 | 403), "{}", resp.status());
}

/// The job id in an entry's actor (`… job <id>`).
fn job_of(entry: &Value) -> String {
    entry["actor"].as_str().unwrap().rsplit(' ').next().unwrap().to_string()
}

/// Edits the note of the production change's history entry `entry` (0-based) straight in serve's
/// SQLite file, as someone with the database but not the evidence key could.
fn edit_change_entry(data_dir: &std::path::Path, entry: usize, note: &str) {
    let db = rusqlite::Connection::open(data_dir.join("gatehouse.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let key = format!("CHG#{PROJECT}#{SHA}#production");
    let path = format!("$.history[{entry}].note");
    let changed = db
        .execute("UPDATE changes SET data = json_set(data, ?2, ?3) WHERE key = ?1", rusqlite::params![key, path, note])
        .unwrap();
    assert_eq!(changed, 1);
}

/// Keeps the first `keep` entries of the production change's history and sets its head to them,
/// straight in serve's SQLite file: what someone with the database but not the key can do.
fn cut_change_history(data_dir: &std::path::Path, keep: usize) {
    let db = rusqlite::Connection::open(data_dir.join("gatehouse.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let key = format!("CHG#{PROJECT}#{SHA}#production");
    let data: String = db.query_row("SELECT data FROM changes WHERE key = ?1", [&key], |row| row.get(0)).unwrap();
    let mut record: Value = serde_json::from_str(&data).unwrap();
    let history = record["history"].as_array_mut().unwrap();
    assert!(history.len() > keep);
    history.truncate(keep);
    let last = history[keep - 1]["hash"].clone();
    record["chain"] = json!({"count": keep, "hash": last});
    db.execute("UPDATE changes SET data = ?2 WHERE key = ?1", rusqlite::params![key, record.to_string()]).unwrap();
}
