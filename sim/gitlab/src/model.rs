//! The records the simulator keeps (projects, merge requests, notes, pipelines, jobs,
//! deployments) and the public views of them.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::demo;

/// The user who runs pipelines the simulator seeds (pushes to a branch), as in the job samples:
/// `root`, id 1, `admin@example.com`.
pub const PIPELINE_USER_ID: u64 = 1;
pub const PIPELINE_USERNAME: &str = "root";
pub const PIPELINE_USER_EMAIL: &str = "admin@example.com";

/// Fault switches. Settable with [`crate::GitLabSim::set_faults`] or `PUT /_sim/faults` (missing
/// JSON fields take their defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Answer this status (a 5xx, or 429) instead of serving the call.
    pub status: Option<u16>,
    /// With `status`: the `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
    /// How many more calls get the fault (each faulted call takes one); `None`: every call until
    /// the faults are cleared.
    pub remaining: Option<u32>,
    /// Only calls with this key (see [`crate::GitLabSim::calls`]) get the fault; `None`: every
    /// REST API call (`/api/v4`). The OpenID endpoints (`oauth.keys`, `openid.configuration`) get
    /// a fault only when named here.
    pub only: Option<String>,
    /// Serve the call (its effect happens), then answer `status` anyway: a lost response.
    pub after_processing: bool,
    /// Added before answering every API call.
    pub latency_ms: u64,
}

/// A note as the simulator keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimNote {
    pub id: u64,
    pub body: String,
    pub author: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A job as the simulator keeps it: its status ("manual" becomes "pending" when played), how
