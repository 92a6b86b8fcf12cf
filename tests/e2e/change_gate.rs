//! The CI change gate end to end: `gatehouse serve` with the ServiceNow and GitLab simulators.

mod support;

use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp, ToSpan, tz::TimeZone};
use serde_json::{Value, json};
use sha2::Sha256;
use support::{Harness, WEBHOOK_SECRET};

const PROJECT: u64 = 4242;
/// Every environment open: no rules of its own, and a `default:` for the rest.
const OPEN: &str = "environments: {}\ndefault: {}\n";
const SHA: &str = "af5b13261899fb2c0db30abdd0af8b07cb44fdc5";

/// What `gatehouse ci request` sends: the job's ID token carries project, pipeline, job, commit
/// and ref, so the body need not.
fn body(environment: &str, pipeline: u64) -> Value {
    json!({
        "environment": environment,
        "pipeline_url": format!("https://gitlab.example.com/acme/shop/-/pipelines/{pipeline}"),
        "title": "Deploy shop 1.4.2", "description": "Release 1.4.2"
    })
}

static NEXT_JOB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(880_000);

/// The ID token GitLab gives a `gatehouse:request` job of `pipeline` (at SHA, on protected
/// `main`) deploying to `environment`: a new job in the GitLab simulator, and its token.
fn ci_token(h: &Harness, environment: Option<&str>, pipeline: u64) -> String {
    let gl = gitlab(h);
    // The demo seeds 900001 (at SHA) and 900002 (another commit); the tests' reruns are new.
    if pipeline != 900001 && pipeline != 900002 {
        gl.add_pipeline(PROJECT, pipeline, SHA, "main", "running");
        gl.set_pipeline_ref_protected(PROJECT, pipeline, true);
    }
    let job = NEXT_JOB.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    gl.add_job(PROJECT, job, pipeline, "gatehouse:request", "running");
    gl.set_job_environment(PROJECT, job, environment);
    gl.id_token(job, "gatehouse")
}

