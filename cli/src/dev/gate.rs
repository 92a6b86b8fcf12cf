//! The demo portal's change-gate page (`/dev/gate/...`, DESIGN.md "Local run"): plays a GitLab
//! pipeline of `acme/shop` through the change gate, one step per button.
//!
//! Every step is done the way the real systems would do it, over HTTP: the pipeline and its jobs
//! are made in the GitLab simulator through its control API; each job (`gatehouse:request`,
//! `gatehouse:verify`, `gatehouse:report`) calls Gatehouse's API with its own ID token from the
//! simulator, never with the demo's all-scope token; the approvals are the ServiceNow simulator's
//! (the Assess group, then the CAB), after which its Business Rule tells Gatehouse as
//! `infra/servicenow/src/business_rule/gatehouse_change_approval.js` does (`POST
//! /v1/webhooks/servicenow` with the demo token standing in for ServiceNow's webhook token).
//! Each answer shows what a user would look at: the jobs as GitLab shows them, the change as
//! ServiceNow shows it, the gate's decision and the merge request's note. A refusal from
//! Gatehouse's API is passed on as its problem+json.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::Error;
use domain::config::{Config, ServiceNowAuth};
use gitlab_sim::demo::{PROJECT_ID, PROJECT_PATH};
use http_api::{ApiError, JsonBody};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::with_headers;

mod view;

pub(super) const GATE_JS: &str = include_str!("gate.js");

/// The demo's pipelines get ids from here on (the simulator seeds 900001 and 900002, and jobs
/// 77001 and 77002), so they never meet the seeded ones.
const FIRST_PIPELINE_ID: u64 = 910_000;
const FIRST_JOB_ID: u64 = 780_000;
const FIRST_MR_IID: u64 = 100;
/// How many pipelines the page keeps (and lists).
const KEPT: usize = 10;

/// The jobs of a demo pipeline, in stage order: the component's three and the project's deploy
/// job (`infra/gitlab/component/templates/change-gate.yml`).
const JOB_NAMES: [&str; 4] = ["gatehouse:request", "gatehouse:verify", "deploy", "gatehouse:report"];
const REQUEST: usize = 0;
const VERIFY: usize = 1;
const DEPLOY: usize = 2;
const REPORT: usize = 3;

/// A pipeline the page started.
#[derive(Clone, Debug)]
struct Pipeline {
    id: u64,
    sha: String,
    environment: String,
    title: String,
    merge_request_iid: u64,
    jobs: [u64; 4],
    /// GitLab's pipeline status, as the demo's jobs left it.
    status: &'static str,
    /// The change's sys_id and number, once `gatehouse:request` got one.
    change: Option<(String, String)>,
}

#[derive(Clone)]
pub(super) struct GateDemo {
    /// Gatehouse itself, called over HTTP as a job would.
    gatehouse: Arc<str>,
    gitlab: Arc<str>,
    audience: Arc<str>,
    servicenow: Arc<str>,
    /// HTTP Basic credentials to read the change through ServiceNow's Table API, when the demo has them.
    servicenow_login: Option<(String, String)>,
    /// What ServiceNow's Business Rule sends as its bearer token: the demo token (scope webhook).
    servicenow_token: Arc<str>,
    http: reqwest::Client,
    pipelines: Arc<Mutex<BTreeMap<u64, Pipeline>>>,
    started: Arc<AtomicU64>,
}

/// Why a step did not happen: a domain error of the demo's own, or Gatehouse's problem+json
/// passed on as it was answered.
enum Refusal {
    Domain(Error),
    Problem(StatusCode, Value),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Domain(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Domain(e) => ApiError(e).into_response(),
            Refusal::Problem(status, body) => {
                let mut resp = with_headers(Json(body).into_response(), "application/problem+json");
                *resp.status_mut() = status;
                resp
            }
        }
    }
}