/// often it was played and the variables of the last play, and what its ID token says (the
/// pipeline's `sha`, `ref` and `ref_protected`, the job's `environment`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimJob {
    pub id: u64,
    pub project_id: u64,
    pub pipeline_id: u64,
    pub name: String,
    pub status: String,
    /// GitLab's `when` of the job: `manual` for a job seeded as manual (an action that can be
    /// played), else `on_success`.
    pub when: String,
    /// Successful plays (`POST …/play` answered 200).
    pub play_count: u32,
    pub variables: BTreeMap<String, String>,
    pub sha: String,
    #[serde(rename = "ref")]
    pub ref_: String,
    pub ref_protected: bool,
    /// The environment the job deploys to (`environment:` in `.gitlab-ci.yml`), if any.
    pub environment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimDeployment {
    pub id: u64,
    pub project_id: u64,
    pub environment: String,
    /// "blocked" until approved ("created" then), "canceled" when rejected.
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimApproval {
    pub username: String,
    pub status: String,
    pub comment: Option<String>,
    pub created_at: String,
}

#[derive(Default)]
pub(crate) struct Data {
    pub projects: BTreeMap<u64, String>,
    /// Namespace (group) ids by path, for the `namespace_id` claim.
    pub namespaces: BTreeMap<String, u64>,
    /// (project, environment name) of protected environments.
    pub protected_environments: BTreeSet<(u64, String)>,
    pub merge_requests: BTreeMap<(u64, u64), MergeRequest>,
    pub notes: Vec<Note>,
    pub pipelines: BTreeMap<(u64, u64), Pipeline>,
    pub jobs: BTreeMap<(u64, u64), Job>,
    pub deployments: BTreeMap<(u64, u64), Deployment>,
    /// Each project's history of its default branch, oldest first (see `repository.rs`).
    pub commits: BTreeMap<u64, Vec<crate::repository::SimCommit>>,
    /// Test report summaries by (project, pipeline), as `test_report_summary` answers them.
    pub test_reports: BTreeMap<(u64, u64), serde_json::Value>,
    pub next_mr_id: u64,
    pub next_note_id: u64,
}

pub(crate) struct MergeRequest {
    pub id: u64,
    pub iid: u64,
    pub project_id: u64,
    pub sha: String,
    pub title: String,
    pub created_at: Timestamp,
    /// `opened` or `merged` (see [`crate::GitLabSim::merge_merge_request`]).
    pub state: String,
    pub target_branch: String,
    pub merge_commit_sha: Option<String>,
    pub squash_commit_sha: Option<String>,
    pub updated_at: Timestamp,
}

pub(crate) struct Note {
    pub id: u64,
    pub project_id: u64,
    pub mr_iid: u64,
    pub mr_id: u64,
    pub body: String,
    pub author: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub(crate) struct Pipeline {
    pub id: u64,
    pub project_id: u64,
    pub sha: String,
    pub ref_: String,
    /// Whether `ref_` is a protected branch (the `ref_protected` claim).
    pub protected: bool,
    pub status: String,
    pub created_at: Timestamp,
}

pub(crate) struct Job {
    pub id: u64,
    pub project_id: u64,
    pub pipeline_id: u64,
    pub name: String,
    pub status: String,
    /// `when: manual`: an action, playable while `manual` (and again once finished).
    pub manual: bool,
    pub environment: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub play_count: u32,
    pub variables: BTreeMap<String, String>,
    /// Who runs the job: whoever played it last, else the pipeline's user.
    pub user: Option<String>,
}

pub(crate) struct Deployment {
    pub id: u64,
    pub project_id: u64,
    /// The commit deployed (empty when seeded without one).
    pub sha: String,
    pub environment: String,
    pub status: String,
    pub created_at: Timestamp,
    pub approvals: Vec<SimApproval>,
}

impl Deployment {
    pub fn sim(&self) -> SimDeployment {
        SimDeployment {
            id: self.id,
            project_id: self.project_id,
            environment: self.environment.clone(),
            status: self.status.clone(),
        }
    }
}

/// GitLab's job statuses after which a job has run.
pub(crate) fn finished(status: &str) -> bool {
    matches!(status, "success" | "failed" | "canceled" | "skipped")
}

impl Data {
    pub fn add_project(&mut self, id: u64, path: &str) {
        self.projects.insert(id, path.to_string());
        self.namespace_id(path);
    }

    pub fn ensure_project(&mut self, id: u64) {
        if !self.projects.contains_key(&id) {
            self.add_project(id, &format!("group/project-{id}"));
        }
    }

    /// The id of the namespace of a project path (`acme` of `acme/shop`), made up when first seen.
    pub fn namespace_id(&mut self, project_path: &str) -> u64 {
        let namespace = namespace_path(project_path).to_string();
        let next = 100 + self.namespaces.len() as u64;
        *self.namespaces.entry(namespace).or_insert(next)
    }

    pub fn add_merge_request(&mut self, project: u64, iid: u64, sha: &str, title: &str) {
        self.ensure_project(project);
        self.next_mr_id += 1;
        let id = 100 + self.next_mr_id;
        let mr = MergeRequest {
            id,
            iid,
            project_id: project,
            sha: sha.to_string(),
            title: title.to_string(),
            created_at: Timestamp::now(),
            state: "opened".into(),
            target_branch: "main".into(),
            merge_commit_sha: None,
            squash_commit_sha: None,
            updated_at: Timestamp::now(),
        };
        self.merge_requests.insert((project, iid), mr);
    }

    /// A pipeline; `ref_` "main" when empty. "main", the default branch, is protected: GitLab
    /// protects a project's default branch on its first push unless an admin turned that off
    /// (https://gitlab.com/gitlab-org/gitlab/-/issues/18979,
    /// https://docs.gitlab.com/user/project/repository/branches/default/); other refs are not.
    pub fn add_pipeline(&mut self, project: u64, id: u64, sha: &str, ref_: &str, status: &str) {
        self.ensure_project(project);
        let sha = if sha.is_empty() {
            self.merge_requests
                .values()
                .find(|m| m.project_id == project)
                .map(|m| m.sha.clone())
                .unwrap_or_else(|| "0".repeat(40))
        } else {
            sha.to_string()
        };
        let ref_ = if ref_.is_empty() { "main" } else { ref_ };
        let p = Pipeline {
            id,
            project_id: project,
            sha,
            ref_: ref_.to_string(),
            protected: ref_ == "main",
            status: status.to_string(),
            created_at: Timestamp::now(),
        };
        self.pipelines.insert((project, id), p);
    }

    pub fn add_job(&mut self, project: u64, id: u64, pipeline_id: u64, name: &str, status: &str) {
        self.ensure_project(project);
        if !self.pipelines.contains_key(&(project, pipeline_id)) {
            self.add_pipeline(project, pipeline_id, "", "", "running");
        }
        let job = Job {
            id,
            project_id: project,
            pipeline_id,
            name: name.to_string(),
            status: status.to_string(),
            manual: status == "manual",
            environment: None,
            created_at: Timestamp::now(),
            started_at: None,
            play_count: 0,
            variables: BTreeMap::new(),
            user: None,
        };
        self.jobs.insert((project, id), job);
    }

    pub fn add_deployment(&mut self, project: u64, id: u64, environment: &str, status: &str) {
        self.ensure_project(project);
        let d = Deployment {
            id,
            project_id: project,
            sha: String::new(),
            environment: environment.to_string(),
            status: status.to_string(),
            created_at: Timestamp::now(),
            approvals: Vec::new(),
        };
        self.deployments.insert((project, id), d);
    }

    pub fn add_note(&mut self, project: u64, mr_iid: u64, body: &str, author: &str) -> Option<&Note> {
        let mr_id = self.merge_requests.get(&(project, mr_iid))?.id;
        self.next_note_id += 1;
        let now = Timestamp::now();
        self.notes.push(Note {
            id: 300 + self.next_note_id,
            project_id: project,
            mr_iid,
            mr_id,
            body: body.to_string(),
            author: author.to_string(),
            created_at: now,
            updated_at: now,
        });
        self.notes.last()
    }

    /// The environment a job deploys to (`None`: it names none); false if the job is unknown.
    pub fn set_job_environment(&mut self, project: u64, id: u64, environment: Option<&str>) -> bool {
        match self.jobs.get_mut(&(project, id)) {
            Some(job) => {
                job.environment = environment.map(str::to_string);
                true
            }
            None => false,
        }
    }

    pub fn set_environment_protected(&mut self, project: u64, environment: &str, protected: bool) {
        let key = (project, environment.to_string());
        if protected {
            self.protected_environments.insert(key);
        } else {
            self.protected_environments.remove(&key);
        }
    }

    pub fn seed_demo(&mut self) {
        use demo::*;
        self.namespaces.insert(namespace_path(PROJECT_PATH).to_string(), NAMESPACE_ID);
        self.add_project(PROJECT_ID, PROJECT_PATH);
        self.add_merge_request(PROJECT_ID, MERGE_REQUEST_IID, SHA, MERGE_REQUEST_TITLE);
        self.set_environment_protected(PROJECT_ID, ENVIRONMENT, true);
        for (pipeline, sha, job) in [(PIPELINE_ID, SHA, JOB_ID), (SECOND_PIPELINE_ID, SECOND_SHA, SECOND_JOB_ID)] {
            self.add_pipeline(PROJECT_ID, pipeline, sha, REF, "running");
            self.add_job(PROJECT_ID, job, pipeline, JOB_NAME, "manual");
            self.set_job_environment(PROJECT_ID, job, Some(ENVIRONMENT));
        }
        self.add_deployment(PROJECT_ID, DEPLOYMENT_ID, ENVIRONMENT, "blocked");
    }

    pub fn sim_notes(&self, project: u64, mr_iid: u64) -> Vec<SimNote> {
        self.notes
            .iter()
            .filter(|n| n.project_id == project && n.mr_iid == mr_iid)
            .map(|n| SimNote {
                id: n.id,
                body: n.body.clone(),
                author: n.author.clone(),
                created_at: crate::state::time(n.created_at),
                updated_at: crate::state::time(n.updated_at),
            })
            .collect()
    }

    pub fn sim_job(&self, job: &Job) -> SimJob {
        let pipeline = self.pipelines.get(&(job.project_id, job.pipeline_id));
        SimJob {
            id: job.id,
            project_id: job.project_id,
            pipeline_id: job.pipeline_id,
            name: job.name.clone(),
            status: job.status.clone(),
            when: if job.manual { "manual" } else { "on_success" }.into(),
            play_count: job.play_count,
            variables: job.variables.clone(),
            sha: pipeline.map(|p| p.sha.clone()).unwrap_or_else(|| "0".repeat(40)),
            ref_: pipeline.map(|p| p.ref_.clone()).unwrap_or_else(|| "main".into()),
            ref_protected: pipeline.is_some_and(|p| p.protected),
            environment: job.environment.clone(),
        }
    }

    /// A job by its id alone (job ids are unique across a GitLab instance).
    pub fn job_by_id(&self, id: u64) -> Option<&Job> {
        self.jobs.values().find(|j| j.id == id)
    }

    /// A project by numeric id or by path.
    pub fn project(&self, id: &str) -> Option<(u64, String)> {
        if let Ok(n) = id.parse::<u64>() {
            return self.projects.get(&n).map(|p| (n, p.clone()));
        }
        self.projects.iter().find(|(_, p)| p.as_str() == id).map(|(n, p)| (*n, p.clone()))
    }
}

/// `acme` of `acme/shop`, `acme/platform` of `acme/platform/shop`.
pub(crate) fn namespace_path(project_path: &str) -> &str {
    project_path.rsplit_once('/').map_or(project_path, |(ns, _)| ns)
}
