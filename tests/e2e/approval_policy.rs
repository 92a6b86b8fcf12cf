//! The approval policy end to end (DESIGN.md "Approval policy"), through HTTP against `gatehouse
//! serve` with a policy file: auto-approval of a small dev request, two stages with a quorum,
//! a deny in a later stage, one person counting once, delegations inside and outside their dates,
//! escalation, a rule the requester alone could meet, and 30 approvers racing in one stage.

mod support;

use std::sync::Arc;
use std::time::Duration;

use domain::approvals::ApprovalPolicy;
use jiff::{Timestamp, ToSpan, tz::TimeZone};
use serde_json::{Value, json};
use support::{Harness, intake_body, links, page_of, sys_id};

const REQUESTER: &str = "ada@example.com";
const PLATFORM: [&str; 3] = ["ops1@example.com", "ops2@example.com", "ops3@example.com"];
const DEPUTY: &str = "deputy@example.com";
const NOT_YET: &str = "later@example.com";

fn day(offset_days: i64) -> String {
    Timestamp::now().to_zoned(TimeZone::UTC).checked_add(offset_days.days()).unwrap().date().to_string()
}

/// DESIGN.md's shape: small dev requests approve themselves, large ones need the platform team and
/// then two of security (ops2 is in both groups), everything else one of the platform team. ops1
/// is away (deputy decides for them today); ops3's delegation starts tomorrow.
fn policy(escalate_after: &str) -> String {
    format!(
        "groups:
  platform: [ops1@example.com, ops2@example.com, ops3@example.com]
  security: [sec1@example.com, sec2@example.com, ops2@example.com]
  leads: [lead1@example.com, lead2@example.com]
  self-service: [ada@example.com]
rules:
  - name: small-dev
    when: {{max_vcpus: 1, max_count: 1, metadata: {{env: dev}}}}
    auto_approve: true
  - name: large
    when: {{min_vcpus: 4}}
    stages:
      - {{group: platform, quorum: 1}}
      - {{group: security, quorum: 2}}
  - name: own-approval
    when: {{flavor: m1.medium}}
    stages: [{{group: self-service, quorum: 1}}]
  - name: default
    stages: [{{group: platform, quorum: 1}}]
delegations:
  - {{from: ops1@example.com, to: {DEPUTY}, start: {}, end: {}}}
  - {{from: ops3@example.com, to: {NOT_YET}, start: {}, end: {}}}
escalation: {{after: {escalate_after}, group: leads}}
",
        day(-1),
        day(0),
        day(1),
        day(10)
    )
}

async fn start(policy: &str, sweep_secs: f64) -> Harness {
    let policy = Arc::new(ApprovalPolicy::parse(policy).expect("the test policy parses"));
    Harness::start_with(move |c| {
        c.approval_policy = Some(policy);
        c.sweep_interval = Duration::from_secs_f64(sweep_secs);
    })
    .await
}

fn body(flavor: &str, metadata: Value) -> Value {
    let mut body = intake_body(&sys_id());
    body["flavor"] = flavor.into();
    body["metadata"] = metadata;
    body
}

