//! A simulator of the part of GitLab's REST API v4 that Gatehouse uses, and of the ID tokens
//! GitLab gives CI/CD jobs, for tests and the demo.
//!
//! Served under `/api/v4` (answers in the shapes of the published samples in
//! `sim/samples/gitlab-api-samples/`, embedded at build time):
//!
//! | call | key in [`GitLabSim::calls`] |
//! |---|---|
//! | `GET /projects/:id/repository/commits/:sha/merge_requests` | `commit.merge_requests` |
//! | `GET /projects/:id/merge_requests/:iid/notes` (paginated: `page`, `per_page`, `sort`, `order_by`) | `notes.list` |
//! | `GET /projects/:id/merge_requests/:iid/notes/:note_id` | `notes.get` |
//! | `POST /projects/:id/merge_requests/:iid/notes` (`body`) | `notes.create` |
//! | `PUT /projects/:id/merge_requests/:iid/notes/:note_id` (`body`) | `notes.edit` |
//! | `GET /projects/:id/jobs/:job_id` | `jobs.get` |
//! | `POST /projects/:id/jobs/:job_id/play` (`job_variables_attributes`) | `jobs.play` |
//! | `GET /projects/:id/pipelines/:pipeline_id` | `pipelines.get` |
//! | `GET /projects/:id/pipelines/:pipeline_id/jobs` (`scope`) | `pipeline.jobs` |
//! | `GET /projects/:id/deployments` (`environment`, `status`) | `deployments.list` |
//! | `GET /projects/:id/deployments/:deployment_id` | `deployments.get` |
//! | `POST /projects/:id/deployments/:deployment_id/approval` (`status`, `comment`) | `deployments.approve` |
//!
//! `:id` is the numeric id or the URL-encoded path (`acme%2Fshop`). Parameters come as JSON, a
//! form or the query string. Every call needs the configured token in `PRIVATE-TOKEN` (or
//! `Authorization: Bearer`), else 401 `{"message":"401 Unauthorized"}`; unknown things answer 404
//! `{"message":"404 Not found"}`. Playing a job that cannot be played (not `when: manual`, or
//! `pending` / `running`) answers GitLab's 400 `{"message":"400 Bad request - Unplayable Job"}`
//! ([`UNPLAYABLE_JOB`]); a manual job that finished may be played again, as in GitLab.
//!
//! **ID tokens.** The simulator signs GitLab CI/CD ID tokens (RS256) with its own RSA key, made on
//! first use; its base URL is the issuer. Public, no token (key in [`GitLabSim::calls`]):
//! `GET /oauth/discovery/keys` and `GET /-/jwks` (the JWKS, `oauth.keys`) and
//! `GET /.well-known/openid-configuration` (`issuer`, `jwks_uri`, …; `openid.configuration`).
//! The claims are GitLab's (see [`id_token`](crate::id_token)): the job's project, pipeline,
//! `sha`, `ref`, `ref_protected`, and `environment`, `environment_protected` and
//! `deployment_tier` only for a job that names an environment.
//!
//! Control API (same port, no token), for use from another process:
//! `GET|PUT /_sim/faults` (JSON [`Faults`]), `GET /_sim/calls`, `POST /_sim/reset` (forget every
//! record and call count), seeding with `POST /_sim/projects` `{"id","path"}`,
//! `POST /_sim/merge_requests` `{"project_id","iid","sha","title"}`,
//! `POST /_sim/pipelines` `{"project_id","id","sha","ref","status","ref_protected"?}`,
//! `POST /_sim/jobs` `{"project_id","id","pipeline_id","name","status","environment"?,
//! "environment_protected"?}`, `POST /_sim/deployments` `{"project_id","id","environment","status"}`,
//! `POST /_sim/demo` (the [`demo`] records), `PUT /_sim/projects/{p}/jobs/{id}/status` and
//! `PUT /_sim/projects/{p}/pipelines/{id}/status` `{"status"}`; inspection with
//! `GET /_sim/jobs/{id}` and `GET /_sim/projects/{p}/jobs/{id}` (a [`SimJob`]: `id`, `status`,
//! `pipeline_id`, `name`, `play_count`, `sha`, `ref`, `ref_protected`, `environment`, …),
//! `GET /_sim/projects/{p}/merge_requests/{iid}/notes`, `GET /_sim/projects/{p}/deployments/{id}`
//! and `GET /_sim/projects/{p}/deployments/{id}/approvals`; and
//! `GET /_sim/id_token?job_id=N&aud=A[&exp_secs=S]` → `{"token"}` (404 for an unknown job;
//! `exp_secs` defaults to [`ID_TOKEN_TTL_SECS`], negative for an expired token).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use gitlab_sim::{GitLabSim, GitLabSimConfig};
//! let sim = GitLabSim::start("127.0.0.1:0".parse().unwrap(), GitLabSimConfig { token: "t".into() }).await?;
//! sim.seed_demo();
//! let token = sim.id_token(gitlab_sim::demo::JOB_ID, "gatehouse");
//! println!("{} {token}", sim.jwks_uri());
//! sim.stop().await;
//! # Ok(()) }
//! ```