/// What a step did, in the words `gatehouse ci` or the approver would see, and the job's exit code.
struct Outcome {
    line: String,
    exit_code: Option<u8>,
}

fn outcome(line: String, exit_code: Option<u8>) -> Outcome {
    Outcome { line, exit_code }
}

/// The text of an answer's `error` (ServiceNow: `{"error": {"message", "detail"}}`; the GitLab
/// simulator: `{"error": "…"}` or `{"message": "…"}`).
fn error_text(body: &Value) -> String {
    let e = &body["error"];
    let parts = [e["message"].as_str(), e["detail"].as_str(), e.as_str(), body["message"].as_str()];
    let text: Vec<&str> = parts.into_iter().flatten().filter(|s| !s.is_empty()).collect();
    if text.is_empty() { "no reason given".into() } else { text.join(": ") }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(8)]
}

/// ServiceNow's `short_description` holds 160 characters.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

impl Start {
    fn checked(self) -> Result<(String, String), Error> {
        let environment = self.environment.map(|e| e.trim().to_string()).unwrap_or_else(|| "production".into());
        let ok = (1..=64).contains(&environment.len())
            && environment.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_./".contains(&c));
        if !ok {
            return Err(Error::invalid("environment", "must be a GitLab environment name (letters, digits, - _ . /)"));
        }
        let title = self.title.map(|t| t.trim().to_string()).unwrap_or_else(|| "Add the spring sale banner".into());
        if title.is_empty() || title.chars().count() > 100 || title.chars().any(char::is_control) {
            return Err(Error::invalid("title", "must be 1 to 100 printable characters"));
        }
        Ok((environment, title))
    }
}

impl GateDemo {
    fn pipeline(&self, id: u64) -> Result<Pipeline, Error> {
        let kept = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(&id).cloned().ok_or_else(|| Error::NotFound(format!("demo pipeline {id}")))
    }

    fn keep(&self, p: Pipeline) {
        let mut kept = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        kept.insert(p.id, p);
        while kept.len() > KEPT {
            kept.pop_first();
        }
    }

    fn pipeline_url(&self, p: &Pipeline) -> String {
        format!("{}/{PROJECT_PATH}/-/pipelines/{}", self.gitlab, p.id)
    }

    fn job_url(&self, job: u64) -> String {
        format!("{}/{PROJECT_PATH}/-/jobs/{job}", self.gitlab)
    }

