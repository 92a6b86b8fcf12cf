//! The GitLab client never follows a redirect: `PRIVATE-TOKEN` would travel with it (reqwest
//! strips only Authorization-like headers across hosts). A 3xx is an upstream error naming
//! GitLab, and the host it points to is never called.

#[path = "../../../tests/support/http_stub.rs"]
mod stub;

use std::time::Duration;

use domain::Error;
use gatehouse_gitlab::{Client, GitLabConfig};
use stub::{Reply, Stub};

const TOKEN: &str = "glpat-redirect-test-secret";

#[tokio::test]
async fn a_302_is_an_error_and_the_token_never_leaves() {
    let other = Stub::start_elsewhere(|_| Reply::json(200, r#"{"id": 77001, "status": "manual"}"#.into()));
    let to = other.base_url();
    let gitlab = Stub::start("127.0.0.1", move |req| Reply::redirect(302, format!("{to}{}", req.path)));
    let client = Client::new(GitLabConfig {
        base_url: gitlab.base_url(),
        token: TOKEN.into(),
        timeout: Duration::from_secs(5),
        max_retries: 3,
    })
    .unwrap();
    let err = client.job(4242, 77001).await.unwrap_err();
    assert!(!err.chain().contains(TOKEN), "{}", err.chain());
    match err {
        Error::Upstream { system, detail, .. } => {
            assert_eq!(system, "GitLab project 4242");
            assert_eq!(
                detail,
                "could not read job 77001: GitLab answered with a redirect (HTTP 302), which Gatehouse does not \
                 follow; check GATEHOUSE_GITLAB_URL"
            );
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
    assert!(other.seen().is_empty(), "the other host was called: {:?}", other.seen());
    let seen = gitlab.seen();
    assert_eq!(seen.len(), 1, "a redirect is not retried: {seen:?}");
    assert_eq!(seen[0].header("private-token"), Some(TOKEN), "the token a followed redirect would carry");
}
