//! A simulator of the part of GitLab's REST API v4 that Gatehouse uses, for tests and the demo.
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
//! | `GET /projects/:id/deployments/:deployment_id` | `deployments.get` |
//! | `POST /projects/:id/deployments/:deployment_id/approval` (`status`, `comment`) | `deployments.approve` |
//!
//! `:id` is the numeric id or the URL-encoded path (`acme%2Fshop`). Parameters come as JSON, a
//! form or the query string. Every call needs the configured token in `PRIVATE-TOKEN` (or
//! `Authorization: Bearer`), else 401 `{"message":"401 Unauthorized"}`; unknown things answer 404
//! `{"message":"404 Not found"}`; playing a job that is not `manual` answers the 403 sample.
//!
//! Control API (same port, no token), for use from another process:
//! `GET|PUT /_sim/faults` (JSON [`Faults`]), `GET /_sim/calls`, `POST /_sim/reset` (forget every
//! record and call count), seeding with `POST /_sim/projects` `{"id","path"}`,
//! `POST /_sim/merge_requests` `{"project_id","iid","sha","title"}`,
//! `POST /_sim/pipelines` `{"project_id","id","sha","ref","status"}`,
//! `POST /_sim/jobs` `{"project_id","id","pipeline_id","name","status"}`,
//! `POST /_sim/deployments` `{"project_id","id","environment","status"}`, `POST /_sim/demo`
//! (the [`demo`] records), `PUT /_sim/projects/{p}/jobs/{id}/status` and
//! `PUT /_sim/projects/{p}/pipelines/{id}/status` `{"status"}`, and inspection with
//! `GET /_sim/projects/{p}/merge_requests/{iid}/notes`, `GET /_sim/projects/{p}/jobs/{id}`,
//! `GET /_sim/projects/{p}/deployments/{id}` and `GET /_sim/projects/{p}/deployments/{id}/approvals`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use gitlab_sim::{GitLabSim, GitLabSimConfig};
//! let sim = GitLabSim::start("127.0.0.1:0".parse().unwrap(), GitLabSimConfig { token: "t".into() }).await?;
//! sim.add_project(4242, "acme/shop");
//! sim.add_merge_request(4242, 7, "af5b13261899fb2c0db30abdd0af8b07cb44fdc5", "Deploy shop 1.4.2");
//! println!("{}", sim.base_url());
//! sim.stop().await;
//! # Ok(()) }
//! ```

mod samples;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sim_server::Served;

/// Fixed records of the demo ([`GitLabSim::seed_demo`]), matching the example of DESIGN.md.
pub mod demo {
    pub const PROJECT_ID: u64 = 4242;
    pub const PROJECT_PATH: &str = "acme/shop";
    pub const MERGE_REQUEST_IID: u64 = 7;
    pub const SHA: &str = "af5b13261899fb2c0db30abdd0af8b07cb44fdc5";
    pub const MERGE_REQUEST_TITLE: &str = "Deploy shop 1.4.2";
    pub const PIPELINE_ID: u64 = 900001;
    /// The `deploy` job, `manual`: what Gatehouse plays when the change is approved.
    pub const JOB_ID: u64 = 77001;
    pub const JOB_NAME: &str = "deploy";
    /// A `blocked` deployment to `production`.
    pub const DEPLOYMENT_ID: u64 = 5001;
    pub const ENVIRONMENT: &str = "production";
}

/// The user the token belongs to: author of notes and approvals made through the simulator.
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

