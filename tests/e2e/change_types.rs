//! `change_type` per environment: a standard change from its pre-approved template proceeds
//! inside its window without any CAB approval and waits outside it, and its report closes it; an
//! emergency-only environment refuses a request without the job's reason; a standard type without
//! its template stops `gatehouse serve` at start-up, with the line and the reason.

mod support;

use jiff::{Timestamp, ToSpan, tz::TimeZone};
use serde_json::json;
use servicenow_sim::DEPLOY_TEMPLATE_NAME;
use support::Harness;
use support::gate::*;

/// `production` (standard, open at any time), `window-env` (standard, open only tomorrow) and
/// `hotfix` (emergency changes only).
fn policy(now: Timestamp) -> String {
    let tomorrow = now.to_zoned(TimeZone::UTC).checked_add(1.day()).unwrap().strftime("%a").to_string().to_lowercase();
    format!(
        "environments:\n  production:\n    change_type: standard\n    standard_template: \"{DEPLOY_TEMPLATE_NAME}\"\n    \
         assignment_group: Platform Team\n  window-env:\n    timezone: UTC\n    windows:\n      - {{days: [{tomorrow}], \
         start: \"00:00\", end: \"24:00\"}}\n    change_type: standard\n    standard_template: \"{DEPLOY_TEMPLATE_NAME}\"\n  \
         hotfix:\n    change_type: emergency\n"
    )
}

#[tokio::test]
async fn a_standard_change_proceeds_in_its_window_without_the_cab_and_its_report_closes_it() {
    let h = Harness::start_with_gate(&policy(Timestamp::now())).await;
    let (status, answer) = request(&h, &body("production", 900001)).await;
    assert_eq!(status, 201, "{answer}");
    // Pre-approved and scheduled by its template: nobody approves anything, the gate says proceed.
    assert_eq!(answer["decision"], "proceed", "{answer}");
    assert_eq!(answer["approval"], "approved");
    assert_eq!(answer["state"]["display"], "Scheduled");
    let sys_id = answer["sys_id"].as_str().unwrap().to_string();
    let change = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!(change["type"], "standard", "{change}");
    assert_eq!(change["correlation_id"], format!("gitlab:{PROJECT}:{SHA}:production"));
    assert_eq!(change["short_description"], "Deploy shop 1.4.2");
    // No approval was ever asked of a group or the CAB (the simulator records every one).
    assert!(sn(&h).records("sysapproval_group").is_empty());
    // The deployment's description is on the change as a work note (the template's stands).
    let notes = sn(&h).work_notes("change_request", &sys_id);
    assert!(notes.iter().any(|n| n.text.contains("Release 1.4.2")), "{notes:?}");
    assert_eq!(gate(&h, "production").await["decision"], "proceed");

    // The report walks Scheduled → Implement → Review → Closed (the simulator refuses any shortcut).
    let resp = report(
        &h,
        "production",
        &json!({"environment": "production", "status": "success",
        "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001"}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let closed = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!((closed["state"].as_str(), closed["close_code"].as_str()), (Some("3"), Some("successful")));
    assert!(closed["close_notes"].as_str().unwrap().contains("pipelines/900001"), "{closed}");
    assert_eq!(gate(&h, "production").await["decision"], "blocked", "a closed change blocks");
}

#[tokio::test]
async fn a_standard_change_outside_its_window_waits() {
    let h = Harness::start_with_gate(&policy(Timestamp::now())).await;
    let (status, answer) = request(&h, &body("window-env", 900001)).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        (answer["approval"].as_str(), answer["state"]["display"].as_str()),
        (Some("approved"), Some("Scheduled"))
    );
    assert_eq!(answer["decision"], "wait", "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("outside the change window"), "{answer}");
    assert!(answer["window"]["next_open_at"].is_string(), "{answer}");
    // Still no CAB: only the window holds it.
    assert!(sn(&h).records("sysapproval_group").is_empty());
}

#[tokio::test]
async fn an_emergency_only_environment_refuses_a_request_without_a_reason() {
    let h = Harness::start_with_gate(&policy(Timestamp::now())).await;
    let (status, problem) = request(&h, &body("hotfix", 900001)).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "emergency_reason", "{problem}");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("GATEHOUSE_EMERGENCY_REASON"), "{message}");
    assert!(sn(&h).records("change_request").is_empty(), "no change was made");
    // With the job's reason it is an emergency change, waiting for its approval.
    let mut emergency = body("hotfix", 900001);
    emergency["emergency_reason"] = json!("Payment outage: hotfix 1.4.3");
    let (status, answer) = request(&h, &emergency).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["decision"], "wait", "{answer}");
    let change = sn(&h).record("change_request", answer["sys_id"].as_str().unwrap()).unwrap();
    assert_eq!(change["type"], "emergency", "{change}");
}

#[tokio::test]
async fn a_standard_type_without_its_template_stops_gatehouse_serve() {
    let dir = support::temp_dir("change-types");
    let policy = dir.join("change-policy.yaml");
    std::fs::write(&policy, "environments:\n  production:\n    change_type: standard\n    timezone: UTC\n").unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("GATEHOUSE_CHANGE_POLICY", &policy)
        .env_remove("GATEHOUSE_OIDC_ISSUER")
        .kill_on_drop(true)
        .output();
    // A guard against a server that starts anyway, not a timing assertion.
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("gatehouse serve started with a malformed policy")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("change_type standard needs standard_template"), "{stderr}");
}
