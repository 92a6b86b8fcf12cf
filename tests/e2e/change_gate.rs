//! The CI change gate end to end: `gatehouse serve` with the ServiceNow and GitLab simulators.

mod support;

use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp, ToSpan, tz::TimeZone};
use serde_json::{Value, json};
use sha2::Sha256;
use support::{Harness, WEBHOOK_SECRET};

const PROJECT: u64 = 4242;
const SHA: &str = "af5b13261899fb2c0db30abdd0af8b07cb44fdc5";

fn body(environment: &str, pipeline: u64) -> Value {
    json!({
        "project_id": PROJECT, "project_path": "acme/shop", "sha": SHA, "ref": "main",
        "environment": environment, "pipeline_id": pipeline,
        "pipeline_url": format!("https://gitlab.example.com/acme/shop/-/pipelines/{pipeline}"),
        "job_id": 77001, "title": "Deploy shop 1.4.2", "description": "Release 1.4.2"
    })
}

async fn request(h: &Harness, body: &Value) -> (u16, Value) {
    let resp = h.post("/v1/changes").json(body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn gate(h: &Harness, environment: &str) -> Value {
    let (status, answer) = h.get_json(&format!("/v1/changes/{PROJECT}/{SHA}?environment={environment}")).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

fn sn(h: &Harness) -> &servicenow_sim::SnSim {
    h.sn.as_ref().unwrap()
}

fn gitlab(h: &Harness) -> &gitlab_sim::GitLabSim {
    h.gitlab.as_ref().unwrap()
}

/// The change manager approves and schedules the change in ServiceNow.
fn approve_in_servicenow(h: &Harness, sys_id: &str) {
    assert!(sn(h).set_field("change_request", sys_id, "approval", "approved"));
    assert!(sn(h).set_field("change_request", sys_id, "state", "-1"));
}

async fn callback(h: &Harness, answer: &Value, signed: bool) -> u16 {
    let payload =
        json!({"sys_id": answer["sys_id"], "number": answer["number"], "approval": "approved", "state": "-1"})
            .to_string();
    let mut req = h.http.post(h.url("/v1/webhooks/servicenow")).header("content-type", "application/json");
    if signed {
        let t = Timestamp::now().as_second();
        let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
        mac.update(format!("{t}.{payload}").as_bytes());
        req = req.header("x-gatehouse-signature", format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes())));
    } else {
        req = req.bearer_auth(&h.token);
    }
    req.body(payload).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_pipeline_gets_one_change_and_one_mr_note_and_a_rerun_reuses_both() {
    let h = Harness::start_with_gate("environments: {}\n").await;
    let (status, first) = request(&h, &body("production", 900001)).await;
    assert_eq!(status, 201, "{first}");
    assert!(first["number"].as_str().unwrap().starts_with("CHG"));
    assert_eq!(first["approval"], "requested");
    assert_eq!(first["state"]["display"], "Authorize");
    assert_eq!(first["decision"], "wait");
    assert_eq!(first["reason"], "waiting for approval (state Authorize)");
    let changes = sn(&h).records("change_request");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["correlation_id"], format!("gitlab:{PROJECT}:{SHA}:production"));
    assert!(changes[0]["description"].as_str().unwrap().contains("pipelines/900001"));
    let notes = gitlab(&h).notes(PROJECT, 7);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].body.contains(first["number"].as_str().unwrap()) && notes[0].body.contains("<!-- gatehouse:change:")
    );

    let (status, again) = request(&h, &body("production", 900002)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["number"], first["number"]);
    assert_eq!(sn(&h).records("change_request").len(), 1, "reused, not created again");
    let notes = gitlab(&h).notes(PROJECT, 7);
    assert_eq!(notes.len(), 1, "the note is edited, not posted again");
    assert!(notes[0].body.contains("900002"));

    // Another environment is another change.
    let (status, staging) = request(&h, &body("staging", 900002)).await;
    assert_eq!(status, 201);
    assert_ne!(staging["number"], first["number"]);
}

#[tokio::test]
async fn approval_through_the_webhook_plays_the_recorded_job_once() {
    let h = Harness::start_with_gate("environments: {}\n").await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    approve_in_servicenow(&h, answer["sys_id"].as_str().unwrap());
    assert_eq!(callback(&h, &answer, false).await, 202);
    let job = gitlab(&h).job(PROJECT, 77001).unwrap();
    assert_eq!((job.status.as_str(), job.play_count), ("pending", 1));
    // A replayed or signed second delivery does nothing twice.
    assert_eq!(callback(&h, &answer, true).await, 202);
    assert_eq!(callback(&h, &answer, false).await, 202);
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 1);
    let now = gate(&h, "production").await;
    assert_eq!(now["decision"], "proceed", "{now}");
    assert!(gitlab(&h).notes(PROJECT, 7)[0].body.contains("proceed"));
}

