//! What a release holds, read through the GitLab client from the GitLab simulator: the last
//! successful deployment, compare, merged merge requests and the test report summary.

use std::time::Duration;

use domain::Error;
use gatehouse_gitlab::{Client, GitLabConfig};
use gitlab_sim::{GitLabSim, GitLabSimConfig, demo};
use serde_json::json;

const TOKEN: &str = "glpat-test-secret-0123456789";
const P: u64 = demo::PROJECT_ID;

async fn sim() -> (GitLabSim, Client) {
    let sim = GitLabSim::start("127.0.0.1:0".parse().unwrap(), GitLabSimConfig { token: TOKEN.into() }).await.unwrap();
    sim.seed_demo();
    let client = Client::new(GitLabConfig {
        base_url: sim.base_url(),
        token: TOKEN.into(),
        timeout: Duration::from_secs(5),
        max_retries: 0,
    })
    .unwrap();
    (sim, client)
}

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

#[tokio::test]
async fn the_last_successful_deployment_is_the_latest_success_of_that_environment() {
    let (sim, c) = sim().await;
    assert_eq!(c.last_successful_deployment(P, "production").await.unwrap(), None);
    sim.add_deployment_of(P, 1, "production", "success", &sha('1'));
    sim.add_deployment_of(P, 2, "production", "success", &sha('2'));
    sim.add_deployment_of(P, 3, "production", "failed", &sha('3'));
    sim.add_deployment_of(P, 4, "staging", "success", &sha('4'));
    let last = c.last_successful_deployment(P, "production").await.unwrap().unwrap();
    assert_eq!((last.id, last.sha.as_str(), last.status.as_str()), (2, sha('2').as_str(), "success"));
    assert!(last.created_at.is_some());
}

#[tokio::test]
async fn compare_lists_the_commits_after_from_up_to_to_oldest_first() {
    let (sim, c) = sim().await;
    for (ch, title) in [('1', "one"), ('2', "two"), ('3', "three")] {
        sim.add_commit(P, &sha(ch), title, "Jane Doe");
    }
    let cmp = c.compare(P, &sha('1'), &sha('3')).await.unwrap();
    let titles: Vec<&str> = cmp.commits.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, ["two", "three"]);
    assert_eq!(cmp.commits[0].author_name.as_deref(), Some("Jane Doe"));
    assert_eq!(cmp.commits[0].short_id, "22222222");
    assert!(c.compare(P, &sha('3'), &sha('1')).await.unwrap().commits.is_empty());
    // GitLab's 404 "Ref Not Found" for a commit it does not have.
    match c.compare(P, &sha('9'), &sha('3')).await.unwrap_err() {
        Error::NotFound(what) => assert!(what.contains("commit 99999999"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn merged_merge_requests_are_filtered_by_target_branch_and_update_time() {
    let (sim, c) = sim().await;
    sim.add_merge_request(P, 11, &sha('b'), "Fix rounding");
    sim.add_merge_request(P, 12, &sha('c'), "Still open");
    assert!(sim.merge_merge_request(P, 11, &sha('3'), false));
    assert!(!sim.merge_merge_request(P, 99, &sha('3'), false));
    let merged = c.merged_merge_requests(P, "main", None).await.unwrap();
    assert_eq!(merged.iter().map(|m| m.iid).collect::<Vec<_>>(), [11]);
    assert_eq!(merged[0].merge_commit_sha.as_deref(), Some(sha('3').as_str()));
    assert_eq!(merged[0].state, "merged");
    assert!(c.merged_merge_requests(P, "release", None).await.unwrap().is_empty());
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
    assert!(c.merged_merge_requests(P, "main", Some(later)).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_test_report_summary_is_read_and_an_unknown_pipeline_is_not_found() {
    let (sim, c) = sim().await;
    let none = c.test_report_summary(P, demo::PIPELINE_ID).await.unwrap();
    assert_eq!(none.total.count, 0);
    sim.set_test_report_summary(
        P,
        demo::PIPELINE_ID,
        json!({"time": 1.5, "count": 3, "success": 2, "failed": 1, "skipped": 0, "error": 0}),
    );
    let summary = c.test_report_summary(P, demo::PIPELINE_ID).await.unwrap();
    assert_eq!((summary.total.count, summary.total.failed, summary.total.time), (3, 1, 1.5));
    assert!(matches!(c.test_report_summary(P, 1).await.unwrap_err(), Error::NotFound(_)));
}

#[tokio::test]
async fn the_simulator_refuses_a_finished_at_order_without_a_finished_status_as_gitlab_does() {
    let (sim, _) = sim().await;
    let url = format!("{}/api/v4/projects/{P}/deployments?order_by=finished_at&sort=desc", sim.base_url());
    let resp = reqwest::Client::new().get(url).header("PRIVATE-TOKEN", TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("`finished_at` sort requires"), "{body}");
}