    /// A call to a simulator's control API; its JSON answer (`null` when empty).
    async fn sim(&self, system: &str, method: Method, url: String, body: Option<Value>) -> Result<Value, Error> {
        let mut req = self.http.request(method, &url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| Error::upstream_caused(system, "cannot be reached", e))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            s if s.is_success() => Ok(body),
            StatusCode::CONFLICT => Err(Error::Conflict(format!("{system}: {}", error_text(&body)))),
            StatusCode::NOT_FOUND => Err(Error::NotFound(format!("{system}: {}", error_text(&body)))),
            s => Err(Error::upstream(system, format!("HTTP {}: {}", s.as_u16(), error_text(&body)))),
        }
    }

    async fn gitlab(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, Error> {
        self.sim("GitLab simulator", method, format!("{}{path}", self.gitlab), body).await
    }

    async fn set_job(&self, job: u64, status: &str) -> Result<(), Error> {
        let path = format!("/_sim/projects/{PROJECT_ID}/jobs/{job}/status");
        self.gitlab(Method::PUT, &path, Some(json!({ "status": status }))).await.map(drop)
    }

    async fn set_pipeline(&self, p: &mut Pipeline, status: &'static str) -> Result<(), Error> {
        let path = format!("/_sim/projects/{PROJECT_ID}/pipelines/{}/status", p.id);
        self.gitlab(Method::PUT, &path, Some(json!({ "status": status }))).await?;
        p.status = status;
        Ok(())
    }

    /// The job's GitLab CI ID token, as `id_tokens:` gives it to the job (DESIGN.md: `GET
    /// /_sim/id_token?job_id=N&aud=A`).
    async fn id_token(&self, job: u64) -> Result<String, Error> {
        let url = format!("{}/_sim/id_token", self.gitlab);
        let resp = self
            .http
            .get(url)
            .query(&[("job_id", job.to_string()), ("aud", self.audience.to_string())])
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Error::upstream_caused("GitLab simulator", "issued no ID token", e))?;
        let body: Value =
            resp.json().await.map_err(|e| Error::upstream_caused("GitLab simulator", "no ID token", e))?;
        body["token"].as_str().map(str::to_string).ok_or_else(|| Error::upstream("GitLab simulator", "no ID token"))
    }

    /// A call to Gatehouse's API with `token`: the status and JSON answer, or its problem+json as
    /// it came.
    async fn gatehouse(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), Refusal> {
        let mut req = self.http.request(method, format!("{}{path}", self.gatehouse)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| Error::upstream_caused("Gatehouse", "cannot be reached", e))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok((status, body))
        } else if body["title"].is_string() {
            Err(Refusal::Problem(status, body))
        } else {
            Err(Error::upstream("Gatehouse", format!("HTTP {}", status.as_u16())).into())
        }
    }

    /// As a job runs `gatehouse ci …`: running, then success on exit 0, else failed.
    async fn run_job<T>(&self, job: u64, work: impl Future<Output = Result<(T, u8), Refusal>>) -> Result<T, Refusal> {
        self.set_job(job, "running").await?;
        let done = work.await;
        let status = match &done {
            Ok((_, 0)) => "success",
            _ => "failed",
        };
        self.set_job(job, status).await?;
        done.map(|(value, _)| value)
    }

    /// A fresh commit of `acme/shop` with its merge request, and a pipeline on protected `main`
    /// with the gate's jobs and a deploy job for the environment.
    async fn start(&self, environment: String, title: String) -> Result<Pipeline, Error> {
        let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        // 40 hex digits of a SHA-256 of fresh random bytes: a commit no other pipeline has.
        let sha = domain::token::ApprovalToken::generate().hash().as_str()[..40].to_string();
        let first_job = FIRST_JOB_ID + n * 10;
        let p = Pipeline {
            id: FIRST_PIPELINE_ID + n,
            sha,
            environment,
            title,
            merge_request_iid: FIRST_MR_IID + n,
            jobs: [first_job + 1, first_job + 2, first_job + 3, first_job + 4],
            status: "running",
            change: None,
        };
        // The project again, in case the simulator was reset since the demo started.
        self.gitlab(Method::POST, "/_sim/projects", Some(json!({ "id": PROJECT_ID, "path": PROJECT_PATH }))).await?;
        let mr = json!({ "project_id": PROJECT_ID, "iid": p.merge_request_iid, "sha": p.sha, "title": p.title });
        self.gitlab(Method::POST, "/_sim/merge_requests", Some(mr)).await?;
        let pipeline =
            json!({ "project_id": PROJECT_ID, "id": p.id, "sha": p.sha, "ref": "main", "status": "running" });
        self.gitlab(Method::POST, "/_sim/pipelines", Some(pipeline)).await?;
        // The request job runs at once; verify is the blocking manual job Gatehouse plays; the
        // deploy and report jobs wait for the stages before them ("created").
        for (i, name) in JOB_NAMES.iter().enumerate() {
            let status = ["pending", "manual", "created", "created"][i];
            let mut job = json!({ "project_id": PROJECT_ID, "id": p.jobs[i], "pipeline_id": p.id, "name": name, "status": status });
            if i == DEPLOY {
                job["environment"] = json!(p.environment);
            }
            self.gitlab(Method::POST, "/_sim/jobs", Some(job)).await?;
        }
        Ok(p)
    }

    /// `gatehouse ci request` in `gatehouse:request`.
    async fn request(&self, p: &mut Pipeline) -> Result<Outcome, Refusal> {
        let token = self.id_token(p.jobs[REQUEST]).await?;
        let title = clip(&format!("Deploy {PROJECT_PATH} {} to {}: {}", short(&p.sha), p.environment, p.title), 160);
        let body = json!({
            "project_id": PROJECT_ID, "project_path": PROJECT_PATH, "sha": p.sha, "ref": "main",
            "environment": p.environment, "pipeline_id": p.id, "pipeline_url": self.pipeline_url(p),
            "title": title,
            "description": format!(
                "Deploy of {PROJECT_PATH} commit {} (main) to {}.\nCommit title: {}\nPipeline: {}\nRequested by GitLab job {}",
                p.sha, p.environment, p.title, self.pipeline_url(p), self.job_url(p.jobs[REQUEST])
            ),
        });
        let answer = self
            .run_job(p.jobs[REQUEST], async {
                let (status, answer) = self.gatehouse(Method::POST, "/v1/changes", &token, Some(&body)).await?;
                let code = if answer["decision"] == "blocked" { 1 } else { 0 };
                Ok(((status, answer, code), code))
            })
            .await;
        let (status, answer, code) = match answer {
            Ok(done) => done,
            Err(refusal) => {
                self.set_pipeline(p, "failed").await?;
                return Err(refusal);
            }
        };
        let (sys_id, number) = (text(&answer["sys_id"]), text(&answer["number"]));
        p.change = Some((sys_id, number.clone()));
        let reason = text(&answer["reason"]);
        let line = if code == 1 {
            self.set_pipeline(p, "failed").await?;
            format!("{number} blocked: {reason}")
        } else {
            let verb = if status == StatusCode::CREATED { "created" } else { "reused" };
            format!("{number} {verb} for {PROJECT_PATH} {} to {}: {reason}", short(&p.sha), p.environment)
        };
        Ok(outcome(line, Some(code)))
    }

    fn change_of(p: &Pipeline) -> Result<(String, String), Error> {
        p.change.clone().ok_or_else(|| Error::Conflict("there is no change yet: gatehouse:request asks for it".into()))
    }

    /// An approver acts in ServiceNow, then its Business Rule tells Gatehouse.
    async fn decide(&self, p: &Pipeline, step: &str) -> Result<Outcome, Refusal> {
        let (sys_id, number) = Self::change_of(p)?;
        let sn = |path: String| format!("{}{path}", self.servicenow);
        let record =
            self.sim("ServiceNow", Method::GET, sn(format!("/_sim/records/change_request/{sys_id}")), None).await?;
        let (state, who) =
            (text(&record["state"]), if step == "approve-assess" { "the Assess group" } else { "the CAB" });
        // Each group approves its own step: the Assess group in Assess (-4), the CAB in Authorize (-3).
        match (step, state.as_str()) {
            ("approve-assess", "-4") | ("approve-cab", "-3") | ("reject", _) => {}
            ("approve-assess", _) => {
                return Err(Error::Conflict(format!(
                    "{number} is not in Assess: the Assess group approves a change in Assess"
                ))
                .into());
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "{number} is not in Authorize: the CAB approves a change once the Assess group has"
                ))
                .into());
            }
        }
        let verb = if step == "reject" { "reject" } else { "approve" };
        let changed = self.sim("ServiceNow", Method::POST, sn(format!("/_sim/changes/{sys_id}/{verb}")), None).await?;
        let callback = json!({
            "sys_id": sys_id, "number": number, "approval": changed["approval"], "state": changed["state"],
        });
        self.gatehouse(Method::POST, "/v1/webhooks/servicenow", &self.servicenow_token, Some(&callback)).await?;
        let line = match step {
            "reject" => format!("{number} rejected in ServiceNow; its Business Rule told Gatehouse"),
            _ => format!("{number} approved by {who} in ServiceNow; its Business Rule told Gatehouse"),
        };
        Ok(outcome(line, None))
    }

    /// `gatehouse ci verify` in `gatehouse:verify` (played by Gatehouse on proceed, or by hand).
    async fn verify(&self, p: &mut Pipeline) -> Result<Outcome, Refusal> {
        let (_, number) = Self::change_of(p)?;
        let token = self.id_token(p.jobs[VERIFY]).await?;
        let path = self.status_path(p);
        let (answer, code) = self
            .run_job(p.jobs[VERIFY], async {
                let (_, answer) = self.gatehouse(Method::GET, &path, &token, None).await?;
                let code = match answer["decision"].as_str() {
                    Some("proceed") => 0,
                    Some("blocked") => 1,
                    _ => 2,
                };
                Ok(((answer, code), code))
            })
            .await?;
        let reason = text(&answer["reason"]);
        let line = match code {
            0 => format!("{number} approved and the window is open: proceed ({reason})"),
            1 => format!("{number} blocked: {reason}"),
            _ => format!("{number} waiting: {reason}; the job failed (exit 2): verify again once it is approved"),
        };
        if code == 1 {
            self.set_pipeline(p, "failed").await?;
        }
        Ok(outcome(line, Some(code)))
    }

    fn status_path(&self, p: &Pipeline) -> String {
        format!("/v1/changes/{PROJECT_ID}/{}?environment={}", p.sha, p.environment)
    }

    async fn job_status(&self, job: u64) -> Result<String, Error> {
        Ok(text(&self.gitlab(Method::GET, &format!("/_sim/jobs/{job}"), None).await?["status"]))
    }

    /// The project's deploy job: GitLab starts it only once `gatehouse:verify` passed.
    async fn deploy(&self, p: &Pipeline) -> Result<Outcome, Refusal> {
        let verify = self.job_status(p.jobs[VERIFY]).await?;
        if verify != "success" {
            return Err(Error::Conflict(format!(
                "the deploy job needs gatehouse:verify, which is {verify}: GitLab starts the deploy only once the gate said proceed"
            ))
            .into());
        }
        let deploy = self.job_status(p.jobs[DEPLOY]).await?;
        if deploy != "created" {
            return Err(Error::Conflict(format!("the deploy job has already run (it is {deploy})")).into());
        }
        self.set_job(p.jobs[DEPLOY], "running").await?;
        Ok(outcome(format!("deploy to {} started (job {})", p.environment, p.jobs[DEPLOY]), None))
    }

    /// The deploy ends, then `gatehouse ci report` in `gatehouse:report` puts its result on the change.
    async fn report(&self, p: &mut Pipeline, success: bool) -> Result<Outcome, Refusal> {
        let (_, number) = Self::change_of(p)?;
        let result = if success { "success" } else { "failed" };
        // A report may be sent again (its job retried) for the result the deploy ended with.
        match self.job_status(p.jobs[DEPLOY]).await?.as_str() {
            "running" => self.set_job(p.jobs[DEPLOY], result).await?,
            done if done == result => {}
            done @ ("success" | "failed") => {
                return Err(Error::Conflict(format!("the deploy job has already ended: {done}")).into());
            }
            _ => return Err(Error::Conflict("the deploy has not run: Deploy first".into()).into()),
        }
        let token = self.id_token(p.jobs[REPORT]).await?;
        let path = format!("/v1/changes/{PROJECT_ID}/{}/deployments", p.sha);
        let body = json!({
            "environment": p.environment, "status": result, "pipeline_url": self.pipeline_url(p),
            "job_url": self.job_url(p.jobs[DEPLOY]),
        });
        let answer = self
            .run_job(p.jobs[REPORT], async {
                let (_, answer) = self.gatehouse(Method::POST, &path, &token, Some(&body)).await?;
                Ok((answer, 0))
            })
            .await?;
        self.set_pipeline(p, if success { "success" } else { "failed" }).await?;
        let state = text(&answer["state"]["display"]);
        Ok(outcome(format!("{number} deploy {result} recorded on the change (state {state})"), Some(0)))
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    let mut resp = with_headers(Json(body).into_response(), "application/json");
    *resp.status_mut() = status;
    resp
}

