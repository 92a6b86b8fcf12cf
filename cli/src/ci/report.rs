//! `gatehouse ci report`: record the deploy's result on the change, which closes it
//! (`POST /v1/changes/{project_id}/{sha}/deployments`).

use clap::ValueEnum;
use reqwest::Method;
use serde::Serialize;

use super::change::Change;
use super::env::{Lookup, Subject, Vars};
use super::exit::{EXIT_PROCEED, Fail};
use super::http::{Api, Expect};
use super::pacing::Pacing;
use super::text::one_line;

#[derive(clap::Args, Debug)]
pub(super) struct ReportArgs {
    /// The deploy job's result.
    #[arg(long, value_enum, value_name = "success|failed")]
    status: DeployStatus,
}

#[derive(ValueEnum, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum DeployStatus {
    Success,
    Failed,
}

impl DeployStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeployStatus::Success => "success",
            DeployStatus::Failed => "failed",
        }
    }
}

/// The body of `POST /v1/changes/{project_id}/{sha}/deployments`.
#[derive(Serialize, Debug)]
struct DeploymentReport<'a> {
    environment: &'a str,
    status: DeployStatus,
    pipeline_url: String,
    job_url: String,
}

/// Runs `gatehouse ci report`: exit 0 once the result is recorded, or why it exits 3.
pub(super) async fn run(environment: Option<String>, args: ReportArgs, lookup: Lookup<'_>) -> Result<u8, Fail> {
    let mut vars = Vars::new(lookup);
    let gate = vars.gate();
    let project_id = vars.number("CI_PROJECT_ID");
    let sha = vars.sha();
    let environment = vars.environment(environment);
    let pipeline_url = vars.required("CI_PIPELINE_URL");
    let job_url = match vars.optional("GATEHOUSE_DEPLOY_JOB_URL") {
        Some(url) => url,
        None => vars.required("CI_JOB_URL"),
    };
    let pacing = Pacing::from_env(lookup);
    let gate = vars.finish(gate)?;
    let subject = Subject { project_id, sha, environment };
    let api = Api::new(gate, pacing, "report")?;
    let body = DeploymentReport { environment: &subject.environment, status: args.status, pipeline_url, job_url };
    let mut url = api.change_url(&subject);
    url.path_segments_mut().map_err(|_| Fail("GATEHOUSE_URL cannot take a path".into()))?.push("deployments");
    let reply = api.call(Method::POST, url, None, Some(&body), Expect::Change).await?;
    let change: Change = reply.json()?;
    let state = one_line(&change.state.display);
    let state = if state.is_empty() { String::new() } else { format!(" (state {state})") };
    println!("{} deploy {} recorded on the change{state}{}", change.number(), args.status.as_str(), change.link());
    Ok(EXIT_PROCEED)
}
