//! Who may ask the change gate for what: a job's GitLab ID token speaks for its own project,
//! pipeline, commit and environment only (DESIGN.md, "CI identity comes from the ID token").

mod support;

use serde_json::{Value, json};
use support::Harness;
use support::gate::*;

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