fn pipeline_id(id: &str) -> Result<u64, Error> {
    id.parse().map_err(|_| Error::NotFound(format!("demo pipeline {id}")))
}

/// `GET /dev/gate/pipelines`: the pipelines the page started, newest first.
async fn list(State(g): State<GateDemo>) -> Response {
    let kept: Vec<Pipeline> = g.pipelines.lock().unwrap_or_else(|e| e.into_inner()).values().rev().cloned().collect();
    let mut views = Vec::with_capacity(kept.len());
    for p in &kept {
        views.push(g.view(p, None).await);
    }
    json_answer(StatusCode::OK, json!({ "pipelines": views }))
}

/// `POST /dev/gate/pipelines` with `{"environment", "title"}` (both optional): a new pipeline,
/// its request job not run yet.
async fn create(State(g): State<GateDemo>, body: JsonBody<Start>) -> Result<Response, Refusal> {
    let (environment, title) = body.value.checked()?;
    let p = g.start(environment, title).await?;
    g.keep(p.clone());
    Ok(json_answer(StatusCode::CREATED, g.view(&p, None).await))
}

async fn show(State(g): State<GateDemo>, Path(id): Path<String>) -> Result<Response, Refusal> {
    let p = g.pipeline(pipeline_id(&id)?)?;
    Ok(json_answer(StatusCode::OK, g.view(&p, None).await))
}