/// Fault switches. Settable with [`GitLabSim::set_faults`] or `PUT /_sim/faults` (missing JSON
/// fields take their defaults).
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
    /// Only calls with this key (see [`GitLabSim::calls`]) get the fault; `None`: every API call.
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
/// often it was played and the variables of the last play.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimJob {
    pub id: u64,
    pub project_id: u64,
    pub pipeline_id: u64,
    pub name: String,
    pub status: String,
    pub play_count: u32,
    pub variables: BTreeMap<String, String>,
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
        });
        let app = router(state.clone());
        let served = Served::spawn(listener, app, "gitlab-sim");
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

    // Seeding ----------------------------------------------------------------------------------

    pub fn add_project(&self, id: u64, path: &str) {
        self.state.data().add_project(id, path);
    }

    /// An open merge request whose head is `sha` (source branch `feature-{iid}`, target `main`);
    /// adds the project (path `group/project-{id}`) if unknown.
    pub fn add_merge_request(&self, project: u64, iid: u64, sha: &str, title: &str) {
        self.state.data().add_merge_request(project, iid, sha, title);
    }

    /// A pipeline on `ref_` at `sha` ("main" and the sha of a merge request of the project, or
    /// zeros, when empty).
    pub fn add_pipeline(&self, project: u64, id: u64, sha: &str, ref_: &str, status: &str) {
        self.state.data().add_pipeline(project, id, sha, ref_, status);
    }

    /// A job of stage "deploy" in `pipeline_id` (created, status "running", if unknown).
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

    pub fn set_pipeline_status(&self, project: u64, id: u64, status: &str) -> bool {
        match self.state.data().pipelines.get_mut(&(project, id)) {
            Some(p) => {
                p.status = status.to_string();
                true
            }
            None => false,
        }
    }

    /// Seeds the [`demo`] project, merge request, pipeline, manual job and blocked deployment.
    pub fn seed_demo(&self) {
        self.state.data().seed_demo();
    }

    /// Forgets every record and call count (the faults stay).
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
        self.state.data().jobs.get(&(project, id)).map(Job::sim)
    }

    pub fn deployment(&self, project: u64, id: u64) -> Option<SimDeployment> {
        self.state.data().deployments.get(&(project, id)).map(Deployment::sim)
    }

    pub fn deployment_approvals(&self, project: u64, id: u64) -> Vec<SimApproval> {
        self.state.data().deployments.get(&(project, id)).map(|d| d.approvals.clone()).unwrap_or_default()
    }

    /// API calls received, by key (see the table above; `other` for unknown routes). Every call
    /// is counted when it arrives, whatever its answer.
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

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

struct SimState {
    config: GitLabSimConfig,
    base: String,
    faults: Mutex<Faults>,
    data: Mutex<Data>,
    calls: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Shared = State<Arc<SimState>>;

#[derive(Default)]
struct Data {
    projects: BTreeMap<u64, String>,
    merge_requests: BTreeMap<(u64, u64), MergeRequest>,
    notes: Vec<Note>,
    pipelines: BTreeMap<(u64, u64), Pipeline>,
    jobs: BTreeMap<(u64, u64), Job>,
    deployments: BTreeMap<(u64, u64), Deployment>,
    next_mr_id: u64,
    next_note_id: u64,
}

struct MergeRequest {
    id: u64,
    iid: u64,
    project_id: u64,
    sha: String,
    title: String,
    created_at: Timestamp,
}

struct Note {
    id: u64,
    project_id: u64,
    mr_iid: u64,
    mr_id: u64,
    body: String,
    author: String,
    created_at: Timestamp,
    updated_at: Timestamp,
}

struct Pipeline {
    id: u64,
    project_id: u64,
    sha: String,
    ref_: String,
    status: String,
    created_at: Timestamp,
}

struct Job {
    id: u64,
    project_id: u64,
    pipeline_id: u64,
    name: String,
    status: String,
    created_at: Timestamp,
    started_at: Option<Timestamp>,
    play_count: u32,
    variables: BTreeMap<String, String>,
}

struct Deployment {
    id: u64,
    project_id: u64,
    /// The commit deployed (empty when seeded without one).
    sha: String,
    environment: String,
    status: String,
    created_at: Timestamp,
    approvals: Vec<SimApproval>,
}

impl Job {
    fn sim(&self) -> SimJob {
        SimJob {
            id: self.id,
            project_id: self.project_id,
            pipeline_id: self.pipeline_id,
            name: self.name.clone(),
            status: self.status.clone(),
            play_count: self.play_count,
            variables: self.variables.clone(),
        }
    }
}

impl Deployment {
    fn sim(&self) -> SimDeployment {
        SimDeployment {
            id: self.id,
            project_id: self.project_id,
            environment: self.environment.clone(),
            status: self.status.clone(),
        }
    }
}

impl Data {
    fn add_project(&mut self, id: u64, path: &str) {
        self.projects.insert(id, path.to_string());
    }

    fn ensure_project(&mut self, id: u64) {
        self.projects.entry(id).or_insert_with(|| format!("group/project-{id}"));
    }

    fn add_merge_request(&mut self, project: u64, iid: u64, sha: &str, title: &str) {
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
        };
        self.merge_requests.insert((project, iid), mr);
    }