mod api;
mod control;
pub mod id_token;
mod model;
mod repository;
mod samples;
mod shapes;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use sim_server::Served;

pub use api::UNPLAYABLE_JOB;
pub use id_token::ID_TOKEN_TTL_SECS;
pub use model::{
    Faults, PIPELINE_USER_EMAIL, PIPELINE_USER_ID, PIPELINE_USERNAME, SimApproval, SimDeployment, SimJob, SimNote,
};

use model::Data;
use state::{SimState, lock};

/// Fixed records of the demo ([`GitLabSim::seed_demo`]), matching DESIGN.md's "Local run": project
/// 4242 `acme/shop` with MR !7, and two pipelines on protected `main` (`ref_protected: "true"`),
/// each with a manual `gatehouse:verify` job that deploys to the protected environment
/// `production` (so their ID tokens carry `environment: production`, `environment_protected:
/// "true"` and `deployment_tier: production`).
pub mod demo {
    pub const PROJECT_ID: u64 = 4242;
    pub const PROJECT_PATH: &str = "acme/shop";
    /// The id of the `acme` group (`namespace_id` claim).
    pub const NAMESPACE_ID: u64 = 4240;
    pub const MERGE_REQUEST_IID: u64 = 7;
    /// The head of MR !7 and the commit of pipeline 900001.
    pub const SHA: &str = "af5b13261899fb2c0db30abdd0af8b07cb44fdc5";
    pub const MERGE_REQUEST_TITLE: &str = "Deploy shop 1.4.2";
    /// The ref of both pipelines: the default branch, protected.
    pub const REF: &str = "main";
    pub const PIPELINE_ID: u64 = 900001;
    /// The manual verify job of pipeline 900001: what Gatehouse plays when the gate says proceed.
    pub const JOB_ID: u64 = 77001;
    pub const JOB_NAME: &str = "gatehouse:verify";
    /// A second pipeline on `main`, at another commit, with its own manual verify job 77002.
    pub const SECOND_PIPELINE_ID: u64 = 900002;
    pub const SECOND_SHA: &str = "c0ffee5e3f0a9b1d2e4c6a8b0d2f4a6c8e0b2d4f";
    pub const SECOND_JOB_ID: u64 = 77002;
    /// A `blocked` deployment to `production`, the environment of both verify jobs (protected).
    pub const DEPLOYMENT_ID: u64 = 5001;
    pub const ENVIRONMENT: &str = "production";
}

/// The user the token belongs to: author of notes and approvals made through the simulator, and
/// the user of a job it played.
pub const SIM_USER_ID: u64 = 4243;
pub const SIM_USERNAME: &str = "gatehouse-bot";

#[derive(Clone, Debug)]
pub struct GitLabSimConfig {
    /// The personal access token every API call must carry.
    pub token: String,
}

impl Default for GitLabSimConfig {
    fn default() -> Self {
        GitLabSimConfig { token: "glpat-gatehouse-sim".into() }
    }
}

/// A running simulator. Dropping it aborts the server task; [`GitLabSim::stop`] shuts it down
/// gracefully.
pub struct GitLabSim {
    state: Arc<SimState>,
    served: Served,
}

