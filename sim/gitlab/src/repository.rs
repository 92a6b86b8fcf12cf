//! What a release holds: each project's history (one branch, oldest first), the compare endpoint
//! over it, merged merge requests, and pipelines' test report summaries — with their seeding and
//! control routes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::GitLabSim;
use crate::model::Data;
use crate::shapes::merge_request_json;
use crate::state::{Shared, SimState, api, json_response, paginate, param_str, params, time};

/// A commit of a project's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCommit {
    pub id: String,
    pub title: String,
    pub author_name: String,
    pub created_at: Timestamp,
}

pub(crate) fn routes() -> Router<std::sync::Arc<SimState>> {
    Router::new()
        .route("/api/v4/projects/{id}/repository/compare", get(compare))
        .route("/api/v4/projects/{id}/merge_requests", get(list_merge_requests))
        .route("/api/v4/projects/{id}/pipelines/{pipeline_id}/test_report_summary", get(test_report_summary))
        .route("/_sim/commits", post(control_add_commit))
        .route("/_sim/projects/{p}/merge_requests/{iid}/merge", post(control_merge))
        .route("/_sim/projects/{p}/pipelines/{id}/test_report_summary", put(control_test_report))
}

/// GitLab's `not_found!("Ref")` for a compare with an unknown commit (lib/api/repositories.rb).
fn ref_not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"message": "404 Ref Not Found"}))
}

fn project_not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"message": "404 Project Not Found"}))
}

fn commit_json(st: &SimState, path: &str, c: &SimCommit, parent: Option<&SimCommit>) -> Value {
    let at = time(c.created_at);
    json!({
        "id": c.id,
        "short_id": c.id.get(..8).unwrap_or(&c.id),
        "created_at": at,
        "parent_ids": parent.map(|p| vec![p.id.clone()]).unwrap_or_default(),
        "title": c.title,
        "message": format!("{}\n", c.title),
        "author_name": c.author_name,
        "author_email": format!("{}@example.com", c.author_name.to_lowercase().replace(' ', ".")),
        "authored_date": at,
        "committer_name": c.author_name,
        "committer_email": format!("{}@example.com", c.author_name.to_lowercase().replace(' ', ".")),
        "committed_date": at,
        "trailers": {},
        "web_url": format!("{}/{path}/-/commit/{}", st.base, c.id),
    })
}

/// `GET /projects/:id/repository/compare?from=&to=`: the commits after `from` up to `to`, oldest
/// first, as GitLab lists them; both must be commits of the history
/// (https://docs.gitlab.com/api/repositories/#compare-branches-tags-or-commits).
async fn compare(State(st): Shared, headers: HeaderMap, Path(id): Path<String>, RawQuery(query): RawQuery) -> Response {
    api(&st, "repository.compare", &headers, |st| {
        let data = st.data();
        let Some((project, path)) = data.project(&id) else { return project_not_found() };
        let p = params(query.as_deref(), &[]);
        let (Some(from), Some(to)) = (param_str(&p, "from"), param_str(&p, "to")) else {
            return json_response(StatusCode::BAD_REQUEST, json!({"error": "from is missing, to is missing"}));
        };
        let history = data.commits.get(&project).map(Vec::as_slice).unwrap_or_default();
        let at = |sha: &str| history.iter().position(|c| c.id == sha);
        let (Some(i), Some(j)) = (at(&from), at(&to)) else { return ref_not_found() };
        let range = if i < j { &history[i + 1..=j] } else { &[][..] };
        let commits: Vec<Value> = range
            .iter()
            .map(|c| {
                let k = at(&c.id).unwrap_or(0);
                commit_json(st, &path, c, k.checked_sub(1).map(|k| &history[k]))
            })
            .collect();
        json_response(
            StatusCode::OK,
            json!({
                "commit": commits.last().cloned(),
                "commits": commits,
                "diffs": [],
                "compare_timeout": false,
                "compare_same_ref": from == to,
                "web_url": format!("{}/{path}/-/compare/{from}...{to}", st.base),
            }),
        )
    })
    .await
}