    fn add_pipeline(&mut self, project: u64, id: u64, sha: &str, ref_: &str, status: &str) {
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
            status: status.to_string(),
            created_at: Timestamp::now(),
        };
        self.pipelines.insert((project, id), p);
    }

    fn add_job(&mut self, project: u64, id: u64, pipeline_id: u64, name: &str, status: &str) {
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
            created_at: Timestamp::now(),
            started_at: None,
            play_count: 0,
            variables: BTreeMap::new(),
        };
        self.jobs.insert((project, id), job);
    }

    fn add_deployment(&mut self, project: u64, id: u64, environment: &str, status: &str) {
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

    fn add_note(&mut self, project: u64, mr_iid: u64, body: &str, author: &str) -> Option<&Note> {
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

    fn seed_demo(&mut self) {
        use demo::*;
        self.add_project(PROJECT_ID, PROJECT_PATH);
        self.add_merge_request(PROJECT_ID, MERGE_REQUEST_IID, SHA, MERGE_REQUEST_TITLE);
        self.add_pipeline(PROJECT_ID, PIPELINE_ID, SHA, "main", "running");
        self.add_job(PROJECT_ID, JOB_ID, PIPELINE_ID, JOB_NAME, "manual");
        self.add_deployment(PROJECT_ID, DEPLOYMENT_ID, ENVIRONMENT, "blocked");
    }

    fn sim_notes(&self, project: u64, mr_iid: u64) -> Vec<SimNote> {
        self.notes
            .iter()
            .filter(|n| n.project_id == project && n.mr_iid == mr_iid)
            .map(|n| SimNote {
                id: n.id,
                body: n.body.clone(),
                author: n.author.clone(),
                created_at: time(n.created_at),
                updated_at: time(n.updated_at),
            })
            .collect()
    }

    /// A project by numeric id or by path.
    fn project(&self, id: &str) -> Option<(u64, String)> {
        if let Ok(n) = id.parse::<u64>() {
            return self.projects.get(&n).map(|p| (n, p.clone()));
        }
        self.projects.iter().find(|(_, p)| p.as_str() == id).map(|(n, p)| (*n, p.clone()))
    }
}

impl SimState {
    fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.data)
    }

    fn count(&self, key: &str) {
        *lock(&self.calls).entry(key.to_string()).or_default() += 1;
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let token = &self.config.token;
        if let Some(v) = headers.get("private-token").and_then(|v| v.to_str().ok()) {
            return v == token;
        }
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|v| v == token)
    }

    /// The fault this call gets, if any (taking one of `remaining`).
    fn take_fault(&self, key: &str, after_processing: bool) -> Option<(u16, Option<u64>)> {
        let mut f = lock(&self.faults);
        let status = f.status?;
        if f.after_processing != after_processing || f.only.as_deref().is_some_and(|k| k != key) {
            return None;
        }
        match f.remaining.as_mut() {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None => {}
        }
        Some((status, f.retry_after))
    }

    fn user(&self, username: &str) -> Value {
        let id = if username == SIM_USERNAME { SIM_USER_ID } else { 4300 + username.len() as u64 };
        json!({
            "id": id,
            "username": username,
            "name": if username == SIM_USERNAME { "Gatehouse".to_string() } else { username.to_string() },
            "state": "active",
            "avatar_url": format!("{}/uploads/-/system/user/avatar/{id}/avatar.png", self.base),
            "web_url": format!("{}/{username}", self.base),
        })
    }
}

/// Formats like GitLab: `2018-03-26T17:26:30.916Z`.
fn time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn message(status: StatusCode) -> Response {
    let text = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    json_response(status, json!({ "message": text.trim_end() }))
}

fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"message": "404 Not found"}))
}

fn bad_request(error: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "error": error }))
}

fn fault_response(status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = if status == StatusCode::TOO_MANY_REQUESTS {
        (status, [(header::CONTENT_TYPE, "text/plain")], "Retry later\n").into_response()
    } else {
        message(status)
    };
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Counts the call, waits the latency, applies faults and checks the token around `serve`.
async fn api(st: &SimState, key: &str, headers: &HeaderMap, serve: impl FnOnce(&SimState) -> Response) -> Response {
    st.count(key);
    tracing::debug!(key, "gitlab-sim call");
    let latency = lock(&st.faults).latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some((status, retry_after)) = st.take_fault(key, false) {
        return fault_response(status, retry_after);
    }
    if !st.authorized(headers) {
        return json_response(StatusCode::UNAUTHORIZED, json!({"message": "401 Unauthorized"}));
    }
    let resp = serve(st);
    if resp.status().is_success()
        && let Some((status, retry_after)) = st.take_fault(key, true)
    {
        return fault_response(status, retry_after);
    }
    resp
}

/// The parameters of a call: the query string, then a JSON object or form body over it.
fn params(query: Option<&str>, body: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    let form = |text: &[u8], out: &mut Map<String, Value>| {
        if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(text) {
            for (k, v) in pairs {
                out.insert(k, Value::String(v));
            }
        }
    };
    if let Some(q) = query {
        form(q.as_bytes(), &mut out);
    }
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &body[i..]).unwrap_or(&[]);
    if trimmed.first() == Some(&b'{') {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(trimmed) {
            out.extend(map);
        }
    } else if !trimmed.is_empty() {
        form(trimmed, &mut out);
    }
    out
}