async fn submit(h: &Harness, body: &Value) -> String {
    let (status, answer) = h.intake(body).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

/// The Approve link `to` was mailed for request `id` (the `n`th such mail, 1-based).
async fn link_for(h: &Harness, to: &str, id: &str, n: usize) -> String {
    support::wait_until(Duration::from_secs(15), || mails_for(h, to, id).len() >= n).await;
    links(&mails_for(h, to, id)[n - 1]).0
}

fn mails_for(h: &Harness, to: &str, id: &str) -> Vec<mail::OutboxMail> {
    let mut mails: Vec<_> = h.mails_to(to).into_iter().filter(|m| m.text.contains(id)).collect();
    mails.sort_by(|a, b| a.file.cmp(&b.file));
    mails
}

async fn decide(h: &Harness, link: &str, decision: &str) -> (u16, Value) {
    let resp = h
        .http
        .post(page_of(link))
        .header("accept", "application/json")
        .json(&json!({"decision": decision}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn stage(request: &Value, n: usize) -> &Value {
    &request["approval"]["stages"][n]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_small_dev_request_is_approved_by_the_policy_and_built_without_asking_anyone() {
    let h = start(&policy("1h"), 60.0).await;
    let id = submit(&h, &body("m1.small", json!({"env": "dev"}))).await;
    let r = h.wait_status(&id, "active", Duration::from_secs(30)).await;
    assert_eq!(r["approval"]["rule"], "small-dev");
    assert_eq!(r["approval"]["auto_approved"], true);
    let first = &r["history"][0];
    assert_eq!((first["actor"].as_str(), first["to"].as_str()), (Some("policy:small-dev"), Some("approved")));
    let mails = h.wait_mails_to(REQUESTER, 2).await;
    let approved = mails.iter().find(|m| m.subject.starts_with("Approved:")).expect("the requester's Approved mail");
    assert!(approved.text.contains("rule small-dev"), "{}", approved.text);
    for approver in PLATFORM.iter().chain(&[DEPUTY, "approver@demo.invalid"]) {
        assert!(h.mails_to(approver).is_empty(), "{approver} was mailed");
    }
}

#[tokio::test]
async fn a_large_request_passes_platform_then_two_of_security_and_one_person_counts_once() {
    let h = start(&policy("1h"), 60.0).await;
    let id = submit(&h, &body("m1.large", json!({}))).await;
    // Stage 1: the platform team, and ops1's deputy for them; nobody of security yet, and not
    // ops3's delegate, whose delegation starts tomorrow.
    let ops2_first = link_for(&h, "ops2@example.com", &id, 1).await;
    for to in ["ops1@example.com", "ops3@example.com", DEPUTY] {
        link_for(&h, to, &id, 1).await;
    }
    let deputy_mail = &mails_for(&h, DEPUTY, &id)[0];
    assert!(deputy_mail.text.contains("delegate of ops1@example.com"), "{}", deputy_mail.text);
    assert!(deputy_mail.text.contains("stage 1 of 2 (platform, 1 approval)"), "{}", deputy_mail.text);
    assert!(mails_for(&h, NOT_YET, &id).is_empty(), "a delegation from tomorrow asks nobody today");
    assert!(mails_for(&h, "sec1@example.com", &id).is_empty());
    let r = h.request(&id).await;
    assert_eq!(r["approval"]["rule"], "large");
    assert_eq!(stage(&r, 0)["state"], "open");
    assert_eq!(stage(&r, 1)["state"], "waiting");

    // ops2 approves stage 1; stage 2 opens in the same write and asks security without ops2.
    let (status, answer) = decide(&h, &ops2_first, "approve").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "pending_approval");
    assert!(answer["message"].as_str().unwrap().contains("stage 2 of 2 (security, 2 approvals) is now asked"));
    let sec1 = link_for(&h, "sec1@example.com", &id, 1).await;
    let sec2 = link_for(&h, "sec2@example.com", &id, 1).await;
    let sec_mail = &mails_for(&h, "sec1@example.com", &id)[0];
    assert!(sec_mail.text.contains("stage 2 of 2 (security, 2 approvals)"), "{}", sec_mail.text);
    let r = h.request(&id).await;
    assert_eq!(strings(&stage(&r, 0)["approved_by"]), vec!["ops2@example.com"]);
    assert_eq!(stage(&r, 1)["state"], "open");
    assert_eq!(strings(&stage(&r, 1)["waiting_on"]), vec!["sec1@example.com", "sec2@example.com"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mails_for(&h, "ops2@example.com", &id).len(), 1, "ops2 counted in stage 1 and is not asked again");
    // Their stage-1 link decides nothing more, and neither does another platform link.
    let (status, answer) = decide(&h, &ops2_first, "approve").await;
    assert_eq!((status, answer["link"].as_str()), (409, Some("stage_passed")), "{answer}");
    let ops3 = link_for(&h, "ops3@example.com", &id, 1).await;
    let (status, answer) = decide(&h, &ops3, "deny").await;
    assert_eq!((status, answer["link"].as_str()), (409, Some("stage_passed")), "{answer}");

    // One of security is not enough; the page says how many more.
    let (status, answer) = decide(&h, &sec1, "approve").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("pending_approval")), "{answer}");
    let page = h.http.get(&sec2).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("stage 2 of 2 (security, 2 approvals)") && page.contains("1 more needed"), "{page}");
    let r = h.request(&id).await;
    assert_eq!(strings(&stage(&r, 1)["approved_by"]), vec!["sec1@example.com"]);
    assert_eq!(strings(&stage(&r, 1)["waiting_on"]), vec!["sec2@example.com"]);

    let (status, answer) = decide(&h, &sec2, "approve").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("approved")), "{answer}");
    let r = h.wait_status(&id, "active", Duration::from_secs(30)).await;
    assert_eq!(stage(&r, 1)["state"], "passed");
    let notes: Vec<&str> = r["history"].as_array().unwrap().iter().filter_map(|e| e["note"].as_str()).collect();
    assert!(notes.iter().any(|n| n.contains("stage 1 of 2 (platform, 1 approval) passed")), "{notes:?}");
    let approved = h.wait_mails_to(REQUESTER, 3).await;
    let approved = approved.iter().find(|m| m.subject.starts_with("Approved:")).unwrap();
    assert!(
        approved.text.contains("ops2@example.com (platform), then sec1@example.com and sec2@example.com (security)"),
        "{}",
        approved.text
    );
}