/// `GET /projects/:id/merge_requests` with `state`, `target_branch` and `updated_after`, newest
/// first (https://docs.gitlab.com/api/merge_requests/#list-project-merge-requests).
async fn list_merge_requests(
    State(st): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    api(&st, "merge_requests.list", &headers, |st| {
        let data = st.data();
        let Some((project, path)) = data.project(&id) else { return project_not_found() };
        let p = params(query.as_deref(), &[]);
        let state = param_str(&p, "state").unwrap_or_else(|| "all".into());
        if !matches!(state.as_str(), "opened" | "closed" | "locked" | "merged" | "all") {
            return json_response(StatusCode::BAD_REQUEST, json!({"error": "state does not have a valid value"}));
        }
        let updated_after = match param_str(&p, "updated_after").map(|t| t.parse::<Timestamp>()) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => {
                return json_response(StatusCode::BAD_REQUEST, json!({"error": "updated_after is invalid"}));
            }
        };
        let target = param_str(&p, "target_branch");
        let mut mrs: Vec<_> = data
            .merge_requests
            .values()
            .filter(|m| m.project_id == project)
            .filter(|m| state == "all" || m.state == state)
            .filter(|m| target.as_deref().is_none_or(|t| t == m.target_branch))
            .filter(|m| updated_after.is_none_or(|t| m.updated_at >= t))
            .collect();
        mrs.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
        paginate(mrs.into_iter().map(|m| merge_request_json(st, &path, m)).collect(), &p)
    })
    .await
}

/// `GET /projects/:id/pipelines/:pipeline_id/test_report_summary`: a pipeline without test
/// reports answers zero counts and no suites
/// (https://docs.gitlab.com/api/pipelines/#get-a-test-report-summary-for-a-pipeline).
async fn test_report_summary(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, pipeline_id)): Path<(String, u64)>,
) -> Response {
    api(&st, "pipeline.test_report_summary", &headers, |st| {
        let data = st.data();
        let Some((project, _)) = data.project(&id) else { return project_not_found() };
        if !data.pipelines.contains_key(&(project, pipeline_id)) {
            return json_response(StatusCode::NOT_FOUND, json!({"message": "404 Not found"}));
        }
        let total = data.test_reports.get(&(project, pipeline_id)).cloned().unwrap_or_else(
            || json!({"time": 0, "count": 0, "success": 0, "failed": 0, "skipped": 0, "error": 0, "suite_error": null}),
        );
        json_response(StatusCode::OK, json!({"total": total, "test_suites": []}))
    })
    .await
}

impl Data {
    fn push_commit(&mut self, project: u64, sha: String, title: String, author_name: String) {
        self.ensure_project(project);
        let commit = SimCommit { id: sha, title, author_name, created_at: Timestamp::now() };
        self.commits.entry(project).or_default().push(commit);
    }

    fn merge(&mut self, project: u64, iid: u64, sha: String, squash: bool) -> bool {
        let Some(mr) = self.merge_requests.get_mut(&(project, iid)) else { return false };
        let now = Timestamp::now();
        mr.state = "merged".into();
        if squash {
            mr.squash_commit_sha = Some(sha);
        } else {
            mr.merge_commit_sha = Some(sha);
        }
        mr.updated_at = now;
        true
    }
}

impl GitLabSim {
    /// A commit on top of the project's history (the project is added if unknown).
    pub fn add_commit(&self, project: u64, sha: &str, title: &str, author_name: &str) {
        self.state.data().push_commit(project, sha.into(), title.into(), author_name.into());
    }

    /// Merges a merge request: state `merged`, with its merge commit (or, with `squash`, its
    /// squash commit) `sha`. False if the MR is unknown.
    pub fn merge_merge_request(&self, project: u64, iid: u64, sha: &str, squash: bool) -> bool {
        self.state.data().merge(project, iid, sha.into(), squash)
    }

    /// The pipeline's test report summary (`total`: time, count, success, failed, skipped, error).
    pub fn set_test_report_summary(&self, project: u64, pipeline: u64, total: Value) {
        self.state.data().test_reports.insert((project, pipeline), total);
    }
}

#[derive(Deserialize)]
struct NewCommit {
    project_id: u64,
    sha: String,
    title: String,
    #[serde(default = "default_author")]
    author_name: String,
}

fn default_author() -> String {
    "Jane Doe".into()
}

#[derive(Deserialize)]
struct Merge {
    sha: String,
    #[serde(default)]
    squash: bool,
}

fn control_error(message: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "error": message }))
}

async fn control_add_commit(State(st): Shared, body: Bytes) -> Response {
    match serde_json::from_slice::<NewCommit>(&body) {
        Ok(c) => {
            st.data().push_commit(c.project_id, c.sha, c.title, c.author_name);
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(format!("invalid body: {e}")),
    }
}

async fn control_merge(State(st): Shared, Path((p, iid)): Path<(u64, u64)>, body: Bytes) -> Response {
    let m = match serde_json::from_slice::<Merge>(&body) {
        Ok(m) => m,
        Err(e) => return control_error(format!("invalid body: {e}")),
    };
    if st.data().merge(p, iid, m.sha, m.squash) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        control_error(format!("no merge request !{iid} in project {p}"))
    }
}

async fn control_test_report(State(st): Shared, Path((p, id)): Path<(u64, u64)>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body) {
        Ok(total) if total.is_object() => {
            st.data().test_reports.insert((p, id), total);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => control_error("the body must be the summary's `total` object".into()),
    }
}
