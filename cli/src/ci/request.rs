//! `gatehouse ci request`: find or create the change of this commit and environment
//! (`POST /v1/changes`).

use reqwest::{Method, StatusCode};
use serde::Serialize;

use super::change::{Change, Decision};
use super::env::{Credential, Lookup, Subject, Vars};
use super::exit::{EXIT_BLOCKED, EXIT_PROCEED, Fail};
use super::http::{Api, Expect};
use super::pacing::Pacing;
use super::text::{clip, one_line};

/// ServiceNow's `short_description` holds 160 characters.
const MAX_TITLE_CHARS: usize = 160;

/// The body of `POST /v1/changes` (DESIGN.md, "HTTP API").
#[derive(Serialize, Debug)]
struct ChangeRequest {
    project_id: u64,
    project_path: String,
    sha: String,
    #[serde(rename = "ref")]
    git_ref: String,
    environment: String,
    pipeline_id: u64,
    pipeline_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    merge_request_iid: Option<u64>,
    title: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    planned_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    planned_end: Option<String>,
    /// An emergency change: windows skipped, approval still needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    emergency_reason: Option<String>,
}

/// Runs `gatehouse ci request`: exit 0 when the change was created or reused (1 when it is
/// already blocked), or why it exits 3.
pub(super) async fn run(environment: Option<String>, lookup: Lookup<'_>) -> Result<u8, Fail> {
    let mut vars = Vars::new(lookup);
    let gate = vars.gate();
    let project_id = vars.number("CI_PROJECT_ID");
    let project_path = vars.required("CI_PROJECT_PATH");
    let sha = vars.sha();
    let git_ref = vars.required("CI_COMMIT_REF_NAME");
    let environment = vars.environment(environment);
    let pipeline_id = vars.number("CI_PIPELINE_ID");
    let pipeline_url = vars.required("CI_PIPELINE_URL");
    // Only an explicit verify job: without one, Gatehouse finds the pipeline's manual
    // `gatehouse:verify` job itself (this job's own id would be the wrong one to play).
    let job_id = vars.optional_number("GATEHOUSE_VERIFY_JOB_ID");
    let merge_request_iid = vars.optional_number("CI_MERGE_REQUEST_IID");
    let planned_start = vars.timestamp("GATEHOUSE_PLANNED_START");
    let planned_end = vars.timestamp("GATEHOUSE_PLANNED_END");
    if let (Some(start), Some(end)) = (planned_start, planned_end)
        && end <= start
    {
        vars.invalid.push("GATEHOUSE_PLANNED_END is not after GATEHOUSE_PLANNED_START".into());
    }
    let commit_title = vars.optional("CI_COMMIT_TITLE");
    let emergency_reason = vars.optional("GATEHOUSE_EMERGENCY_REASON");
    let project_url = vars.optional("CI_PROJECT_URL");
    let job_url = vars.optional("CI_JOB_URL");
    let pacing = Pacing::from_env(lookup);
    let gate = vars.finish(gate)?;
    // With an ID token, Gatehouse takes the job from the token and finds and checks the verify
    // job itself: another job id in the body would be refused.
    let job_id = if gate.credential == Credential::IdToken { None } else { job_id };

    let subject = Subject { project_id, sha, environment };
    let title = change_title(&project_path, subject.short_sha(), &subject.environment, commit_title.as_deref());
    let description = change_description(&Described {
        project_path: &project_path,
        project_url: project_url.as_deref(),
        sha: &subject.sha,
        git_ref: &git_ref,
        environment: &subject.environment,
        pipeline_url: &pipeline_url,
        merge_request_iid,
        job_url: job_url.as_deref(),
        commit_title: commit_title.as_deref(),
    });
    let body = ChangeRequest {
        project_id,
        project_path: project_path.clone(),
        sha: subject.sha.clone(),
        git_ref,
        environment: subject.environment.clone(),
        pipeline_id,
        pipeline_url,
        job_id,
        merge_request_iid,
        title,
        description,
        planned_start: planned_start.map(|t| t.to_string()),
        planned_end: planned_end.map(|t| t.to_string()),
        emergency_reason,
    };

    let api = Api::new(gate, pacing, "request")?;
    let reply = api.call(Method::POST, api.endpoint(&["v1", "changes"]), None, Some(&body), Expect::Request).await?;
    let created = reply.status == StatusCode::CREATED;
    let change: Change = reply.json()?;
    let (n, link) = (change.number(), change.link());
    let what = format!("{project_path} {} to {}", subject.short_sha(), subject.environment);
    let verb = if created { "created" } else { "reused" };
    Ok(match change.decision()? {
        Decision::Blocked => {
            println!("{n} blocked: {}{link}", change.blocked_text());
            EXIT_BLOCKED
        }
        Decision::Proceed => {
            println!("{n} {verb} for {what}: approved and the window is open{link}");
            EXIT_PROCEED
        }
        Decision::Wait => {
            println!("{n} {verb} for {what}: {}{link}", change.wait_text());
            EXIT_PROCEED
        }
    })
}

/// "Deploy acme/shop 0123abcd to production: Add checkout", cut to ServiceNow's 160 characters.
fn change_title(project_path: &str, short_sha: &str, environment: &str, commit_title: Option<&str>) -> String {
    let mut title = format!("Deploy {project_path} {short_sha} to {environment}");
    if let Some(commit) = commit_title.map(one_line).filter(|c| !c.is_empty()) {
        title.push_str(": ");
        title.push_str(&commit);
    }
    clip(&title, MAX_TITLE_CHARS)
}

struct Described<'a> {
    project_path: &'a str,
    project_url: Option<&'a str>,
    sha: &'a str,
    git_ref: &'a str,
    environment: &'a str,
    pipeline_url: &'a str,
    merge_request_iid: Option<u64>,
    job_url: Option<&'a str>,
    commit_title: Option<&'a str>,
}

fn change_description(d: &Described<'_>) -> String {
    let mut lines =
        vec![format!("Deploy of {} commit {} ({}) to {}.", d.project_path, d.sha, d.git_ref, d.environment)];
    if let Some(title) = d.commit_title.map(one_line).filter(|t| !t.is_empty()) {
        lines.push(format!("Commit title: {title}"));
    }
    let project_url = d.project_url.map(|u| u.trim_end_matches('/'));
    match project_url {
        Some(base) => lines.push(format!("Commit: {base}/-/commit/{}", d.sha)),
        None => lines.push(format!("Commit: {}", d.sha)),
    }
    lines.push(format!("Pipeline: {}", d.pipeline_url));
    match (d.merge_request_iid, project_url) {
        (Some(iid), Some(base)) => lines.push(format!("Merge request: !{iid} {base}/-/merge_requests/{iid}")),
        (Some(iid), None) => lines.push(format!("Merge request: !{iid}")),
        _ => {}
    }
    if let Some(job) = d.job_url {
        lines.push(format!("Requested by GitLab job {job}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_names_project_commit_environment_and_fits_servicenow() {
        assert_eq!(
            change_title("acme/shop", "0123abcd", "production", Some("Add checkout\nbutton")),
            "Deploy acme/shop 0123abcd to production: Add checkout button"
        );
        assert_eq!(
            change_title("acme/shop", "0123abcd", "production", None),
            "Deploy acme/shop 0123abcd to production"
        );
        let long = change_title("acme/shop", "0123abcd", "production", Some(&"é".repeat(300)));
        assert_eq!(long.chars().count(), 160);
        assert!(long.ends_with('…'));
    }
}
