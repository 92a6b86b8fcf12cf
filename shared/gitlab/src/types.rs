//! The GitLab objects Gatehouse reads, with the fields it uses (unknown fields are ignored; what
//! GitLab may leave out or set to null is optional).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A user as GitLab embeds it (author, approver).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub web_url: Option<String>,
}

/// A merge request (`GET /projects/:id/repository/commits/:sha/merge_requests`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeRequest {
    pub id: u64,
    pub iid: u64,
    pub project_id: u64,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `opened`, `closed`, `locked`, `merged`.
    pub state: String,
    #[serde(default)]
    pub source_branch: String,
    #[serde(default)]
    pub target_branch: String,
    /// The head commit.
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    #[serde(default)]
    pub squash_commit_sha: Option<String>,
    #[serde(default)]
    pub draft: bool,
    pub web_url: String,
    #[serde(default)]
    pub author: Option<User>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
}

impl MergeRequest {
    pub fn is_open(&self) -> bool {
        self.state == "opened"
    }
}

/// A note (comment) on a merge request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub id: u64,
    pub body: String,
    #[serde(default)]
    pub author: Option<User>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// Written by GitLab itself ("changed the description", ...).
    #[serde(default)]
    pub system: bool,
    #[serde(default)]
    pub noteable_id: Option<u64>,
    #[serde(default)]
    pub noteable_type: Option<String>,
    #[serde(default)]
    pub noteable_iid: Option<u64>,
    #[serde(default)]
    pub project_id: Option<u64>,
    #[serde(default)]
    pub confidential: Option<bool>,
    #[serde(default)]
    pub internal: Option<bool>,
}

/// The commit a job runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    pub id: String,
    #[serde(default)]
    pub short_id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub author_name: Option<String>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
}

/// The pipeline a job belongs to, as the job shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPipeline {
    pub id: u64,
    pub project_id: u64,
    #[serde(rename = "ref", default)]
    pub ref_: String,
    #[serde(default)]
    pub sha: String,
    #[serde(default)]
    pub status: String,
}

/// A CI job (`GET /projects/:id/jobs/:job_id`, `POST …/play`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub name: String,
    /// `created`, `pending`, `running`, `failed`, `success`, `canceled`, `skipped`, `waiting_for_resource`,
    /// `manual`, ...
    pub status: String,
    #[serde(default)]
    pub stage: String,
    #[serde(rename = "ref", default)]
    pub ref_: String,
    #[serde(default)]
    pub tag: bool,
    #[serde(default)]
    pub allow_failure: bool,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    /// Seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default)]
    pub queued_duration: Option<f64>,
    pub web_url: String,
    /// Not in the answer of `play`.
    #[serde(default)]
    pub pipeline: Option<JobPipeline>,
    #[serde(default)]
    pub commit: Option<Commit>,
    #[serde(default)]
    pub user: Option<User>,
}

impl Job {
    /// Waiting for someone to play it.
    pub fn is_manual(&self) -> bool {
        self.status == "manual"
    }
}

/// A pipeline (`GET /projects/:id/pipelines/:pipeline_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub id: u64,
    #[serde(default)]
    pub iid: Option<u64>,
    pub project_id: u64,
    #[serde(default)]
    pub name: Option<String>,
    pub sha: String,
    #[serde(rename = "ref")]
    pub ref_: String,
    pub status: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    /// Seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    pub web_url: String,
    #[serde(default)]
    pub user: Option<User>,
}

/// A deployment, as `GET /projects/:id/deployments` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: u64,
    /// `created`, `running`, `success`, `failed`, `canceled`, `blocked`.
    pub status: String,
    #[serde(default)]
    pub sha: String,
    #[serde(default)]
    pub environment: Option<DeploymentEnvironment>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
}

/// `GET /projects/:id/repository/compare`: the commits `to` has and `from` has not, oldest first
/// (https://docs.gitlab.com/api/repositories/#compare-branches-tags-or-commits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compare {
    #[serde(default)]
    pub commits: Vec<Commit>,
    /// GitLab gave up diffing (the commits are still listed).
    #[serde(default)]
    pub compare_timeout: bool,
}

/// `GET /projects/:id/pipelines/:pipeline_id/test_report_summary`
/// (https://docs.gitlab.com/api/pipelines/#get-a-test-report-summary-for-a-pipeline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReportSummary {
    pub total: TestReportTotal,
}

/// The counts of every suite together; `time` in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReportTotal {
    #[serde(default)]
    pub time: f64,
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub success: u64,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub skipped: u64,
    #[serde(default)]
    pub error: u64,
}

/// The environment a deployment went to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEnvironment {
    pub name: String,
}

/// One approval of a deployment (`POST /projects/:id/deployments/:deployment_id/approval`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentApproval {
    #[serde(default)]
    pub user: Option<User>,
    /// `approved` or `rejected`.
    pub status: String,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub comment: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! sample {
        ($file:literal) => {
            include_str!(concat!("../../../sim/samples/gitlab-api-samples/", $file))
        };
    }

    #[test]
    fn the_published_samples_parse() {
        let mrs: Vec<MergeRequest> = serde_json::from_str(sample!("commit-merge_requests-list-response.json")).unwrap();
        assert_eq!(mrs.len(), 1);
        assert_eq!((mrs[0].id, mrs[0].iid, mrs[0].project_id), (45, 1, 35));
        assert_eq!(mrs[0].sha.as_deref(), Some("af5b13261899fb2c0db30abdd0af8b07cb44fdc5"));
        assert!(mrs[0].is_open() && !mrs[0].draft);
        assert_eq!(mrs[0].author.as_ref().unwrap().username, "janedoe");
        assert_eq!(mrs[0].created_at, Some("2018-03-26T17:26:30.916Z".parse().unwrap()));

        let note: Note = serde_json::from_str(sample!("merge_request-note-get-response.json")).unwrap();
        assert_eq!((note.id, note.body.as_str(), note.noteable_iid), (301, "Comment for MR", Some(2)));
        assert_eq!(note.author.unwrap().username, "pipin");

        let job: Job = serde_json::from_str(sample!("job-get-response.json")).unwrap();
        assert_eq!(
            (job.id, job.name.as_str(), job.status.as_str(), job.ref_.as_str()),
            (8, "rubocop", "failed", "main")
        );
        assert_eq!(job.pipeline.as_ref().unwrap().id, 6);
        assert_eq!(job.duration, Some(0.465));
        assert_eq!(job.commit.unwrap().created_at, Some("2015-12-24T15:51:14Z".parse().unwrap()));

        let played: Job = serde_json::from_str(sample!("job-play-response.json")).unwrap();
        assert_eq!((played.id, played.status.as_str()), (1, "pending"));
        assert!(played.pipeline.is_none() && played.user.is_none() && played.started_at.is_none());

        let pipeline: Pipeline = serde_json::from_str(sample!("pipeline-get-response.json")).unwrap();
        assert_eq!((pipeline.id, pipeline.iid, pipeline.status.as_str()), (287, Some(144), "success"));
        assert_eq!(pipeline.duration, Some(34.0));

        let approval: DeploymentApproval = serde_json::from_str(sample!("deployment-approval-response.json")).unwrap();
        assert_eq!(approval.status, "approved");
        assert_eq!(approval.comment.as_deref(), Some("Looks good to me"));
        assert_eq!(approval.user.unwrap().username, "security-user-1");
    }
}