#[tokio::test]
async fn a_deputy_decides_for_the_away_approver_and_a_deny_in_stage_two_kills_every_link() {
    let h = start(&policy("1h"), 60.0).await;
    let id = submit(&h, &body("m1.large", json!({}))).await;
    let deputy = link_for(&h, DEPUTY, &id, 1).await;
    let ops1 = link_for(&h, "ops1@example.com", &id, 1).await;
    let (status, answer) = decide(&h, &deputy, "approve").await;
    assert_eq!(status, 200, "{answer}");
    let r = h.request(&id).await;
    let approval = &stage(&r, 0)["approvals"][0];
    assert_eq!(
        (approval["approver"].as_str(), approval["delegate"].as_str()),
        (Some("ops1@example.com"), Some(DEPUTY))
    );
    let entry = r["history"].as_array().unwrap().iter().find(|e| e["actor"] == DEPUTY).expect("the deputy's entry");
    assert!(entry["note"].as_str().unwrap().contains("for ops1@example.com"), "{entry}");
    // ops1 counted through their deputy: their own link is over.
    let (status, _) = decide(&h, &ops1, "approve").await;
    assert_eq!(status, 409);

    let sec1 = link_for(&h, "sec1@example.com", &id, 1).await;
    let sec2 = link_for(&h, "sec2@example.com", &id, 1).await;
    let ops2 = link_for(&h, "ops2@example.com", &id, 2).await;
    let (status, answer) = decide(&h, &sec1, "deny").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("denied")), "{answer}");
    for link in [&sec2, &ops2, &deputy] {
        let (status, answer) = decide(&h, link, "approve").await;
        assert_eq!((status, answer["link"].as_str()), (409, Some("decided")), "{answer}");
    }
    let r = h.request(&id).await;
    assert_eq!(r["status"], "denied");
    assert_eq!(stage(&r, 1)["state"], "denied");
    let denied = h.wait_mails_to(REQUESTER, 2).await;
    assert!(denied.iter().any(|m| m.subject.starts_with("Denied:")));
}