fn param_str(params: &Map<String, Value>, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// GitLab's offset pagination: `page` (from 1), `per_page` (default 20, at most 100), with the
/// `X-Page`, `X-Per-Page`, `X-Next-Page`, `X-Prev-Page`, `X-Total` and `X-Total-Pages` headers.
fn paginate(items: Vec<Value>, params: &Map<String, Value>) -> Response {
    let number = |k: &str| param_str(params, k).and_then(|v| v.parse::<usize>().ok());
    let per_page = number("per_page").filter(|n| *n > 0).unwrap_or(20).min(100);
    let page = number("page").filter(|n| *n > 0).unwrap_or(1);
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let chunk: Vec<Value> = items.into_iter().skip((page - 1).saturating_mul(per_page)).take(per_page).collect();
    let mut resp = json_response(StatusCode::OK, Value::Array(chunk));
    let h = resp.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("x-page", page.to_string());
    set("x-per-page", per_page.to_string());
    set("x-next-page", if page < pages { (page + 1).to_string() } else { String::new() });
    set("x-prev-page", if page > 1 { (page - 1).to_string() } else { String::new() });
    set("x-total", total.to_string());
    set("x-total-pages", pages.to_string());
    resp
}

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

fn merge_request_json(st: &SimState, path: &str, mr: &MergeRequest) -> Value {
    let mut v = samples::MERGE_REQUEST.clone();
    let created = time(mr.created_at);
    v["id"] = json!(mr.id);
    v["iid"] = json!(mr.iid);
    v["project_id"] = json!(mr.project_id);
    v["source_project_id"] = json!(mr.project_id);
    v["target_project_id"] = json!(mr.project_id);
    v["title"] = json!(mr.title);
    v["created_at"] = json!(created);
    v["updated_at"] = json!(created);
    v["source_branch"] = json!(format!("feature-{}", mr.iid));
    v["sha"] = json!(mr.sha);
    v["author"]["web_url"] = json!(format!("{}/janedoe", st.base));
    v["author"]["avatar_url"] = json!(format!("{}/uploads/user/avatar/28/jane-doe-400-400.png", st.base));
    v["web_url"] = json!(format!("{}/{path}/merge_requests/{}", st.base, mr.iid));
    v
}

fn note_json(st: &SimState, n: &Note) -> Value {
    let mut v = samples::MR_NOTE.clone();
    let user = st.user(&n.author);
    v["id"] = json!(n.id);
    v["body"] = json!(n.body);
    v["author"]["id"] = user["id"].clone();
    v["author"]["username"] = json!(n.author);
    v["author"]["name"] = user["name"].clone();
    v["author"]["email"] = json!(format!("{}@example.com", n.author));
    v["created_at"] = json!(time(n.created_at));
    v["updated_at"] = json!(time(n.updated_at));
    v["noteable_id"] = json!(n.mr_id);
    v["noteable_iid"] = json!(n.mr_iid);
    v["project_id"] = json!(n.project_id);
    v
}

fn job_json(st: &SimState, data: &Data, path: &str, job: &Job, played: bool) -> Value {
    let pipeline = data.pipelines.get(&(job.project_id, job.pipeline_id));
    let sha = pipeline.map(|p| p.sha.clone()).unwrap_or_else(|| "0".repeat(40));
    let ref_ = pipeline.map(|p| p.ref_.clone()).unwrap_or_else(|| "main".into());
    let mut v = if played { samples::JOB_PLAYED.clone() } else { samples::JOB.clone() };
    v["id"] = json!(job.id);
    v["name"] = json!(job.name);
    v["status"] = json!(job.status);
    v["stage"] = json!("deploy");
    v["ref"] = json!(ref_);
    v["created_at"] = json!(time(job.created_at));
    v["started_at"] = json!(job.started_at.map(time));
    v["web_url"] = json!(format!("{}/{path}/-/jobs/{}", st.base, job.id));
    v["commit"]["id"] = json!(sha);
    v["commit"]["short_id"] = json!(sha.get(..8).unwrap_or(&sha));
    if !played {
        let finished = matches!(job.status.as_str(), "success" | "failed" | "canceled" | "skipped");
        v["finished_at"] = Value::Null;
        v["duration"] = Value::Null;
        v["artifacts_expire_at"] = Value::Null;
        if finished {
            v["finished_at"] = json!(time(Timestamp::now()));
        }
        v["pipeline"] = json!({
            "id": job.pipeline_id,
            "project_id": job.project_id,
            "ref": ref_,
            "sha": sha,
            "status": pipeline.map(|p| p.status.clone()).unwrap_or_else(|| "running".into()),
        });
        v["user"]["web_url"] = json!(format!("{}/root", st.base));
    }
    v
}

fn pipeline_json(st: &SimState, path: &str, p: &Pipeline) -> Value {
    let mut v = samples::PIPELINE_GET.clone();
    let created = time(p.created_at);
    v["id"] = json!(p.id);
    v["iid"] = json!(p.id % 100_000);
    v["project_id"] = json!(p.project_id);
    v["sha"] = json!(p.sha);
    v["ref"] = json!(p.ref_);
    v["status"] = json!(p.status);
    v["created_at"] = json!(created);
    v["updated_at"] = json!(created);
    v["started_at"] = json!(created);
    let finished = matches!(p.status.as_str(), "success" | "failed" | "canceled" | "skipped");
    v["finished_at"] = if finished { json!(time(Timestamp::now())) } else { Value::Null };
    if !finished {
        v["duration"] = Value::Null;
    }
    v["web_url"] = json!(format!("{}/{path}/-/pipelines/{}", st.base, p.id));
    v["user"]["web_url"] = json!(format!("{}/root", st.base));
    let text = match p.status.as_str() {
        "success" => "passed",
        other => other,
    };
    let ds = &mut v["detailed_status"];
    ds["icon"] = json!(format!("status_{}", p.status));
    ds["text"] = json!(text);
    ds["label"] = json!(text);
    ds["group"] = json!(p.status);
    ds["tooltip"] = json!(text);
    ds["details_path"] = json!(format!("/{path}/-/pipelines/{}", p.id));
    ds["favicon"] = json!(format!("/assets/ci_favicons/favicon_status_{}.png", p.status));
    v
}

fn approval_json(st: &SimState, a: &SimApproval) -> Value {
    let mut v = samples::APPROVAL.clone();
    v["user"] = st.user(&a.username);
    v["status"] = json!(a.status);
    v["created_at"] = json!(a.created_at);
    v["comment"] = json!(a.comment);
    v
}

fn deployment_json(st: &SimState, d: &Deployment) -> Value {
    json!({
        "id": d.id,
        "iid": d.id % 1000,
        "status": d.status,
        "sha": d.sha,
        "created_at": time(d.created_at),
        "updated_at": time(d.created_at),
        "environment": {"id": 9, "name": d.environment},
        "pending_approval_count": if d.status == "blocked" { 1 } else { 0 },
        "approvals": d.approvals.iter().map(|a| approval_json(st, a)).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------------------------
// Router and handlers
// ---------------------------------------------------------------------------------------------

fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/api/v4/projects/{id}/repository/commits/{sha}/merge_requests", get(commit_merge_requests))
        .route("/api/v4/projects/{id}/merge_requests/{iid}/notes", get(list_notes).post(create_note))
        .route("/api/v4/projects/{id}/merge_requests/{iid}/notes/{note_id}", get(get_note).put(edit_note))
        .route("/api/v4/projects/{id}/jobs/{job_id}", get(get_job))
        .route("/api/v4/projects/{id}/jobs/{job_id}/play", post(play_job))
        .route("/api/v4/projects/{id}/pipelines/{pipeline_id}", get(get_pipeline))
        .route("/api/v4/projects/{id}/pipelines/{pipeline_id}/jobs", get(pipeline_jobs))
        .route("/api/v4/projects/{id}/deployments", get(list_deployments))
        .route("/api/v4/projects/{id}/deployments/{deployment_id}", get(get_deployment))
        .route("/api/v4/projects/{id}/deployments/{deployment_id}/approval", post(approve_deployment))
        .route("/_sim/faults", get(control_get_faults).put(control_put_faults))
        .route("/_sim/calls", get(control_calls))
        .route("/_sim/reset", post(control_reset))
        .route("/_sim/demo", post(control_demo))
        .route("/_sim/projects", post(control_add_project))
        .route("/_sim/merge_requests", post(control_add_merge_request))
        .route("/_sim/pipelines", post(control_add_pipeline))
        .route("/_sim/jobs", post(control_add_job))
        .route("/_sim/deployments", post(control_add_deployment))
        .route("/_sim/projects/{p}/merge_requests/{iid}/notes", get(control_notes))
        .route("/_sim/projects/{p}/jobs/{id}", get(control_job))
        .route("/_sim/projects/{p}/jobs/{id}/status", put(control_job_status))
        .route("/_sim/projects/{p}/pipelines/{id}/status", put(control_pipeline_status))
        .route("/_sim/projects/{p}/deployments/{id}", get(control_deployment))
        .route("/_sim/projects/{p}/deployments/{id}/approvals", get(control_approvals))
        .fallback(fallback)
        .with_state(state)
}

async fn fallback(State(st): Shared, headers: HeaderMap) -> Response {
    api(&st, "other", &headers, |_| not_found()).await
}

async fn commit_merge_requests(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, sha)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    api(&st, "commit.merge_requests", &headers, |st| {
        let data = st.data();
        let Some((project, path)) = data.project(&id) else { return not_found() };
        let items = data
            .merge_requests
            .values()
            .filter(|m| m.project_id == project && m.sha == sha)
            .map(|m| merge_request_json(st, &path, m))
            .collect();
        paginate(items, &params(query.as_deref(), &[]))
    })
    .await
}

async fn pipeline_jobs(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, pipeline_id)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
) -> Response {
    api(&st, "pipeline.jobs", &headers, |st| {
        let data = st.data();
        let Some((project, path)) = data.project(&id) else { return not_found() };
        if !data.pipelines.contains_key(&(project, pipeline_id)) {
            return not_found();
        }
        let p = params(query.as_deref(), &[]);
        // `scope` (or `scope[]`) filters by status, as GitLab does.
        let scope = p.get("scope").or_else(|| p.get("scope[]")).and_then(Value::as_str).map(str::to_string);
        let items = data
            .jobs
            .values()
            .filter(|j| j.project_id == project && j.pipeline_id == pipeline_id)
            .filter(|j| scope.as_deref().is_none_or(|s| s == j.status))
            .map(|j| job_json(st, &data, &path, j, false))
            .collect();
        paginate(items, &p)
    })
    .await
}

async fn list_notes(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, iid)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
) -> Response {
    api(&st, "notes.list", &headers, |st| {
        let data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        if !data.merge_requests.contains_key(&(project, iid)) {
            return not_found();
        }
        let params = params(query.as_deref(), &[]);
        let mut notes: Vec<&Note> = data.notes.iter().filter(|n| n.project_id == project && n.mr_iid == iid).collect();
        let by_updated = param_str(&params, "order_by").as_deref() == Some("updated_at");
        notes.sort_by_key(|n| (if by_updated { n.updated_at } else { n.created_at }, n.id));
        // GitLab lists notes newest first unless asked otherwise.
        if param_str(&params, "sort").as_deref() != Some("asc") {
            notes.reverse();
        }
        let items = notes.into_iter().map(|n| note_json(st, n)).collect();
        paginate(items, &params)
    })
    .await
}