/// `POST /dev/gate/pipelines/{id}/{step}`: one step of the story; the pipeline as it is after it.
async fn step(State(g): State<GateDemo>, Path((id, step)): Path<(String, String)>) -> Result<Response, Refusal> {
    let mut p = g.pipeline(pipeline_id(&id)?)?;
    let done = match step.as_str() {
        "request" => g.request(&mut p).await,
        "approve-assess" | "approve-cab" | "reject" => g.decide(&p, &step).await,
        "verify" => g.verify(&mut p).await,
        "deploy" => g.deploy(&p).await,
        "report-success" => g.report(&mut p, true).await,
        "report-failed" => g.report(&mut p, false).await,
        _ => Err(Error::NotFound(format!("demo step {step}")).into()),
    };
    g.keep(p.clone());
    let done = done?;
    Ok(json_answer(StatusCode::OK, g.view(&p, Some((&step, done))).await))
}

async fn gate_js() -> Response {
    with_headers(GATE_JS.into_response(), "text/javascript; charset=utf-8")
}

/// `/dev/gate.js`, and with the demo's GitLab and ServiceNow, the page's endpoints.
pub(super) fn router(config: &Config, api_token: &str) -> Router {
    let js = Router::new().route("/dev/gate.js", get(gate_js));
    let (Some(gitlab), Some(sn)) = (&config.gitlab, &config.servicenow) else { return js };
    let servicenow_login = match &sn.auth {
        ServiceNowAuth::Basic { user, password } => Some((user.clone(), password.expose().to_string())),
        ServiceNowAuth::OAuthClientCredentials { .. } => None,
    };
    let demo = GateDemo {
        gatehouse: config.public_base_url.trim_end_matches('/').into(),
        gitlab: gitlab.url.trim_end_matches('/').into(),
        audience: gitlab.ci_audience.as_str().into(),
        servicenow: sn.instance_url.trim_end_matches('/').into(),
        servicenow_login,
        servicenow_token: api_token.into(),
        http: reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap_or_default(),
        pipelines: Default::default(),
        started: Default::default(),
    };
    js.merge(
        Router::new()
            .route("/dev/gate/pipelines", get(list).post(create))
            .route("/dev/gate/pipelines/{id}", get(show))
            .route("/dev/gate/pipelines/{id}/{step}", post(step))
            .with_state(demo),
    )
}

#[cfg(test)]
mod tests;
