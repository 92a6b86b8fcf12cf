//! The published GitLab API samples (see `sim/samples/gitlab-api-samples/SOURCES.md`), embedded verbatim;
//! ids, names, times and URLs are replaced when answering.

use std::sync::LazyLock;

use serde_json::Value;

macro_rules! sample {
    ($file:literal) => {
        include_str!(concat!("../../samples/gitlab-api-samples/", $file))
    };
}

const COMMIT_MERGE_REQUESTS: &str = sample!("commit-merge_requests-list-response.json");
const NOTE: &str = sample!("merge_request-note-get-response.json");
const JOB_GET: &str = sample!("job-get-response.json");
const JOB_PLAY: &str = sample!("job-play-response.json");
const PIPELINE: &str = sample!("pipeline-get-response.json");
const DEPLOYMENT_APPROVAL: &str = sample!("deployment-approval-response.json");
const FORBIDDEN: &str = sample!("error-403-forbidden-response.json");

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("embedded GitLab sample is valid JSON")
}

/// One merge request of "List merge requests associated with a commit".
pub(crate) static MERGE_REQUEST: LazyLock<Value> = LazyLock::new(|| parse(COMMIT_MERGE_REQUESTS)[0].clone());
/// "Get single merge request note".
pub(crate) static MR_NOTE: LazyLock<Value> = LazyLock::new(|| parse(NOTE));
/// "Get a single job".
pub(crate) static JOB: LazyLock<Value> = LazyLock::new(|| parse(JOB_GET));
/// "Run a job": the answer.
pub(crate) static JOB_PLAYED: LazyLock<Value> = LazyLock::new(|| parse(JOB_PLAY));
/// "Get a single pipeline".
pub(crate) static PIPELINE_GET: LazyLock<Value> = LazyLock::new(|| parse(PIPELINE));
/// "Approve or reject a blocked deployment".
pub(crate) static APPROVAL: LazyLock<Value> = LazyLock::new(|| parse(DEPLOYMENT_APPROVAL));
/// `{ "message": "403 Forbidden" }`.
pub(crate) static FORBIDDEN_BODY: LazyLock<Value> = LazyLock::new(|| parse(FORBIDDEN));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_and_have_the_expected_shape() {
        assert_eq!(MERGE_REQUEST["state"], "opened");
        assert!(MR_NOTE["noteable_iid"].is_number());
        assert!(JOB["pipeline"]["id"].is_number());
        assert_eq!(JOB_PLAYED["status"], "pending");
        assert!(JOB_PLAYED["user"].is_null());
        assert!(PIPELINE_GET["detailed_status"].is_object());
        assert_eq!(APPROVAL["status"], "approved");
        assert_eq!(FORBIDDEN_BODY["message"], "403 Forbidden");
    }
}