async fn get_note(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, iid, note_id)): Path<(String, u64, u64)>,
) -> Response {
    api(&st, "notes.get", &headers, |st| {
        let data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        match data.notes.iter().find(|n| n.project_id == project && n.mr_iid == iid && n.id == note_id) {
            Some(n) => json_response(StatusCode::OK, note_json(st, n)),
            None => not_found(),
        }
    })
    .await
}

async fn create_note(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, iid)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    api(&st, "notes.create", &headers, |st| {
        let mut data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        if !data.merge_requests.contains_key(&(project, iid)) {
            return not_found();
        }
        let Some(text) = param_str(&params(query.as_deref(), &body), "body").filter(|b| !b.trim().is_empty()) else {
            return bad_request("body is missing");
        };
        match data.add_note(project, iid, &text, SIM_USERNAME) {
            Some(n) => json_response(StatusCode::CREATED, note_json(st, n)),
            None => not_found(),
        }
    })
    .await
}

async fn edit_note(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, iid, note_id)): Path<(String, u64, u64)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    api(&st, "notes.edit", &headers, |st| {
        let mut data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        let Some(text) = param_str(&params(query.as_deref(), &body), "body").filter(|b| !b.trim().is_empty()) else {
            return bad_request("body is missing");
        };
        let Some(note) = data.notes.iter_mut().find(|n| n.project_id == project && n.mr_iid == iid && n.id == note_id)
        else {
            return not_found();
        };
        if note.author != SIM_USERNAME {
            return json_response(StatusCode::FORBIDDEN, samples::FORBIDDEN_BODY.clone());
        }
        note.body = text;
        note.updated_at = Timestamp::now();
        json_response(StatusCode::OK, note_json(st, note))
    })
    .await
}