#[tokio::test]
async fn a_rule_only_the_requester_could_meet_is_refused_at_intake() {
    let h = start(&policy("1h"), 60.0).await;
    let (status, answer) = h.intake(&body("m1.medium", json!({}))).await;
    assert_eq!(status, 422, "{answer}");
    let detail = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert_eq!(answer["errors"][0]["field"], "requester.email", "{answer}");
    assert!(detail.contains("own-approval"), "{answer}");
    assert!(h.mails().is_empty(), "nobody was mailed");
}

#[tokio::test]
async fn a_stage_open_past_its_escalation_time_asks_the_escalation_group_once() {
    let h = start(&policy("2s"), 0.5).await;
    let id = submit(&h, &body("m1.small", json!({}))).await;
    let lead1 = link_for(&h, "lead1@example.com", &id, 1).await;
    let mail = &mails_for(&h, "lead1@example.com", &id)[0];
    assert!(mail.text.contains("asked as well"), "{}", mail.text);
    // Several sweeps later, still one mail each.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for lead in ["lead1@example.com", "lead2@example.com"] {
        assert_eq!(mails_for(&h, lead, &id).len(), 1, "{lead}");
    }
    let r = h.request(&id).await;
    assert_eq!(strings(&stage(&r, 0)["escalated_to"]), vec!["lead1@example.com", "lead2@example.com"]);
    // An escalation approver counts toward the stage's quorum.
    let (status, answer) = decide(&h, &lead1, "approve").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("approved")), "{answer}");
}

#[tokio::test]
async fn thirty_approvers_racing_in_a_quorum_two_stage_pass_it_once() {
    let crowd: Vec<String> = (0..30).map(|i| format!("crowd{i}@example.com")).collect();
    let policy = format!(
        "groups:\n  crowd: [{}]\n  final: [final1@example.com, final2@example.com]\nrules:\n  - name: default\n    \
         stages:\n      - {{group: crowd, quorum: 2}}\n      - {{group: final, quorum: 1}}\n",
        crowd.join(", ")
    );
    let h = start(&policy, 60.0).await;
    let id = submit(&h, &body("m1.small", json!({}))).await;
    let mut links = Vec::new();
    for who in &crowd {
        links.push(link_for(&h, who, &id, 1).await);
    }
    let answers = futures::future::join_all(links.iter().map(|l| decide(&h, l, "approve"))).await;
    let recorded = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused = answers.iter().filter(|(s, a)| *s == 409 && a["link"] == "stage_passed").count();
    assert_eq!((recorded, refused), (2, 28), "{answers:?}");
    for to in ["final1@example.com", "final2@example.com"] {
        assert_eq!(h.wait_mails_to(to, 1).await.len(), 1, "one set of stage-2 links");
    }
    let r = h.request(&id).await;
    assert_eq!(stage(&r, 0)["approved_by"].as_array().unwrap().len(), 2);
    let passes = r["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["note"].as_str().is_some_and(|n| n.contains("passed")))
        .count();
    assert_eq!(passes, 1, "{r}");
}

#[tokio::test]
async fn a_malformed_approval_policy_stops_gatehouse_serve_with_its_line() {
    let dir = support::temp_dir("approval-policy");
    let path = dir.join("approval-policy.yaml");
    std::fs::write(&path, "groups:\n  platform: [ops1@example.com]\nrules:\n  - name: default\n    stages:\n      - {group: secrity, quorum: 1}\n").unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("GATEHOUSE_APPROVAL_POLICY", &path)
        .env_remove("GATEHOUSE_OIDC_ISSUER")
        .kill_on_drop(true)
        .output();
    // A guard against a server that starts anyway, not a timing assertion.
    let out =
        tokio::time::timeout(Duration::from_secs(120), run).await.expect("serve started with a bad policy").unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GATEHOUSE_APPROVAL_POLICY") && stderr.contains("line 6"), "{stderr}");
    assert!(stderr.contains("secrity"), "{stderr}");
}