#[tokio::test]
async fn the_webhook_needs_a_token_or_a_valid_signature_and_knows_its_changes() {
    let h = Harness::start_with_gate("environments: {}\n").await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let payload = json!({"sys_id": answer["sys_id"], "approval": "approved"}).to_string();
    let url = h.url("/v1/webhooks/servicenow");
    let unsigned =
        h.http.post(&url).header("content-type", "application/json").body(payload.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let stale = h
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("x-gatehouse-signature", "t=1000,v1=00ff")
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    let unknown = json!({"sys_id": "0123456789abcdef0123456789abcdef", "approval": "approved"});
    let resp = h.http.post(&url).bearer_auth(&h.token).json(&unknown).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 0);
}

#[tokio::test]
async fn a_rejection_blocks_at_once_with_the_reason() {
    let h = Harness::start_with_gate("environments: {}\n").await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    sn(&h).set_field("change_request", answer["sys_id"].as_str().unwrap(), "approval", "rejected");
    let now = gate(&h, "production").await;
    assert_eq!(now["decision"], "blocked");
    assert_eq!(now["reason"], "the change was rejected");
    assert_eq!(callback(&h, &answer, false).await, 202);
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 0, "a rejection plays nothing");
    assert!(gitlab(&h).notes(PROJECT, 7)[0].body.contains("blocked"));
}

/// A policy whose rules keep each named environment closed right now.
fn closed_policy(now: Timestamp) -> String {
    let utc = now.to_zoned(TimeZone::UTC);
    let civil = |z: &jiff::Zoned| z.strftime("%Y-%m-%dT%H:%M").to_string();
    let cron = |z: &jiff::Zoned| format!("{} {} {} {} *", z.minute(), z.hour(), z.day(), z.month());
    let before = utc.checked_sub(2.hours()).unwrap();
    let after = utc.checked_add(2.hours()).unwrap();
    let tomorrow = utc.checked_add(1.day()).unwrap();
    let day = |z: &jiff::Zoned| z.strftime("%a").to_string().to_lowercase();
    format!(
        "environments:\n  blackout-env:\n    timezone: UTC\n    blackouts:\n      - {{from: \"{}\", to: \"{}\", reason: \"Quarter close\"}}\n  freeze-env:\n    freezes:\n      - {{freeze_start: \"{}\", freeze_end: \"{}\", cron_timezone: UTC}}\n  window-env:\n    timezone: UTC\n    windows:\n      - {{days: [{}], start: \"00:00\", end: \"24:00\"}}\n",
        civil(&before),
        civil(&after),
        cron(&before),
        cron(&after),
        day(&tomorrow),
    )
}

#[tokio::test]
async fn a_blackout_a_freeze_and_a_closed_window_each_wait_with_the_next_opening() {
    let now = Timestamp::now();
    let h = Harness::start_with_gate(&closed_policy(now)).await;
    let after = (now + SignedDuration::from_hours(2)).to_zoned(TimeZone::UTC);
    let next_midnight = now.to_zoned(TimeZone::UTC).checked_add(1.day()).unwrap().start_of_day().unwrap();
    for (env, rule_has, opens) in [
        ("blackout-env", "Quarter close", after.strftime("%Y-%m-%dT%H:%M:00+00:00").to_string()),
        ("freeze-env", "freeze", after.strftime("%Y-%m-%dT%H:%M:00+00:00").to_string()),
        ("window-env", "weekly window", next_midnight.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()),
    ] {
        let (_, answer) = request(&h, &body(env, 900001)).await;
        approve_in_servicenow(&h, answer["sys_id"].as_str().unwrap());
        let now = gate(&h, env).await;
        assert_eq!(now["decision"], "wait", "{env}: {now}");
        assert_eq!(now["window"]["open"], false);
        assert!(now["window"]["rule"].as_str().unwrap().contains(rule_has), "{env}: {now}");
        assert_eq!(now["window"]["next_open_at"], opens, "{env}: {now}");
        assert!(now["reason"].as_str().unwrap().starts_with("outside the change window"), "{now}");
    }
}