async fn request(h: &Harness, body: &Value) -> (u16, Value) {
    let environment = body["environment"].as_str().unwrap();
    let pipeline = body["pipeline_url"].as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let token = ci_token(h, Some(environment), pipeline);
    let resp = h.http.post(h.url("/v1/changes")).bearer_auth(token).json(body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn gate(h: &Harness, environment: &str) -> Value {
    let url = h.url(&format!("/v1/changes/{PROJECT}/{SHA}?environment={environment}"));
    let resp = h.http.get(url).bearer_auth(ci_token(h, Some(environment), 900001)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// POST …/deployments as the deploy job of pipeline 900001 would.
async fn report(h: &Harness, environment: &str, report: &Value) -> reqwest::Response {
    let url = h.url(&format!("/v1/changes/{PROJECT}/{SHA}/deployments"));
    h.http.post(url).bearer_auth(ci_token(h, Some(environment), 900001)).json(report).send().await.unwrap()
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
    let h = Harness::start_with_gate(OPEN).await;
    let (status, first) = request(&h, &body("production", 900001)).await;
    assert_eq!(status, 201, "{first}");
    assert!(first["number"].as_str().unwrap().starts_with("CHG"));
    assert_eq!(first["approval"], "requested");
    // ServiceNow's normal change model: Gatehouse moves a new change to Assess only.
    assert_eq!(first["state"]["display"], "Assess");
    assert_eq!(first["decision"], "wait");
    assert_eq!(first["reason"], "waiting for approval (state Assess)");
    let changes = sn(&h).records("change_request");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["correlation_id"], format!("gitlab:{PROJECT}:{SHA}:production"));
    assert!(changes[0]["description"].as_str().unwrap().contains("pipelines/900001"));
    let notes = gitlab(&h).notes(PROJECT, 7);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].body.contains(first["number"].as_str().unwrap()) && notes[0].body.contains("<!-- gatehouse:change:")
    );

    // A rerun of the commit: another pipeline, the same change.
    let (status, again) = request(&h, &body("production", 900005)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["number"], first["number"]);
    assert_eq!(sn(&h).records("change_request").len(), 1, "reused, not created again");
    let notes = gitlab(&h).notes(PROJECT, 7);
    assert_eq!(notes.len(), 1, "the note is edited, not posted again");
    assert!(notes[0].body.contains("900005"));

    // Another environment is another change.
    let (status, staging) = request(&h, &body("staging", 900005)).await;
    assert_eq!(status, 201);
    assert_ne!(staging["number"], first["number"]);
}

#[tokio::test]
async fn approval_through_the_webhook_plays_the_recorded_job_once() {
    let h = Harness::start_with_gate(OPEN).await;
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
    let h = Harness::start_with_gate(OPEN).await;
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
    let h = Harness::start_with_gate(OPEN).await;
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
        "default: {{}}\nenvironments:\n  blackout-env:\n    timezone: UTC\n    blackouts:\n      - {{from: \"{}\", to: \"{}\", reason: \"Quarter close\"}}\n  freeze-env:\n    freezes:\n      - {{freeze_start: \"{}\", freeze_end: \"{}\", cron_timezone: UTC}}\n  window-env:\n    timezone: UTC\n    windows:\n      - {{days: [{}], start: \"00:00\", end: \"24:00\"}}\n",
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
    let h = Harness::start_with_gate(OPEN).await;
    for (env, status, code) in [("production", "success", "successful"), ("staging", "failed", "unsuccessful")] {
        let (_, answer) = request(&h, &body(env, 900001)).await;
        let sys_id = answer["sys_id"].as_str().unwrap().to_string();
        approve_in_servicenow(&h, &sys_id);
        let report = json!({"environment": env, "status": status, "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001", "job_url": "https://gitlab.example.com/acme/shop/-/jobs/77002"});
        let resp = self::report(&h, env, &report).await;
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
        let (status, next) = request(&h, &body(env, 900006)).await;
        assert_eq!(status, 201);
        assert_ne!(next["number"], answer["number"]);
    }
}

#[tokio::test]
async fn missing_or_wrong_tokens_get_401_and_bad_bodies_422() {
    let h = Harness::start_with_gate(OPEN).await;
    let url = h.url("/v1/changes");
    assert_eq!(h.http.post(&url).json(&body("production", 1)).send().await.unwrap().status(), 401);
    assert_eq!(h.http.post(&url).bearer_auth("wrong").json(&body("production", 1)).send().await.unwrap().status(), 401);
    let get = h.url(&format!("/v1/changes/{PROJECT}/{SHA}?environment=production"));
    assert_eq!(h.http.get(&get).send().await.unwrap().status(), 401);
    let mut bad = body("production", 900001);
    bad["title"] = json!("");
    let (status, problem) = request(&h, &bad).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "title");
    // A job without an environment may ask about any; there is no change for this one.
    let nowhere = h.url(&format!("/v1/changes/{PROJECT}/{SHA}?environment=nowhere"));
    let resp = h.http.get(nowhere).bearer_auth(ci_token(&h, None, 900001)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn without_a_named_job_the_webhook_plays_the_pipelines_manual_verify_job() {
    let h = Harness::start_with_gate(OPEN).await;
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
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap();
    let report =
        json!({"environment": "production", "status": "success", "pipeline_url": "https://gitlab.example.com/p/1"});
    let resp = self::report(&h, "production", &report).await;
    assert_eq!(resp.status(), 409);
    let change = sn(&h).record("change_request", sys_id).unwrap();
    assert_eq!(change["state"], "-4", "still in Assess");
    let notes = sn(&h).work_notes("change_request", sys_id);
    assert!(notes.iter().any(|n| n.text.contains("WARNING: the change was not approved")), "{notes:?}");
}

#[tokio::test]
async fn a_jobs_id_token_speaks_for_its_own_pipeline_and_commit_only() {
    let h = Harness::start_with_gate(OPEN).await;
    let gl = gitlab(&h);
    let token = gl.id_token(77001, "gatehouse");
    let post = |body: Value, token: String| {
        let req = h.http.post(h.url("/v1/changes")).bearer_auth(token).json(&body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Job 77002 of pipeline 900002 named in the body, under job 77001's token.
    let mut other = body("production", 900002);
    other["pipeline_id"] = json!(900002);
    other["job_id"] = json!(77002);
    let (status, problem) = post(other, token.clone()).await;
    assert_eq!(status, 403, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("disagrees with the job's ID token"), "{problem}");
    let mut other_commit = body("production", 900001);
    other_commit["sha"] = json!(gitlab_sim::demo::SECOND_SHA);
    assert_eq!(post(other_commit, token.clone()).await.0, 403);
    assert!(sn(&h).records("change_request").is_empty(), "nothing created");
    // Its own change, then another commit's change read with the same token.
    let (status, answer) = post(body("production", 900001), token.clone()).await;
    assert_eq!(status, 201, "{answer}");
    let url = h.url(&format!("/v1/changes/{PROJECT}/{}?environment=production", gitlab_sim::demo::SECOND_SHA));
    assert_eq!(h.http.get(url).bearer_auth(&token).send().await.unwrap().status(), 403);
    // Another environment than the job's.
    let staging = h.url(&format!("/v1/changes/{PROJECT}/{SHA}?environment=staging"));
    assert_eq!(h.http.get(staging).bearer_auth(&token).send().await.unwrap().status(), 403);

    // Forged, expired and wrong-audience tokens: 401.
    let other_gitlab = gitlab_sim::GitLabSim::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
    other_gitlab.seed_demo();
    let forged = other_gitlab.id_token(77001, "gatehouse");
    let expired = gl.try_id_token(77001, "gatehouse", -600).unwrap();
    let wrong_audience = gl.id_token(77001, "vault");
    for bad in [forged, expired, wrong_audience, format!("{token}x")] {
        assert_eq!(post(body("production", 900001), bad).await.0, 401);
    }
}

#[tokio::test]
async fn unprotected_refs_and_unlisted_projects_may_not_deploy_to_a_protected_environment() {
    let h = Harness::start_with_gate("environments:\n  production: {}\n  qa:\n    projects: [acme/other]\n").await;
    // Not in the policy, and it has no default: blocked.
    let (status, blocked) = request(&h, &body("staging", 900001)).await;
    assert_eq!(status, 201, "{blocked}");
    assert_eq!(blocked["decision"], "blocked", "{blocked}");
    assert!(blocked["reason"].as_str().unwrap().contains("not in the change policy"), "{blocked}");
    let gl = gitlab(&h);
    gl.add_pipeline(PROJECT, 900009, SHA, "feature/x", "running");
    gl.set_pipeline_ref_protected(PROJECT, 900009, false);
    gl.add_job(PROJECT, 779009, 900009, "gatehouse:request", "running");
    gl.set_job_environment(PROJECT, 779009, Some("production"));
    let token = gl.id_token(779009, "gatehouse");
    let resp =
        h.http.post(h.url("/v1/changes")).bearer_auth(token).json(&body("production", 900009)).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("protected refs only"));
    let (status, problem) = request(&h, &body("qa", 900001)).await;
    assert_eq!(status, 403, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("may not deploy to qa"), "{problem}");
}

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
async fn fast_gate(policy: &str) -> Harness {
    Harness::start_with_gate_and(policy, |c| c.sweep_interval = std::time::Duration::from_millis(200)).await
}

async fn eventually(what: &str, timeout_secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout_secs);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen within {timeout_secs} s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

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

/// `gatehouse serve --demo` as a newcomer runs it: a job's ID token from the GitLab simulator's
/// control API opens a change, and reads it back.
#[tokio::test]
async fn serve_demo_walks_the_gate_with_an_id_token_from_the_simulator() {
    use tokio::io::AsyncBufReadExt;
    let dir = support::temp_dir("demo-gate");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env_remove("GATEHOUSE_CHANGE_POLICY")
        .env_remove("GATEHOUSE_OIDC_ISSUER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut gitlab_url) = (None, None);
    while base.is_none() || gitlab_url.is_none() {
        let line = lines.next_line().await.unwrap().expect("serve --demo printed its URLs");
        if let Some(rest) = line.strip_prefix("Gatehouse listening on ") {
            base = Some(rest.split_whitespace().next().unwrap().to_string());
        }
        if let Some(rest) = line.strip_prefix("GitLab simulator: ") {
            gitlab_url = Some(rest.split_whitespace().next().unwrap().to_string());
        }
    }
    let (base, gitlab_url) = (base.unwrap(), gitlab_url.unwrap());
    let http = reqwest::Client::new();
    let token: Value = http
        .get(format!("{gitlab_url}/_sim/id_token?job_id=77001&aud=gatehouse"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let created = http
        .post(format!("{base}/v1/changes"))
        .bearer_auth(&token)
        .json(&json!({"environment": "production", "title": "Deploy shop 1.4.2",
            "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let answer: Value = created.json().await.unwrap();
    assert_eq!(answer["decision"], "wait", "{answer}");
    let read = http
        .get(format!("{base}/v1/changes/{PROJECT}/{SHA}?environment=production"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.json::<Value>().await.unwrap()["number"], answer["number"]);
    let _ = child.kill().await;
}

#[tokio::test]
async fn a_change_approved_by_the_assess_group_and_the_cab_closes_through_implement_and_review() {
    let h = Harness::start_with_gate("environments:\n  production:\n    assignment_group: Change Management\n    cmdb_ci: Shop (business service)\n    risk: \"4\"\n    impact: \"3\"\n    backout_plan: Roll back to the previous image\ndefault: {}\n").await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap().to_string();
    let change = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!(change["state"], "-4", "stops in Assess: {change}");
    assert!(!change["assignment_group"].as_str().unwrap_or_default().is_empty(), "{change}");
    assert!(!change["cmdb_ci"].as_str().unwrap_or_default().is_empty(), "{change}");
    assert_eq!(change["backout_plan"], "Roll back to the previous image");
    // The Assess group, then the CAB: Scheduled.
    sn(&h).approve_change(&sys_id).unwrap();
    assert_eq!(gate(&h, "production").await["decision"], "wait", "Authorize still waits for the CAB");
    sn(&h).approve_change(&sys_id).unwrap();
    assert_eq!(gate(&h, "production").await["decision"], "proceed");
    let report = json!({"environment": "production", "status": "success",
        "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001"});
    let resp = self::report(&h, "production", &report).await;
    assert_eq!(resp.status(), 200);
    let closed = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!((closed["state"].as_str(), closed["close_code"].as_str()), (Some("3"), Some("successful")), "{closed}");
}

#[tokio::test]
async fn a_rejected_change_is_cancelled_and_the_next_pipeline_gets_a_new_one() {
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap().to_string();
    sn(&h).reject_change(&sys_id).unwrap();
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
    let change = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!(change["state"], "4", "cancelled: {change}");
    let notes = sn(&h).work_notes("change_request", &sys_id);
    assert!(notes.iter().any(|n| n.text.contains("Gatehouse cancelled this change")), "{notes:?}");
    let (status, next) = request(&h, &body("production", 900007)).await;
    assert_eq!(status, 201, "{next}");
    assert_ne!(next["number"], answer["number"]);
}

/// A GitLab webhook delivery, as GitLab sends it (`X-Gitlab-Token`).
async fn gitlab_event(h: &Harness, secret: &str, event: Value) -> u16 {
    let resp = h.http.post(h.url("/v1/webhooks/gitlab")).header("x-gitlab-token", secret).json(&event).send().await;
    resp.unwrap().status().as_u16()
}

const GITLAB_SECRET: &str = gatehouse::serve::DEMO_GITLAB_WEBHOOK_SECRET;

#[tokio::test]
async fn a_deployment_event_closes_the_change_when_no_report_came_and_a_later_report_changes_nothing() {
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap().to_string();
    approve_in_servicenow(&h, &sys_id);
    gitlab(&h).add_deployment_of(PROJECT, 5401, "production", "success", SHA);
    let event = json!({"object_kind": "deployment", "status": "success", "deployment_id": 5401,
        "environment": "production", "project": {"id": PROJECT}});
    // Forged: a wrong secret, or a deployment GitLab does not have, changes nothing.
    assert_eq!(gitlab_event(&h, "not-the-secret", event.clone()).await, 401);
    let mut unknown = event.clone();
    unknown["deployment_id"] = json!(999_999);
    assert_eq!(gitlab_event(&h, GITLAB_SECRET, unknown).await, 404);
    assert_eq!(sn(&h).record("change_request", &sys_id).unwrap()["state"], "-1", "untouched");
    // The real event: the change is closed with the result GitLab has.
    assert_eq!(gitlab_event(&h, GITLAB_SECRET, event).await, 202);
    let closed = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!((closed["state"].as_str(), closed["close_code"].as_str()), (Some("3"), Some("successful")), "{closed}");
    // `gatehouse ci report` arrives later: recorded, nothing else changes.
    let report_body = json!({"environment": "production", "status": "failed",
        "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001"});
    let resp = self::report(&h, "production", &report_body).await;
    assert_eq!(resp.status(), 200);
    let after = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!((after["state"].as_str(), after["close_code"].as_str()), (Some("3"), Some("successful")));
}

#[tokio::test]
async fn a_canceled_pipeline_cancels_its_change() {
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap().to_string();
    let event = json!({"object_kind": "pipeline", "project": {"id": PROJECT},
        "object_attributes": {"id": 900001, "status": "canceled"}});
    // GitLab still says running: the event alone changes nothing.
    assert_eq!(gitlab_event(&h, GITLAB_SECRET, event.clone()).await, 202);
    assert_eq!(sn(&h).record("change_request", &sys_id).unwrap()["state"], "-4");
    assert!(gitlab(&h).set_pipeline_status(PROJECT, 900001, "canceled"));
    assert_eq!(gitlab_event(&h, GITLAB_SECRET, event).await, 202);
    let change = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!(change["state"], "4", "cancelled: {change}");
    let notes = sn(&h).work_notes("change_request", &sys_id);
    assert!(notes.iter().any(|n| n.text.contains("ended canceled without deploying")), "{notes:?}");
}