async fn get_job(State(st): Shared, headers: HeaderMap, Path((id, job_id)): Path<(String, u64)>) -> Response {
    api(&st, "jobs.get", &headers, |st| {
        let data = st.data();
        let Some((project, path)) = data.project(&id) else { return not_found() };
        match data.jobs.get(&(project, job_id)) {
            Some(job) => json_response(StatusCode::OK, job_json(st, &data, &path, job, false)),
            None => not_found(),
        }
    })
    .await
}

async fn play_job(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, job_id)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    api(&st, "jobs.play", &headers, |st| {
        let mut data = st.data();
        let Some((project, path)) = data.project(&id) else { return not_found() };
        let params = params(query.as_deref(), &body);
        let Some(job) = data.jobs.get_mut(&(project, job_id)) else { return not_found() };
        if job.status != "manual" {
            return json_response(StatusCode::FORBIDDEN, samples::FORBIDDEN_BODY.clone());
        }
        job.status = "pending".into();
        job.play_count += 1;
        job.variables = params
            .get("job_variables_attributes")
            .and_then(Value::as_array)
            .map(|vars| {
                vars.iter()
                    .filter_map(|v| Some((v.get("key")?.as_str()?.to_string(), v.get("value")?.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let data = &*data;
        let job = &data.jobs[&(project, job_id)];
        json_response(StatusCode::OK, job_json(st, data, &path, job, true))
    })
    .await
}

async fn get_pipeline(State(st): Shared, headers: HeaderMap, Path((id, pipeline_id)): Path<(String, u64)>) -> Response {
    api(&st, "pipelines.get", &headers, |st| {
        let data = st.data();
        let Some((project, path)) = data.project(&id) else { return not_found() };
        match data.pipelines.get(&(project, pipeline_id)) {
            Some(p) => json_response(StatusCode::OK, pipeline_json(st, &path, p)),
            None => not_found(),
        }
    })
    .await
}

/// `environment` and `status` filter, as in GitLab.
async fn list_deployments(
    State(st): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    api(&st, "deployments.list", &headers, |st| {
        let data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        let p = params(query.as_deref(), &[]);
        let want = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
        let (environment, status) = (want("environment"), want("status"));
        let items = data
            .deployments
            .values()
            .filter(|d| d.project_id == project)
            .filter(|d| environment.as_deref().is_none_or(|e| e == d.environment))
            .filter(|d| status.as_deref().is_none_or(|s| s == d.status))
            .map(|d| deployment_json(st, d))
            .collect();
        paginate(items, &p)
    })
    .await
}

async fn get_deployment(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, deployment_id)): Path<(String, u64)>,
) -> Response {
    api(&st, "deployments.get", &headers, |st| {
        let data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        match data.deployments.get(&(project, deployment_id)) {
            Some(d) => json_response(StatusCode::OK, deployment_json(st, d)),
            None => not_found(),
        }
    })
    .await
}

/// Approves or rejects as the token's user. As in GitLab, a user has one approval per deployment:
/// approving again updates it. A deployment that is no longer blocked takes no new approval.
async fn approve_deployment(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, deployment_id)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    api(&st, "deployments.approve", &headers, |st| {
        let mut data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        let params = params(query.as_deref(), &body);
        let Some(deployment) = data.deployments.get_mut(&(project, deployment_id)) else { return not_found() };
        let status = match param_str(&params, "status").as_deref() {
            Some(s @ ("approved" | "rejected")) => s.to_string(),
            Some(_) => return bad_request("status does not have a valid value"),
            None => return bad_request("status is missing"),
        };
        let comment = param_str(&params, "comment");
        let existing = deployment.approvals.iter().position(|a| a.username == SIM_USERNAME);
        if existing.is_none() && deployment.status != "blocked" {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"message": "400 Bad request - This deployment is not waiting for approvals."}),
            );
        }
        let approval = SimApproval {
            username: SIM_USERNAME.into(),
            status: status.clone(),
            comment,
            created_at: time(Timestamp::now()),
        };
        match existing {
            Some(i) => deployment.approvals[i] = approval.clone(),
            None => deployment.approvals.push(approval.clone()),
        }
        deployment.status = if status == "approved" { "created".into() } else { "canceled".into() };
        json_response(StatusCode::CREATED, approval_json(st, &approval))
    })
    .await
}

