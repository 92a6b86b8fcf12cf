//! The JSON answers of the REST API, in the shapes of the published samples
//! (`sim/samples/gitlab-api-samples/`), with the simulator's ids, names, times and URLs.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::model::{Data, Deployment, Job, MergeRequest, Note, Pipeline, SimApproval, finished};
use crate::samples;
use crate::state::{SimState, time};

pub(crate) fn merge_request_json(st: &SimState, path: &str, mr: &MergeRequest) -> Value {
    let mut v = samples::MERGE_REQUEST.clone();
    let created = time(mr.created_at);
    v["id"] = json!(mr.id);
    v["iid"] = json!(mr.iid);
    v["project_id"] = json!(mr.project_id);
    v["source_project_id"] = json!(mr.project_id);
    v["target_project_id"] = json!(mr.project_id);
    v["title"] = json!(mr.title);
    v["created_at"] = json!(created);
    v["updated_at"] = json!(time(mr.updated_at));
    v["state"] = json!(mr.state);
    v["target_branch"] = json!(mr.target_branch);
    v["merge_commit_sha"] = json!(mr.merge_commit_sha);
    v["squash_commit_sha"] = json!(mr.squash_commit_sha);
    v["source_branch"] = json!(format!("feature-{}", mr.iid));
    v["sha"] = json!(mr.sha);
    v["author"]["web_url"] = json!(format!("{}/janedoe", st.base));
    v["author"]["avatar_url"] = json!(format!("{}/uploads/user/avatar/28/jane-doe-400-400.png", st.base));
    v["web_url"] = json!(format!("{}/{path}/merge_requests/{}", st.base, mr.iid));
    v
}

pub(crate) fn note_json(st: &SimState, n: &Note) -> Value {
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

/// "Get a single job", or with `played` the answer of "Run a job".
pub(crate) fn job_json(st: &SimState, data: &Data, path: &str, job: &Job, played: bool) -> Value {
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
        v["finished_at"] = Value::Null;
        v["duration"] = Value::Null;
        v["artifacts_expire_at"] = Value::Null;
        if finished(&job.status) {
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

pub(crate) fn pipeline_json(st: &SimState, path: &str, p: &Pipeline) -> Value {
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
    let done = finished(&p.status);
    v["finished_at"] = if done { json!(time(Timestamp::now())) } else { Value::Null };
    if !done {
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

pub(crate) fn approval_json(st: &SimState, a: &SimApproval) -> Value {
    let mut v = samples::APPROVAL.clone();
    v["user"] = st.user(&a.username);
    v["status"] = json!(a.status);
    v["created_at"] = json!(a.created_at);
    v["comment"] = json!(a.comment);
    v
}

pub(crate) fn deployment_json(st: &SimState, d: &Deployment) -> Value {
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
