//! The GitLab simulator over HTTP: shapes of the published samples, auth, errors, pagination,
//! faults and the control API.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::time::Duration;

use gitlab_sim::{Faults, GitLabSim, GitLabSimConfig, demo};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "glpat-sim-test";

macro_rules! sample {
    ($file:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!("../../samples/gitlab-api-samples/", $file))).unwrap()
    };
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn start() -> GitLabSim {
    let sim = GitLabSim::start("127.0.0.1:0".parse().unwrap(), GitLabSimConfig { token: TOKEN.into() }).await.unwrap();
    sim.seed_demo();
    sim
}

fn api(sim: &GitLabSim, path: &str) -> String {
    format!("{}/api/v4{path}", sim.base_url())
}

async fn get(sim: &GitLabSim, path: &str) -> (StatusCode, Value) {
    let resp = http().get(api(sim, path)).header("PRIVATE-TOKEN", TOKEN).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(sim: &GitLabSim, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = http().post(api(sim, path)).header("PRIVATE-TOKEN", TOKEN).json(&body).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn answers_have_the_shapes_of_the_samples() {
    let sim = start().await;
    let (status, mrs) =
        get(&sim, &format!("/projects/{}/repository/commits/{}/merge_requests", demo::PROJECT_ID, demo::SHA)).await;
    assert_eq!(status, StatusCode::OK);
    let sample_mr = &sample!("commit-merge_requests-list-response.json")[0];
    assert_eq!(keys(&mrs[0]), keys(sample_mr));
    assert_eq!(keys(&mrs[0]["author"]), keys(&sample_mr["author"]));
    assert_eq!(mrs[0]["iid"], demo::MERGE_REQUEST_IID);
    assert_eq!(mrs[0]["sha"], demo::SHA);
    assert_eq!(mrs[0]["title"], demo::MERGE_REQUEST_TITLE);

    let notes = format!("/projects/{}/merge_requests/{}/notes", demo::PROJECT_ID, demo::MERGE_REQUEST_IID);
    let (status, note) = post(&sim, &notes, json!({"body": "hello"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let sample_note = sample!("merge_request-note-get-response.json");
    assert_eq!(keys(&note), keys(&sample_note));
    assert_eq!(keys(&note["author"]), keys(&sample_note["author"]));
    assert_eq!((note["body"].as_str(), note["noteable_iid"].as_u64()), (Some("hello"), Some(demo::MERGE_REQUEST_IID)));
    let (status, again) = get(&sim, &format!("{notes}/{}", note["id"])).await;
    assert_eq!((status, &again), (StatusCode::OK, &note));

    let job_path = format!("/projects/{}/jobs/{}", demo::PROJECT_ID, demo::JOB_ID);
    let (status, job) = get(&sim, &job_path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&job), keys(&sample!("job-get-response.json")));
    assert_eq!(job["status"], "manual");
    assert_eq!(job["pipeline"]["id"], demo::PIPELINE_ID);
    let (status, played) = post(&sim, &format!("{job_path}/play"), Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&played), keys(&sample!("job-play-response.json")));
    assert_eq!(played["status"], "pending");

    let (status, pipeline) =
        get(&sim, &format!("/projects/{}/pipelines/{}", demo::PROJECT_ID, demo::PIPELINE_ID)).await;
    assert_eq!(status, StatusCode::OK);
    let sample_pipeline = sample!("pipeline-get-response.json");
    assert_eq!(keys(&pipeline), keys(&sample_pipeline));
    assert_eq!(keys(&pipeline["detailed_status"]), keys(&sample_pipeline["detailed_status"]));

    let approve = format!("/projects/{}/deployments/{}/approval", demo::PROJECT_ID, demo::DEPLOYMENT_ID);
    let (status, approval) = post(&sim, &approve, json!({"status": "approved", "comment": "ok"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let sample_approval = sample!("deployment-approval-response.json");
    assert_eq!(keys(&approval), keys(&sample_approval));
    assert_eq!(keys(&approval["user"]), keys(&sample_approval["user"]));
    assert_eq!(approval["comment"], "ok");
}

#[tokio::test]
async fn the_token_is_required() {
    let sim = start().await;
    let url = api(&sim, &format!("/projects/{}/jobs/{}", demo::PROJECT_ID, demo::JOB_ID));
    for req in [http().get(&url), http().get(&url).header("PRIVATE-TOKEN", "wrong")] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.json::<Value>().await.unwrap(), json!({"message": "401 Unauthorized"}));
    }
    let resp = http().get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sim.calls().get("jobs.get"), Some(&3));
}

#[tokio::test]
async fn unknown_things_and_unplayable_jobs() {
    let sim = start().await;
    for path in ["/projects/1/jobs/1", "/projects/4242/jobs/1", "/projects/4242/pipelines/1", "/projects/4242/nothing"]
    {
        assert_eq!(get(&sim, path).await, (StatusCode::NOT_FOUND, json!({"message": "404 Not found"})), "{path}");
    }
    sim.set_job_status(demo::PROJECT_ID, demo::JOB_ID, "running");
    let (status, body) =
        post(&sim, &format!("/projects/{}/jobs/{}/play", demo::PROJECT_ID, demo::JOB_ID), json!({})).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"message": "400 Bad request - Unplayable Job"})));
    assert_eq!(sim.job(demo::PROJECT_ID, demo::JOB_ID).unwrap().play_count, 0);
    let (status, body) = post(&sim, "/projects/4242/merge_requests/7/notes", json!({})).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"error": "body is missing"})));
    let (status, _) =
        post(&sim, &format!("/projects/4242/deployments/{}/approval", demo::DEPLOYMENT_ID), json!({"status": "maybe"}))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// One MR note by id, as an auditor reads it (`gatehouse audit verify --anchors`): "Get single
