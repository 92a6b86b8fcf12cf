//! What the change-gate tests share: DESIGN.md's demo project and commit, a job's ID token from
//! the GitLab simulator, the gate's calls as `gatehouse ci` makes them, and the simulators' views.

use hmac::{Hmac, Mac};
use jiff::{Timestamp, ToSpan, tz::TimeZone};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Harness, WEBHOOK_SECRET};

pub const PROJECT: u64 = 4242;
/// Every environment open: no rules of its own, and a `default:` for the rest.
pub const OPEN: &str = "environments: {}\ndefault: {}\n";
pub const SHA: &str = "af5b13261899fb2c0db30abdd0af8b07cb44fdc5";

/// What `gatehouse ci request` sends: the job's ID token carries project, pipeline, job, commit
/// and ref, so the body need not.
pub fn body(environment: &str, pipeline: u64) -> Value {
    json!({
        "environment": environment,
        "pipeline_url": format!("https://gitlab.example.com/acme/shop/-/pipelines/{pipeline}"),
        "title": "Deploy shop 1.4.2", "description": "Release 1.4.2"
    })
}

pub static NEXT_JOB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(880_000);

/// The ID token GitLab gives a `gatehouse:request` job of `pipeline` (at SHA, on protected
/// `main`) deploying to `environment`: a new job in the GitLab simulator, and its token.
pub fn ci_token(h: &Harness, environment: Option<&str>, pipeline: u64) -> String {
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

pub async fn request(h: &Harness, body: &Value) -> (u16, Value) {
    let environment = body["environment"].as_str().unwrap();
    let pipeline = body["pipeline_url"].as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let token = ci_token(h, Some(environment), pipeline);
    let resp = h.http.post(h.url("/v1/changes")).bearer_auth(token).json(body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

pub async fn gate(h: &Harness, environment: &str) -> Value {
    let url = h.url(&format!("/v1/changes/{PROJECT}/{SHA}?environment={environment}"));
    let resp = h.http.get(url).bearer_auth(ci_token(h, Some(environment), 900001)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// POST …/deployments as the deploy job of pipeline 900001 would.
pub async fn report(h: &Harness, environment: &str, report: &Value) -> reqwest::Response {
    let url = h.url(&format!("/v1/changes/{PROJECT}/{SHA}/deployments"));
    h.http.post(url).bearer_auth(ci_token(h, Some(environment), 900001)).json(report).send().await.unwrap()
}

pub fn sn(h: &Harness) -> &servicenow_sim::SnSim {
    h.sn.as_ref().unwrap()
}

pub fn gitlab(h: &Harness) -> &gitlab_sim::GitLabSim {
    h.gitlab.as_ref().unwrap()
}

/// The change manager approves and schedules the change in ServiceNow.
pub fn approve_in_servicenow(h: &Harness, sys_id: &str) {
    assert!(sn(h).set_field("change_request", sys_id, "approval", "approved"));
    assert!(sn(h).set_field("change_request", sys_id, "state", "-1"));
}

pub async fn callback(h: &Harness, answer: &Value, signed: bool) -> u16 {
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

pub fn closed_policy(now: Timestamp) -> String {
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

pub async fn fast_gate(policy: &str) -> Harness {
    Harness::start_with_gate_and(policy, |c| c.sweep_interval = std::time::Duration::from_millis(200)).await
}

pub async fn eventually(what: &str, timeout_secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout_secs);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen within {timeout_secs} s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub async fn gitlab_event(h: &Harness, secret: &str, event: Value) -> u16 {
    let resp = h.http.post(h.url("/v1/webhooks/gitlab")).header("x-gitlab-token", secret).json(&event).send().await;
    resp.unwrap().status().as_u16()
}

pub const GITLAB_SECRET: &str = gatehouse::serve::DEMO_GITLAB_WEBHOOK_SECRET;
