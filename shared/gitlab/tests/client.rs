//! The GitLab client against the GitLab simulator.

use std::time::{Duration, Instant};

use domain::Error;
use gatehouse_gitlab::{Client, GitLabConfig};
use gitlab_sim::{Faults, GitLabSim, GitLabSimConfig, demo};

const TOKEN: &str = "glpat-test-secret-0123456789";
const P: u64 = demo::PROJECT_ID;
const MR: u64 = demo::MERGE_REQUEST_IID;

async fn sim() -> GitLabSim {
    let sim = GitLabSim::start("127.0.0.1:0".parse().unwrap(), GitLabSimConfig { token: TOKEN.into() }).await.unwrap();
    sim.seed_demo();
    sim
}

fn client_with(sim: &GitLabSim, token: &str, timeout: Duration, max_retries: u32) -> Client {
    Client::new(GitLabConfig { base_url: sim.base_url(), token: token.into(), timeout, max_retries }).unwrap()
}

fn client(sim: &GitLabSim) -> Client {
    client_with(sim, TOKEN, Duration::from_secs(5), 2)
}

fn calls(sim: &GitLabSim, key: &str) -> u64 {
    sim.calls().get(key).copied().unwrap_or(0)
}

/// The detail of an upstream error (and checks that no secret or raw body is in the error).
fn upstream(err: Error) -> String {
    assert!(!err.chain().contains(TOKEN), "token leaked: {}", err.chain());
    match err {
        Error::Upstream { system, detail, .. } => {
            assert_eq!(system, format!("GitLab project {P}"));
            assert!(!detail.contains("{"), "raw body in detail: {detail}");
            detail
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

fn faults(status: u16, only: &str, remaining: Option<u32>) -> Faults {
    Faults { status: Some(status), only: Some(only.into()), remaining, ..Faults::default() }
}

#[tokio::test]
async fn merge_requests_of_a_commit() {
    let sim = sim().await;
    let c = client(&sim);
    let mrs = c.merge_requests_of_commit(P, demo::SHA).await.unwrap();
    assert_eq!(mrs.len(), 1);
    assert_eq!((mrs[0].iid, mrs[0].project_id, mrs[0].title.as_str()), (MR, P, demo::MERGE_REQUEST_TITLE));
    assert!(mrs[0].is_open());
    assert_eq!(mrs[0].web_url, format!("{}/acme/shop/merge_requests/7", sim.base_url()));
    assert!(c.merge_requests_of_commit(P, &"1".repeat(40)).await.unwrap().is_empty());
    match c.merge_requests_of_commit(999, demo::SHA).await.unwrap_err() {
        Error::NotFound(what) => assert_eq!(what, "commit af5b13261899 in GitLab project 999"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn notes_are_created_listed_and_edited() {
    let sim = sim().await;
    let c = client(&sim);
    let note = c.create_mr_note(P, MR, "Change CHG0030001 requested").await.unwrap();
    assert_eq!(note.body, "Change CHG0030001 requested");
    assert_eq!(note.noteable_iid, Some(MR));
    assert_eq!(note.author.as_ref().unwrap().username, gitlab_sim::SIM_USERNAME);
    let edited = c.edit_mr_note(P, MR, note.id, "Change CHG0030001 approved").await.unwrap();
    assert_eq!(edited.id, note.id);
    let notes = sim.notes(P, MR);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].body, "Change CHG0030001 approved");
    let listed = c.mr_notes(P, MR).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].body, "Change CHG0030001 approved");
    assert!(matches!(c.edit_mr_note(P, MR, 1, "x").await.unwrap_err(), Error::NotFound(_)));
    assert!(matches!(c.create_mr_note(P, 99, "x").await.unwrap_err(), Error::NotFound(_)));
}

#[tokio::test]
async fn every_page_of_notes_is_read_oldest_first() {
    let sim = sim().await;
    for i in 0..250 {
        sim.add_note(P, MR, &format!("note {i}"));
    }
    let c = client(&sim);
    c.create_mr_note(P, MR, "marked <!-- gatehouse:change:CHG1 -->").await.unwrap();
    let notes = c.mr_notes(P, MR).await.unwrap();
    assert_eq!(notes.len(), 251);
    assert_eq!(notes[0].body, "note 0");
    assert_eq!(notes[249].body, "note 249");
    assert_eq!(calls(&sim, "notes.list"), 3);
    let found = c.find_mr_note(P, MR, "<!-- gatehouse:change:CHG1 -->").await.unwrap().unwrap();
    assert_eq!(found.id, notes[250].id);
    assert!(c.find_mr_note(P, MR, "<!-- gatehouse:change:CHG2 -->").await.unwrap().is_none());
}

#[tokio::test]
async fn upsert_writes_one_note_and_updates_it() {
    let sim = sim().await;
    let c = client(&sim);
    let marker = "<!-- gatehouse:change:gitlab:4242:af5b1326:production -->";
    let first = c.upsert_mr_note(P, MR, marker, "Change CHG0030001: waiting for approval").await.unwrap();
    assert!(first.body.ends_with(marker));
    let same = c.upsert_mr_note(P, MR, marker, "Change CHG0030001: waiting for approval").await.unwrap();
    assert_eq!(same.id, first.id);
    assert_eq!(calls(&sim, "notes.edit"), 0);
    let body = format!("Change CHG0030001: approved\n{marker}");
    let updated = c.upsert_mr_note(P, MR, marker, &body).await.unwrap();
    assert_eq!((updated.id, updated.body.as_str()), (first.id, body.as_str()));
    assert_eq!(calls(&sim, "notes.edit"), 1);
    assert_eq!(sim.notes(P, MR).len(), 1);
}

#[tokio::test]
async fn a_lost_answer_does_not_duplicate_the_note() {
    let sim = sim().await;
    let c = client(&sim);
    // GitLab stores the note, then the answer is lost (a 502 from the proxy).
    sim.set_faults(Faults { after_processing: true, ..faults(502, "notes.create", Some(1)) });
    let note = c.upsert_mr_note(P, MR, "<!-- m1 -->", "Change requested").await.unwrap();
    assert_eq!(sim.notes(P, MR).len(), 1);
    assert_eq!(note.id, sim.notes(P, MR)[0].id);
    assert_eq!(calls(&sim, "notes.create"), 1);

    // Failed for real (nothing stored): the note is looked for, then created once more.
    sim.set_faults(faults(500, "notes.create", Some(1)));
    c.upsert_mr_note(P, MR, "<!-- m2 -->", "Another change").await.unwrap();
    assert_eq!(sim.notes(P, MR).len(), 2);
    assert_eq!(calls(&sim, "notes.create"), 3);

    // A plain create is not retried after a 500: it may have been stored.
    sim.set_faults(Faults { after_processing: true, ..faults(500, "notes.create", Some(1)) });
    let detail = upstream(c.create_mr_note(P, MR, "plain").await.unwrap_err());
    assert_eq!(detail, "could not add a note to merge request !7: GitLab answered HTTP 500 (1 attempt)");
    assert_eq!(sim.notes(P, MR).len(), 3);
    // ... but it is after a 503 or 429, which mean GitLab did nothing.
    sim.set_faults(Faults { retry_after: Some(0), ..faults(503, "notes.create", Some(1)) });
    c.create_mr_note(P, MR, "after 503").await.unwrap();
    assert_eq!(sim.notes(P, MR).len(), 4);
}

#[tokio::test]
async fn manual_jobs_are_played_once() {
    let sim = sim().await;
    let c = client(&sim);
    let before = c.job(P, demo::JOB_ID).await.unwrap();
    assert!(before.is_manual());
    assert_eq!(before.pipeline.as_ref().unwrap().id, demo::PIPELINE_ID);
    assert_eq!(before.pipeline.as_ref().unwrap().sha, demo::SHA);
    let played = c.play_job_with_variables(P, demo::JOB_ID, &[("GATEHOUSE_CHANGE", "CHG0030001")]).await.unwrap();
    assert_eq!((played.id, played.status.as_str()), (demo::JOB_ID, "pending"));
    let job = sim.job(P, demo::JOB_ID).unwrap();
    assert_eq!((job.status.as_str(), job.play_count), ("pending", 1));
    assert_eq!(job.variables.get("GATEHOUSE_CHANGE").map(String::as_str), Some("CHG0030001"));
    // Pending now, so not playable: GitLab's 400 "Unplayable Job".
    let detail = upstream(c.play_job(P, demo::JOB_ID).await.unwrap_err());
    assert!(detail.starts_with("could not play job 77001"), "{detail}");
    assert!(detail.contains("400"), "{detail}");
    assert_eq!(sim.job(P, demo::JOB_ID).unwrap().play_count, 1);
    match c.play_job(P, 1).await.unwrap_err() {
        Error::NotFound(what) => assert_eq!(what, "job 1 in GitLab project 4242"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_lost_play_answer_is_recovered_by_reading_the_job() {
    let sim = sim().await;
    let c = client(&sim);
    sim.set_faults(Faults { after_processing: true, ..faults(504, "jobs.play", Some(1)) });
    let job = c.play_job(P, demo::JOB_ID).await.unwrap();
    assert_eq!(job.status, "pending");
    assert_eq!(sim.job(P, demo::JOB_ID).unwrap().play_count, 1);
    assert_eq!((calls(&sim, "jobs.play"), calls(&sim, "jobs.get")), (1, 1));

    // A 500 before GitLab acted: the job is still manual, so it is played once more.
    sim.add_job(P, 77002, demo::PIPELINE_ID, "deploy-eu", "manual");
    sim.set_faults(faults(500, "jobs.play", Some(1)));
    let job = c.play_job(P, 77002).await.unwrap();
    assert_eq!(job.status, "pending");
    assert_eq!(sim.job(P, 77002).unwrap().play_count, 1);
    assert_eq!((calls(&sim, "jobs.play"), calls(&sim, "jobs.get")), (3, 2));
}

#[tokio::test]
async fn pipelines_are_read() {
    let sim = sim().await;
    let c = client(&sim);
    let p = c.pipeline(P, demo::PIPELINE_ID).await.unwrap();
    assert_eq!(
        (p.id, p.project_id, p.sha.as_str(), p.ref_.as_str(), p.status.as_str()),
        (demo::PIPELINE_ID, P, demo::SHA, "main", "running")
    );
    assert_eq!(p.web_url, format!("{}/acme/shop/-/pipelines/{}", sim.base_url(), demo::PIPELINE_ID));
    sim.set_pipeline_status(P, demo::PIPELINE_ID, "success");
    assert_eq!(c.pipeline(P, demo::PIPELINE_ID).await.unwrap().status, "success");
    assert!(matches!(c.pipeline(P, 1).await.unwrap_err(), Error::NotFound(_)));
}

#[tokio::test]
async fn deployments_are_approved_once() {
    let sim = sim().await;
    let c = client(&sim);
    let a = c.approve_deployment(P, demo::DEPLOYMENT_ID, "Approved in ServiceNow change CHG0030001").await.unwrap();
    assert_eq!(a.status, "approved");
    assert_eq!(a.comment.as_deref(), Some("Approved in ServiceNow change CHG0030001"));
    assert_eq!(a.user.unwrap().username, gitlab_sim::SIM_USERNAME);
    // The answer is lost after GitLab recorded it: approving is retried, still one approval.
    sim.set_faults(Faults { after_processing: true, ..faults(500, "deployments.approve", Some(1)) });
    c.approve_deployment(P, demo::DEPLOYMENT_ID, None).await.unwrap();
    let approvals = sim.deployment_approvals(P, demo::DEPLOYMENT_ID);
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].status, "approved");
    assert_eq!(calls(&sim, "deployments.approve"), 3);
    assert_eq!(sim.deployment(P, demo::DEPLOYMENT_ID).unwrap().status, "created");
    assert!(matches!(c.approve_deployment(P, 1, None).await.unwrap_err(), Error::NotFound(_)));
    // A deployment that is not blocked takes no approval: GitLab's 400.
    sim.add_deployment(P, 5002, "staging", "success");
    let detail = upstream(c.approve_deployment(P, 5002, None).await.unwrap_err());
    assert_eq!(detail, "could not approve deployment 5002: GitLab refused the request (HTTP 400)");
}

#[tokio::test]
async fn a_wrong_token_is_reported_without_the_token() {
    let sim = sim().await;
    let c = client_with(&sim, "glpat-wrong-secret", Duration::from_secs(5), 2);
    let err = c.job(P, demo::JOB_ID).await.unwrap_err();
    assert!(!err.chain().contains("glpat-wrong-secret"));
    let detail = upstream(err);
    assert_eq!(detail, "could not read job 77001: GitLab refused Gatehouse's token (HTTP 401)");
    assert_eq!(calls(&sim, "jobs.get"), 1);
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let sim = sim().await;
    let c = client(&sim);
    sim.set_faults(Faults { retry_after: Some(1), ..faults(429, "jobs.get", Some(1)) });
    let started = Instant::now();
    c.job(P, demo::JOB_ID).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(calls(&sim, "jobs.get"), 2);

    // Asked to wait longer than Gatehouse will: fails at once.
    sim.set_faults(Faults { retry_after: Some(120), ..faults(429, "jobs.get", None) });
    let started = Instant::now();
    let detail = upstream(c.job(P, demo::JOB_ID).await.unwrap_err());
    assert_eq!(
        detail,
        "could not read job 77001: GitLab is rate limiting Gatehouse (HTTP 429) and asked it to wait 120 s"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(calls(&sim, "jobs.get"), 3);

    // Rate limited throughout: gives up after the retries.
    sim.set_faults(Faults { retry_after: Some(0), ..faults(429, "jobs.get", None) });
    let detail = upstream(c.job(P, demo::JOB_ID).await.unwrap_err());
    assert_eq!(detail, "could not read job 77001: GitLab is rate limiting Gatehouse (HTTP 429; 3 attempts)");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let sim = sim().await;
    let c = client(&sim);
    sim.set_faults(faults(503, "pipelines.get", Some(2)));
    c.pipeline(P, demo::PIPELINE_ID).await.unwrap();
    assert_eq!(calls(&sim, "pipelines.get"), 3);

    sim.set_faults(faults(500, "jobs.get", None));
    let detail = upstream(c.job(P, demo::JOB_ID).await.unwrap_err());
    assert_eq!(detail, "could not read job 77001: GitLab answered HTTP 500 (3 attempts)");
    assert_eq!(calls(&sim, "jobs.get"), 3);

    // Lists too, page by page.
    sim.set_faults(faults(502, "notes.list", Some(1)));
    assert!(c.mr_notes(P, MR).await.unwrap().is_empty());
    assert_eq!(calls(&sim, "notes.list"), 2);
}

#[tokio::test]
async fn slow_answers_time_out() {
    let sim = sim().await;
    let c = client_with(&sim, TOKEN, Duration::from_millis(300), 1);
    sim.set_faults(Faults { latency_ms: 1000, ..Faults::default() });
    let started = Instant::now();
    let detail = upstream(c.job(P, demo::JOB_ID).await.unwrap_err());
    assert_eq!(detail, "could not read job 77001: GitLab did not answer within 300 ms (2 attempts)");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn an_unreachable_gitlab_is_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = Client::new(GitLabConfig {
        base_url: format!("http://{addr}"),
        token: TOKEN.into(),
        timeout: Duration::from_secs(2),
        max_retries: 1,
    })
    .unwrap();
    let detail = upstream(c.job(P, 1).await.unwrap_err());
    assert_eq!(detail, "could not read job 1: GitLab could not be reached (2 attempts)");
}