impl GitLabSim {
    /// Binds `listen` (port 0 picks a free port) and serves in a background task.
    pub async fn start(listen: SocketAddr, config: GitLabSimConfig) -> std::io::Result<GitLabSim> {
        let (listener, base) = sim_server::bind(listen).await?;
        let state = Arc::new(SimState {
            config,
            base,
            faults: Mutex::default(),
            data: Mutex::default(),
            calls: Mutex::default(),
            key: OnceLock::new(),
        });
        let served = Served::spawn(listener, api::router(state.clone()), "gitlab-sim");
        tracing::info!(url = %state.base, "gitlab-sim listening");
        Ok(GitLabSim { state, served })
    }

    /// `http://127.0.0.1:PORT` (the API is below `/api/v4`).
    pub fn base_url(&self) -> String {
        self.state.base.clone()
    }

    pub fn token(&self) -> String {
        self.state.config.token.clone()
    }

    // ID tokens --------------------------------------------------------------------------------

    /// The `iss` of its ID tokens: the GitLab URL, i.e. [`GitLabSim::base_url`].
    pub fn issuer(&self) -> String {
        self.state.base.clone()
    }

    /// `{issuer}/oauth/discovery/keys`.
    pub fn jwks_uri(&self) -> String {
        format!("{}/oauth/discovery/keys", self.state.base)
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.state.base)
    }

    /// What the JWKS endpoints answer (`{"keys":[{"kty":"RSA","kid",…,"alg":"RS256"}]}`).
    /// Panics if no RSA key could be made.
    pub fn jwks(&self) -> Value {
        self.state.jwks().unwrap_or_else(|e| panic!("gitlab-sim: {e}"))
    }

    /// The `kid` in the header of every ID token it signs.
    pub fn kid(&self) -> String {
        self.state.signing_key().map(|k| k.kid.clone()).unwrap_or_else(|e| panic!("gitlab-sim: {e}"))
    }

    /// The ID token GitLab would give job `job_id` for audience `aud` (valid [`ID_TOKEN_TTL_SECS`]).
    /// Panics for an unknown job.
    pub fn id_token(&self, job_id: u64, aud: &str) -> String {
        self.try_id_token(job_id, aud, ID_TOKEN_TTL_SECS)
            .unwrap_or_else(|| panic!("gitlab-sim: no job {job_id} to sign an ID token for"))
    }

    /// The ID token of job `job_id` for `aud`, expiring `exp_secs` from now (negative: already
    /// expired); `None` for an unknown job. Panics if no RSA key could be made.
    pub fn try_id_token(&self, job_id: u64, aud: &str, exp_secs: i64) -> Option<String> {
        self.state.id_token(job_id, &[aud.to_string()], exp_secs).unwrap_or_else(|e| panic!("gitlab-sim: {e}"))
    }

    // Seeding ----------------------------------------------------------------------------------

    /// A project (its namespace, the path up to the last `/`, gets an id when first seen).
    pub fn add_project(&self, id: u64, path: &str) {
        self.state.data().add_project(id, path);
    }

    /// An open merge request whose head is `sha` (source branch `feature-{iid}`, target `main`);
    /// adds the project (path `group/project-{id}`) if unknown.
    pub fn add_merge_request(&self, project: u64, iid: u64, sha: &str, title: &str) {
        self.state.data().add_merge_request(project, iid, sha, title);
    }

    /// A pipeline on `ref_` at `sha` ("main" and the sha of a merge request of the project, or
    /// zeros, when empty). Its ref is protected if it is "main" (see
    /// [`GitLabSim::set_pipeline_ref_protected`]).
    pub fn add_pipeline(&self, project: u64, id: u64, sha: &str, ref_: &str, status: &str) {
        self.state.data().add_pipeline(project, id, sha, ref_, status);
    }

    /// A job of stage "deploy" in `pipeline_id` (created, status "running", if unknown). A job
    /// added as "manual" is `when: manual`: it can be played. It names no environment (see
    /// [`GitLabSim::set_job_environment`]).
    pub fn add_job(&self, project: u64, id: u64, pipeline_id: u64, name: &str, status: &str) {
        self.state.data().add_job(project, id, pipeline_id, name, status);
    }

    pub fn add_deployment(&self, project: u64, id: u64, environment: &str, status: &str) {
        self.state.data().add_deployment(project, id, environment, status);
    }

    /// A deployment of commit `sha` (e.g. `blocked`, waiting for approval in a protected environment).
    pub fn add_deployment_of(&self, project: u64, id: u64, environment: &str, status: &str, sha: &str) {
        let mut data = self.state.data();
        data.add_deployment(project, id, environment, status);
        if let Some(d) = data.deployments.get_mut(&(project, id)) {
            d.sha = sha.to_string();
        }
    }

    /// A note written by someone else (user "reviewer") on a merge request.
    pub fn add_note(&self, project: u64, mr_iid: u64, body: &str) -> Option<u64> {
        self.state.data().add_note(project, mr_iid, body, "reviewer").map(|n| n.id)
    }

    pub fn set_job_status(&self, project: u64, id: u64, status: &str) -> bool {
        match self.state.data().jobs.get_mut(&(project, id)) {
            Some(job) => {
                job.status = status.to_string();
                true
            }
            None => false,
        }
    }

    /// The environment job `id` deploys to (`None`: none, so its ID token has no `environment`);
    /// false if the job is unknown.
    pub fn set_job_environment(&self, project: u64, id: u64, environment: Option<&str>) -> bool {
        self.state.data().set_job_environment(project, id, environment)
    }

    /// Whether `environment` of `project` is protected (`environment_protected` claim).
    pub fn set_environment_protected(&self, project: u64, environment: &str, protected: bool) {
        self.state.data().set_environment_protected(project, environment, protected);
    }

    pub fn set_pipeline_status(&self, project: u64, id: u64, status: &str) -> bool {
        match self.state.data().pipelines.get_mut(&(project, id)) {
            Some(p) => {
                p.status = status.to_string();
                true
            }
            None => false,
        }
    }

    /// Whether the ref of pipeline `id` is protected (`ref_protected` claim); false if unknown.
    pub fn set_pipeline_ref_protected(&self, project: u64, id: u64, protected: bool) -> bool {
        match self.state.data().pipelines.get_mut(&(project, id)) {
            Some(p) => {
                p.protected = protected;
                true
            }
            None => false,
        }
    }

    /// Seeds the [`demo`] project, merge request, both pipelines with their manual verify jobs,
    /// and the blocked deployment.
    pub fn seed_demo(&self) {
        self.state.data().seed_demo();
    }

    /// Forgets every record and call count (the faults and the signing key stay).
    pub fn reset(&self) {
        *self.state.data() = Data::default();
        lock(&self.state.calls).clear();
    }

    // Inspection -------------------------------------------------------------------------------

    /// The notes of a merge request, oldest first.
    pub fn notes(&self, project: u64, mr_iid: u64) -> Vec<SimNote> {
        self.state.data().sim_notes(project, mr_iid)
    }

    pub fn job(&self, project: u64, id: u64) -> Option<SimJob> {
        let data = self.state.data();
        data.jobs.get(&(project, id)).map(|j| data.sim_job(j))
    }

    /// A job by its id alone (job ids are unique in a GitLab instance), as `GET /_sim/jobs/{id}`.
    pub fn job_by_id(&self, id: u64) -> Option<SimJob> {
        let data = self.state.data();
        data.job_by_id(id).map(|j| data.sim_job(j))
    }

    pub fn deployment(&self, project: u64, id: u64) -> Option<SimDeployment> {
        self.state.data().deployments.get(&(project, id)).map(|d| d.sim())
    }

    pub fn deployment_approvals(&self, project: u64, id: u64) -> Vec<SimApproval> {
        self.state.data().deployments.get(&(project, id)).map(|d| d.approvals.clone()).unwrap_or_default()
    }

    /// Calls received, by key (see the tables above; `other` for unknown routes). Every call is
    /// counted when it arrives, whatever its answer.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.state.calls).clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.state.faults) = faults;
    }

    pub fn faults(&self) -> Faults {
        lock(&self.state.faults).clone()
    }

    /// Graceful shutdown (gives up after 5 s and aborts).
    pub async fn stop(self) {
        self.served.stop().await;
    }
}