#[tokio::test]
async fn report_closes_the_change_with_the_right_close_code() {
    let h = Harness::start_with_gate("environments: {}\n").await;
    for (env, status, code) in [("production", "success", "successful"), ("staging", "failed", "unsuccessful")] {
        let (_, answer) = request(&h, &body(env, 900001)).await;
        let sys_id = answer["sys_id"].as_str().unwrap().to_string();
        approve_in_servicenow(&h, &sys_id);
        let report = json!({"environment": env, "status": status, "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001", "job_url": "https://gitlab.example.com/acme/shop/-/jobs/77002"});
        let resp = h.post(&format!("/v1/changes/{PROJECT}/{SHA}/deployments")).json(&report).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let closed: Value = resp.json().await.unwrap();
        assert_eq!(closed["state"]["value"], "3", "{closed}");
        let change = sn(&h).record("change_request", &sys_id).unwrap();
        assert_eq!(change["close_code"], code);
        assert_eq!(change["state"], "3");
        let notes = sn(&h).work_notes("change_request", &sys_id);
        assert!(
            notes.iter().any(|n| n.text.contains("pipelines/900001") && n.text.contains("jobs/77002")),
            "{notes:?}"
        );
        // A closed change blocks; the next pipeline gets a new change.
        assert_eq!(gate(&h, env).await["decision"], "blocked");
        let (status, next) = request(&h, &body(env, 900003)).await;
        assert_eq!(status, 201);
        assert_ne!(next["number"], answer["number"]);
    }
}

#[tokio::test]
async fn missing_or_wrong_tokens_get_401_and_bad_bodies_422() {
    let h = Harness::start_with_gate("environments: {}\n").await;
    let url = h.url("/v1/changes");
    assert_eq!(h.http.post(&url).json(&body("production", 1)).send().await.unwrap().status(), 401);
    assert_eq!(h.http.post(&url).bearer_auth("wrong").json(&body("production", 1)).send().await.unwrap().status(), 401);
    let get = h.url(&format!("/v1/changes/{PROJECT}/{SHA}?environment=production"));
    assert_eq!(h.http.get(&get).send().await.unwrap().status(), 401);
    let mut bad = body("production", 1);
    bad["sha"] = json!("abc");
    let (status, problem) = request(&h, &bad).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "sha");
    let (status, _) = h.get_json(&format!("/v1/changes/{PROJECT}/{SHA}?environment=nowhere")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn without_a_named_job_the_webhook_plays_the_pipelines_manual_verify_job() {
    let h = Harness::start_with_gate("environments: {}\n").await;
    // A manual job of another name in the same pipeline, which must not be played.
    gitlab(&h).add_job(PROJECT, 77010, 900001, "deploy", "manual");
    let mut b = body("production", 900001);
    b.as_object_mut().unwrap().remove("job_id");
    let (status, answer) = request(&h, &b).await;
    assert_eq!(status, 201);
    approve_in_servicenow(&h, answer["sys_id"].as_str().unwrap());
    assert_eq!(callback(&h, &answer, true).await, 202);
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 1, "the verify job");
    assert_eq!(gitlab(&h).job(PROJECT, 77010).unwrap().play_count, 0, "not the deploy job");
}

#[tokio::test]
async fn a_deploy_reported_on_an_unapproved_change_is_recorded_and_the_change_stays_open() {
    let h = Harness::start_with_gate("environments: {}\n").await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap();
    let report =
        json!({"environment": "production", "status": "success", "pipeline_url": "https://gitlab.example.com/p/1"});
    let resp = h.post(&format!("/v1/changes/{PROJECT}/{SHA}/deployments")).json(&report).send().await.unwrap();
    assert_eq!(resp.status(), 409);
    let change = sn(&h).record("change_request", sys_id).unwrap();
    assert_eq!(change["state"], "-3", "still in Authorize");
    let notes = sn(&h).work_notes("change_request", sys_id);
    assert!(notes.iter().any(|n| n.text.contains("WARNING: the change was not approved")), "{notes:?}");
}

/// The job variables of DESIGN.md's example pipeline, for `gatehouse ci` against this server.
fn job_env(h: &Harness, environment: &str) -> Vec<(String, String)> {
    [
        ("GATEHOUSE_URL", h.base.as_str()),
        ("GATEHOUSE_TOKEN", h.token.as_str()),
        ("CI_PROJECT_ID", "4242"),
        ("CI_PROJECT_PATH", "acme/shop"),
        ("CI_COMMIT_SHA", SHA),
        ("CI_COMMIT_REF_NAME", "main"),
        ("CI_COMMIT_TITLE", "Deploy shop 1.4.2"),
        ("CI_ENVIRONMENT_NAME", environment),
        ("CI_PIPELINE_ID", "900001"),
        ("CI_PIPELINE_URL", "https://gitlab.example.com/acme/shop/-/pipelines/900001"),
        ("CI_JOB_ID", "77002"),
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
    let (_, answer) = h.get_json(&format!("/v1/changes/{PROJECT}/{SHA}?environment=production")).await;
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
    wrong.retain(|(k, _)| k != "GATEHOUSE_TOKEN");
    wrong.push(("GATEHOUSE_TOKEN".into(), "not-the-token".into()));
    assert_eq!(ci(&["verify"], &wrong).await.0, 3, "a wrong token is a misconfiguration");
}

#[tokio::test]
async fn where_deployments_need_approval_gatehouse_approves_the_waiting_one_of_this_commit() {
    let h = Harness::start_with_gate("environments: {}\n").await;
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