/// merge request note", https://docs.gitlab.com/ee/api/notes.html; 404 for an id the merge request
/// does not hold (another merge request's note included).
#[tokio::test]
async fn one_note_is_read_by_id_and_an_absent_one_is_404() {
    let sim = start().await;
    let id = sim.add_note(demo::PROJECT_ID, demo::MERGE_REQUEST_IID, "Deployed.\n\ngatehouse-chain: 3:ab").unwrap();
    let (status, note) = get(&sim, &format!("/projects/4242/merge_requests/7/notes/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((note["id"].as_u64(), note["body"].as_str()), (Some(id), Some("Deployed.\n\ngatehouse-chain: 3:ab")));
    for path in [
        format!("/projects/4242/merge_requests/7/notes/{}", id + 1000),
        format!("/projects/4242/merge_requests/8/notes/{id}"),
    ] {
        assert_eq!(get(&sim, &path).await, (StatusCode::NOT_FOUND, json!({"message": "404 Not found"})), "{path}");
    }
}

#[tokio::test]
async fn projects_are_found_by_path_and_parameters_by_form() {
    let sim = start().await;
    let (status, job) = get(&sim, &format!("/projects/acme%2Fshop/jobs/{}", demo::JOB_ID)).await;
    assert_eq!((status, job["id"].as_u64()), (StatusCode::OK, Some(demo::JOB_ID)));
    let resp = http()
        .post(api(&sim, "/projects/acme%2Fshop/merge_requests/7/notes"))
        .header("PRIVATE-TOKEN", TOKEN)
        .form(&[("body", "from a form")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = http()
        .put(api(&sim, &format!("/projects/4242/merge_requests/7/notes/{}", sim.notes(4242, 7)[0].id)))
        .header("PRIVATE-TOKEN", TOKEN)
        .query(&[("body", "from the query")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sim.notes(4242, 7)[0].body, "from the query");
}

#[tokio::test]
async fn lists_are_paginated_like_gitlab() {
    let sim = start().await;
    for i in 0..45 {
        sim.add_note(demo::PROJECT_ID, demo::MERGE_REQUEST_IID, &format!("n{i}"));
    }
    let url = api(&sim, "/projects/4242/merge_requests/7/notes");
    let resp = http().get(&url).header("PRIVATE-TOKEN", TOKEN).send().await.unwrap();
    let h = resp.headers().clone();
    let page: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(page.len(), 20);
    assert_eq!(page[0]["body"], "n44", "newest first by default");
    assert_eq!(
        (&h["x-page"], &h["x-next-page"], &h["x-total"], &h["x-total-pages"]),
        (&"1".parse().unwrap(), &"2".parse().unwrap(), &"45".parse().unwrap(), &"3".parse().unwrap())
    );
    let resp = http()
        .get(&url)
        .header("PRIVATE-TOKEN", TOKEN)
        .query(&[("sort", "asc"), ("per_page", "40"), ("page", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-next-page"], "");
    assert_eq!(resp.headers()["x-prev-page"], "1");
    let page: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(
        page.iter().map(|n| n["body"].as_str().unwrap()).collect::<Vec<_>>(),
        ["n40", "n41", "n42", "n43", "n44"]
    );
}

#[tokio::test]
async fn faults_are_applied_and_counted_down() {
    let sim = start().await;
    let job = format!("/projects/{}/jobs/{}", demo::PROJECT_ID, demo::JOB_ID);
    sim.set_faults(Faults {
        status: Some(429),
        retry_after: Some(7),
        remaining: Some(2),
        only: Some("jobs.get".into()),
        ..Faults::default()
    });
    for _ in 0..2 {
        let resp = http().get(api(&sim, &job)).header("PRIVATE-TOKEN", TOKEN).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "7");
    }
    // Other calls are not affected; then the count is used up.
    assert_eq!(get(&sim, &format!("/projects/4242/pipelines/{}", demo::PIPELINE_ID)).await.0, StatusCode::OK);
    assert_eq!(get(&sim, &job).await.0, StatusCode::OK);
    assert_eq!(sim.faults().remaining, Some(0));

    // A lost answer: the job is played, the caller sees a 502.
    sim.set_faults(Faults { status: Some(502), after_processing: true, remaining: Some(1), ..Faults::default() });
    let (status, body) = post(&sim, &format!("{job}/play"), json!({})).await;
    assert_eq!((status, body), (StatusCode::BAD_GATEWAY, json!({"message": "502 Bad Gateway"})));
    assert_eq!(sim.job(demo::PROJECT_ID, demo::JOB_ID).unwrap().status, "pending");

    // Latency.
    sim.set_faults(Faults { latency_ms: 300, ..Faults::default() });
    let started = std::time::Instant::now();
    assert_eq!(get(&sim, &job).await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_control_api_seeds_and_inspects() {
    let sim = GitLabSim::start("127.0.0.1:0".parse().unwrap(), GitLabSimConfig::default()).await.unwrap();
    let token = GitLabSimConfig::default().token;
    let base = sim.base_url();
    let c = http();
    for (path, body) in [
        ("projects", json!({"id": 7, "path": "team/app"})),
        ("merge_requests", json!({"project_id": 7, "iid": 3, "sha": "abc", "title": "T"})),
        ("pipelines", json!({"project_id": 7, "id": 70, "sha": "abc", "ref": "main"})),
        ("jobs", json!({"project_id": 7, "id": 700, "pipeline_id": 70, "name": "deploy"})),
        ("deployments", json!({"project_id": 7, "id": 7000, "environment": "production"})),
    ] {
        let resp = c.post(format!("{base}/_sim/{path}")).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "{path}");
    }
    let resp = c.post(format!("{base}/_sim/jobs")).json(&json!({"id": 1})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let api = |p: &str| format!("{base}/api/v4{p}");
    c.post(api("/projects/7/merge_requests/3/notes"))
        .header("PRIVATE-TOKEN", &token)
        .json(&json!({"body": "x"}))
        .send()
        .await
        .unwrap();
    c.post(api("/projects/7/jobs/700/play")).header("PRIVATE-TOKEN", &token).send().await.unwrap();
    c.post(api("/projects/7/deployments/7000/approval"))
        .header("PRIVATE-TOKEN", &token)
        .json(&json!({"status": "approved"}))
        .send()
        .await
        .unwrap();

    let notes: Value =
        c.get(format!("{base}/_sim/projects/7/merge_requests/3/notes")).send().await.unwrap().json().await.unwrap();
    assert_eq!(notes[0]["body"], "x");
    let job: Value = c.get(format!("{base}/_sim/projects/7/jobs/700")).send().await.unwrap().json().await.unwrap();
    assert_eq!((job["status"].as_str(), job["play_count"].as_u64()), (Some("pending"), Some(1)));
    let approvals: Value =
        c.get(format!("{base}/_sim/projects/7/deployments/7000/approvals")).send().await.unwrap().json().await.unwrap();
    assert_eq!(approvals[0]["status"], "approved");
    let deployment: Value =
        c.get(format!("{base}/_sim/projects/7/deployments/7000")).send().await.unwrap().json().await.unwrap();
    assert_eq!(deployment["status"], "created");
    let resp = c
        .put(format!("{base}/_sim/projects/7/jobs/700/status"))
        .json(&json!({"status": "success"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sim.job(7, 700).unwrap().status, "success");

    let resp = c.put(format!("{base}/_sim/faults")).json(&json!({"status": 503, "remaining": 1})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sim.faults().status, Some(503));
    let calls: Value = c.get(format!("{base}/_sim/calls")).send().await.unwrap().json().await.unwrap();
    assert_eq!((calls["notes.create"].as_u64(), calls["jobs.play"].as_u64()), (Some(1), Some(1)));

    let resp = c.post(format!("{base}/_sim/reset")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(sim.job(7, 700).is_none());
    assert!(sim.calls().is_empty());
    c.post(format!("{base}/_sim/demo")).send().await.unwrap();
    assert_eq!(sim.job(demo::PROJECT_ID, demo::JOB_ID).unwrap().status, "manual");
    sim.stop().await;
}

#[test]
fn binary_prints_its_url() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gitlab-sim"))
        .args(["--listen", "127.0.0.1:0", "--demo", "--token", TOKEN])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url =
        line.trim().strip_prefix("GITLAB_SIM_URL=").unwrap_or_else(|| panic!("unexpected line: {line}")).to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        http()
            .get(format!("{url}/api/v4/projects/{}/jobs/{}", demo::PROJECT_ID, demo::JOB_ID))
            .header("PRIVATE-TOKEN", TOKEN)
            .send()
            .await
            .unwrap()
            .status()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, StatusCode::OK);
}
