//! When the gate acts: only on proceed — windows, blackouts and freezes hold the verify job and
//! the waiting deployment, `gatehouse ci verify --wait` waits, and a rejection rejects.

mod support;

use jiff::{SignedDuration, Timestamp, ToSpan, tz::TimeZone};
use serde_json::json;
use support::Harness;
use support::gate::*;

/// The job variables of DESIGN.md's example pipeline, for `gatehouse ci` against this server.
fn job_env(h: &Harness, environment: &str) -> Vec<(String, String)> {
    // The job's ID token, from `id_tokens:` (the CLI prefers it to a static token).
    let job = NEXT_JOB.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    gitlab(h).add_job(PROJECT, job, 900001, "gatehouse:request", "running");
    gitlab(h).set_job_environment(PROJECT, job, Some(environment));
    let id_token = gitlab(h).id_token(job, "gatehouse");
    let job = job.to_string();
    [
        ("GATEHOUSE_URL", h.base.as_str()),
        ("GATEHOUSE_ID_TOKEN", id_token.as_str()),
        ("CI_PROJECT_ID", "4242"),
        ("CI_PROJECT_PATH", "acme/shop"),
        ("CI_COMMIT_SHA", SHA),
        ("CI_COMMIT_REF_NAME", "main"),
        ("CI_COMMIT_TITLE", "Deploy shop 1.4.2"),
        ("CI_ENVIRONMENT_NAME", environment),
        ("CI_PIPELINE_ID", "900001"),
        ("CI_PIPELINE_URL", "https://gitlab.example.com/acme/shop/-/pipelines/900001"),
        ("CI_JOB_ID", job.as_str()),
        ("CI_JOB_URL", "https://gitlab.example.com/acme/shop/-/jobs/77002"),
        ("GATEHOUSE_VERIFY_JOB_ID", "77001"),
        // Test-only: polls every half second instead of at least every 10 s.
        ("GATEHOUSE_CI_MIN_INTERVAL_MS", "500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn ci(args: &[&str], env: &[(String, String)]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("ci")
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn ci_verify_wait_proceeds_once_the_window_opens_and_report_closes() {
    let h = Harness::start_with_gate("environments:\n  production:\n    respect_planned_window: true\n").await;
    let mut env = job_env(&h, "production");
    // A whole second: ServiceNow keeps planned times to the second.
    let opens = Timestamp::from_second(Timestamp::now().as_second() + 4).unwrap();
    env.push(("GATEHOUSE_PLANNED_START".into(), opens.to_string()));
    env.push(("GATEHOUSE_PLANNED_END".into(), (opens + SignedDuration::from_hours(2)).to_string()));
    let (code, out) = ci(&["request"], &env).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("CHG"), "{out}");
    let answer = gate(&h, "production").await;
    approve_in_servicenow(&h, answer["sys_id"].as_str().unwrap());
    // Approved, but the planned window has not started: verify without --wait says wait (2).
    let (code, out) = ci(&["verify"], &env).await;
    assert_eq!(code, 2, "{out}");
    let (code, out) = ci(&["verify", "--wait", "--timeout", "30", "--interval", "1"], &env).await;
    assert_eq!(code, 0, "{out}");
    assert!(Timestamp::now() >= opens);
    assert!(out.contains("proceed"), "{out}");
    let (code, out) = ci(&["report", "--status", "success"], &env).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(sn(&h).record("change_request", answer["sys_id"].as_str().unwrap()).unwrap()["state"], "3");
    let (code, _) = ci(&["verify"], &env).await;
    assert_eq!(code, 1, "a closed change blocks");
    let mut wrong = env.clone();
    wrong.retain(|(k, _)| k != "GATEHOUSE_ID_TOKEN");
    wrong.push(("GATEHOUSE_ID_TOKEN".into(), "not.the.token".into()));
    assert_eq!(ci(&["verify"], &wrong).await.0, 3, "a wrong token is a misconfiguration");
}

#[tokio::test]
async fn where_deployments_need_approval_gatehouse_approves_the_waiting_one_of_this_commit() {
    let h = Harness::start_with_gate(OPEN).await;
    gitlab(&h).add_deployment_of(PROJECT, 5101, "production", "blocked", SHA);
    gitlab(&h).add_deployment_of(PROJECT, 5102, "production", "blocked", &"b".repeat(40));
    let mut b = body("production", 900001);
    b.as_object_mut().unwrap().remove("job_id");
    let (_, answer) = request(&h, &b).await;
    approve_in_servicenow(&h, answer["sys_id"].as_str().unwrap());
    assert_eq!(callback(&h, &answer, false).await, 202);
    let approvals = gitlab(&h).deployment_approvals(PROJECT, 5101);
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert!(gitlab(&h).deployment_approvals(PROJECT, 5102).is_empty(), "another commit's deployment is not approved");
}

/// A gate whose sweeper looks again every 200 ms, with `policy`.

#[tokio::test]
async fn an_approval_during_a_blackout_plays_nothing_until_the_blackout_ends() {
    // Blackouts have minute precision: this one ends at the next full minute (at least 5 s away).
    let now = Timestamp::now().to_zoned(TimeZone::UTC);
    let mut end = now.checked_add(1.minute()).unwrap().with().second(0).subsec_nanosecond(0).build().unwrap();
    if end.timestamp().duration_since(now.timestamp()) < SignedDuration::from_secs(5) {
        end = end.checked_add(1.minute()).unwrap();
    }
    let civil = |z: &jiff::Zoned| z.strftime("%Y-%m-%dT%H:%M").to_string();
    let start = now.checked_sub(1.hour()).unwrap();
    let policy = format!(
        "environments:\n  production:\n    timezone: UTC\n    blackouts:\n      - {{from: \"{}\", to: \"{}\", reason: \"Quarter close\"}}\n",
        civil(&start),
        civil(&end)
    );
    let h = fast_gate(&policy).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    approve_in_servicenow(&h, answer["sys_id"].as_str().unwrap());
    assert_eq!(callback(&h, &answer, true).await, 202);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 0, "approved, but the blackout holds");
    assert_eq!(gate(&h, "production").await["decision"], "wait");
    // The sweeper plays it once the blackout is over, once.
    eventually("the verify job being played", 80, || gitlab(&h).job(PROJECT, 77001).unwrap().play_count > 0).await;
    assert!(Timestamp::now() >= end.timestamp(), "not before the blackout ended");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 1, "played once");
}