// Control API ---------------------------------------------------------------------------------

fn control_error(message: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "error": message }))
}

fn control_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))
}

async fn control_get_faults(State(st): Shared) -> Json<Faults> {
    Json(lock(&st.faults).clone())
}

async fn control_put_faults(State(st): Shared, body: Bytes) -> Response {
    match control_body::<Faults>(&body) {
        Ok(f) => {
            *lock(&st.faults) = f.clone();
            Json(f).into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_calls(State(st): Shared) -> Json<BTreeMap<String, u64>> {
    Json(lock(&st.calls).clone())
}

async fn control_reset(State(st): Shared) -> StatusCode {
    *st.data() = Data::default();
    lock(&st.calls).clear();
    StatusCode::NO_CONTENT
}

async fn control_demo(State(st): Shared) -> StatusCode {
    st.data().seed_demo();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct NewProject {
    id: u64,
    path: String,
}

#[derive(Deserialize)]
struct NewMergeRequest {
    project_id: u64,
    iid: u64,
    sha: String,
    title: String,
}

#[derive(Deserialize)]
struct NewPipeline {
    project_id: u64,
    id: u64,
    #[serde(default)]
    sha: String,
    #[serde(default, rename = "ref")]
    ref_: String,
    #[serde(default = "running")]
    status: String,
}

#[derive(Deserialize)]
struct NewJob {
    project_id: u64,
    id: u64,
    pipeline_id: u64,
    name: String,
    #[serde(default = "manual")]
    status: String,
}

#[derive(Deserialize)]
struct NewDeployment {
    project_id: u64,
    id: u64,
    environment: String,
    #[serde(default = "blocked")]
    status: String,
}

#[derive(Deserialize)]
struct NewStatus {
    status: String,
}

fn running() -> String {
    "running".into()
}

fn manual() -> String {
    "manual".into()
}

fn blocked() -> String {
    "blocked".into()
}

async fn control_add_project(State(st): Shared, body: Bytes) -> Response {
    match control_body::<NewProject>(&body) {
        Ok(p) => {
            st.data().add_project(p.id, &p.path);
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_add_merge_request(State(st): Shared, body: Bytes) -> Response {
    match control_body::<NewMergeRequest>(&body) {
        Ok(m) => {
            st.data().add_merge_request(m.project_id, m.iid, &m.sha, &m.title);
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_add_pipeline(State(st): Shared, body: Bytes) -> Response {
    match control_body::<NewPipeline>(&body) {
        Ok(p) => {
            st.data().add_pipeline(p.project_id, p.id, &p.sha, &p.ref_, &p.status);
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_add_job(State(st): Shared, body: Bytes) -> Response {
    match control_body::<NewJob>(&body) {
        Ok(j) => {
            st.data().add_job(j.project_id, j.id, j.pipeline_id, &j.name, &j.status);
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_add_deployment(State(st): Shared, body: Bytes) -> Response {
    match control_body::<NewDeployment>(&body) {
        Ok(d) => {
            st.data().add_deployment(d.project_id, d.id, &d.environment, &d.status);
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_notes(State(st): Shared, Path((p, iid)): Path<(u64, u64)>) -> Json<Vec<SimNote>> {
    Json(st.data().sim_notes(p, iid))
}

async fn control_job(State(st): Shared, Path((p, id)): Path<(u64, u64)>) -> Response {
    match st.data().jobs.get(&(p, id)) {
        Some(job) => Json(job.sim()).into_response(),
        None => not_found(),
    }
}

async fn control_job_status(State(st): Shared, Path((p, id)): Path<(u64, u64)>, body: Bytes) -> Response {
    let status = match control_body::<NewStatus>(&body) {
        Ok(s) => s.status,
        Err(e) => return control_error(e),
    };
    match st.data().jobs.get_mut(&(p, id)) {
        Some(job) => {
            job.status = status;
            Json(job.sim()).into_response()
        }
        None => not_found(),
    }
}

async fn control_pipeline_status(State(st): Shared, Path((p, id)): Path<(u64, u64)>, body: Bytes) -> Response {
    let status = match control_body::<NewStatus>(&body) {
        Ok(s) => s.status,
        Err(e) => return control_error(e),
    };
    match st.data().pipelines.get_mut(&(p, id)) {
        Some(pipeline) => {
            pipeline.status = status;
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(),
    }
}

async fn control_deployment(State(st): Shared, Path((p, id)): Path<(u64, u64)>) -> Response {
    match st.data().deployments.get(&(p, id)) {
        Some(d) => Json(d.sim()).into_response(),
        None => not_found(),
    }
}

async fn control_approvals(State(st): Shared, Path((p, id)): Path<(u64, u64)>) -> Json<Vec<SimApproval>> {
    Json(st.data().deployments.get(&(p, id)).map(|d| d.approvals.clone()).unwrap_or_default())
}