#[tokio::test]
async fn a_deployment_that_starts_waiting_after_approval_is_approved_then_but_never_in_a_freeze() {
    let now = Timestamp::now();
    let h = fast_gate(&closed_policy(now)).await;
    // production has no rules: approved first, the deployment starts waiting afterwards.
    let (_, answer) = request(&h, &body("production", 900001)).await;
    approve_in_servicenow(&h, answer["sys_id"].as_str().unwrap());
    assert_eq!(callback(&h, &answer, true).await, 202);
    gitlab(&h).add_deployment_of(PROJECT, 5201, "production", "blocked", SHA);
    eventually("the waiting deployment being approved", 10, || {
        !gitlab(&h).deployment_approvals(PROJECT, 5201).is_empty()
    })
    .await;
    assert_eq!(gitlab(&h).deployment_approvals(PROJECT, 5201)[0].status, "approved");
    // freeze-env is frozen for the next two hours: approved in ServiceNow, but nothing is approved in GitLab.
    gitlab(&h).add_deployment_of(PROJECT, 5202, "freeze-env", "blocked", SHA);
    let (_, frozen) = request(&h, &body("freeze-env", 900001)).await;
    approve_in_servicenow(&h, frozen["sys_id"].as_str().unwrap());
    assert_eq!(callback(&h, &frozen, true).await, 202);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(gitlab(&h).deployment_approvals(PROJECT, 5202).is_empty(), "never during a freeze");
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 1, "the verify job played for production only");
}

#[tokio::test]
async fn a_rejection_rejects_the_waiting_deployment_with_the_reason() {
    let h = fast_gate(OPEN).await;
    gitlab(&h).add_deployment_of(PROJECT, 5301, "production", "blocked", SHA);
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap();
    assert!(sn(&h).set_field("change_request", sys_id, "approval", "rejected"));
    let payload = json!({"sys_id": sys_id, "number": answer["number"], "approval": "rejected"}).to_string();
    let resp = h
        .http
        .post(h.url("/v1/webhooks/servicenow"))
        .bearer_auth(&h.token)
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let approvals = gitlab(&h).deployment_approvals(PROJECT, 5301);
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert_eq!(approvals[0].status, "rejected");
    assert!(approvals[0].comment.as_deref().unwrap_or_default().contains("rejected"), "{approvals:?}");
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 0);
}

#[tokio::test]
async fn an_emergency_change_skips_the_window_but_still_waits_for_approval() {
    let h = Harness::start_with_gate(&closed_policy(Timestamp::now())).await;
    let mut emergency = body("window-env", 900001);
    emergency["emergency_reason"] = json!("Payment outage: hotfix 1.4.3");
    let (status, answer) = request(&h, &emergency).await;
    assert_eq!(status, 201, "{answer}");
    let sys_id = answer["sys_id"].as_str().unwrap().to_string();
    let change = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!((change["type"].as_str(), change["state"].as_str()), (Some("emergency"), Some("-3")), "{change}");
    assert_eq!(change["justification"], "Payment outage: hotfix 1.4.3");
    // The window is shut until tomorrow, but that is skipped; approval is not.
    let waiting = gate(&h, "window-env").await;
    assert_eq!(waiting["decision"], "wait", "{waiting}");
    assert!(waiting["reason"].as_str().unwrap().contains("waiting for approval"), "{waiting}");
    sn(&h).approve_change(&sys_id).unwrap();
    let now = gate(&h, "window-env").await;
    assert_eq!(now["decision"], "proceed", "{now}");
    assert!(now["window"]["rule"].as_str().unwrap().starts_with("emergency change"), "{now}");
    let notes = gitlab(&h).notes(PROJECT, 7);
    assert!(notes.iter().any(|n| n.body.contains("emergency")), "the MR note says so");
    // The commit's next request reuses the open (emergency) change.
    let (_, normal) = request(&h, &body("window-env", 900001)).await;
    assert_eq!(normal["number"], answer["number"], "the open change of this commit is reused");
}
