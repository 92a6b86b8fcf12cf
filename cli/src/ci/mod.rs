//! `gatehouse ci`: the change gate's client, run inside a GitLab CI job.
//!
//! - `request` finds or creates the ServiceNow change of this commit and environment
//!   (`POST /v1/changes`);
//! - `verify` asks whether the deploy may go ahead (`GET /v1/changes/{project_id}/{sha}`), once or,
//!   with `--wait`, polling until the change proceeds, is blocked or `--timeout` passes;
//! - `report` records the deploy's result on the change, which closes it
//!   (`POST /v1/changes/{project_id}/{sha}/deployments`).
//!
//! Everything comes from the job's environment: `GATEHOUSE_URL`, a credential and GitLab's
//! predefined `CI_*` variables. The credential is `GATEHOUSE_ID_TOKEN`, a GitLab CI/CD ID token
//! from the job's `id_tokens:` (audience `gatehouse`), or else `GATEHOUSE_TOKEN`, a static `ci`
//! token that Gatehouse only accepts with `GATEHOUSE_CI_ALLOW_STATIC_TOKENS=true`; either is sent
//! as `Authorization: Bearer <token>`, and only there: it never appears in output or errors. Each
//! outcome is one line on stdout with the change number and its URL; problems go to stderr.
//!
//! Exit codes: 0 proceed (and request/report done), 1 blocked, 2 still waiting or timed out,
//! 3 misconfigured or unreachable. A usage error exits 3 too (not clap's 2, which would read as
//! "timed out"), which is why [`CiArgs`] hands the raw arguments to a parser of its own.
//!
//! One module per subcommand (`request`, `verify`, `report`), and the parts they share: `env`
//! (reading the variables), `http` (the client and its retries), `pacing` (polling and back-off),
//! `change` (the change answer), `exit` (exit codes) and `text`.

mod change;
mod env;
mod exit;
mod http;
mod pacing;
mod report;
mod request;
mod text;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::{EXIT_BLOCKED, EXIT_MISCONFIGURED, EXIT_PROCEED, EXIT_TIMED_OUT};
pub use pacing::{MIN_POLL_INTERVAL, TEST_MIN_INTERVAL_ENV};

use env::Lookup;
use exit::Fail;
use report::ReportArgs;
use text::one_line;
use verify::VerifyArgs;

const HELP_FOOTER: &str = "\
Exit codes:
  0  proceed: the change is approved and its window is open (verify); the change was created or
     reused (request); the deploy result was recorded (report)
  1  blocked: the change was rejected, cancelled or closed, or its planned end has passed
  2  still waiting: verify answered wait, or verify --wait reached --timeout
  3  misconfigured or unreachable: a missing or invalid variable or argument, a bad GATEHOUSE_URL,
     connection refused, the token refused (401/403), no change for this commit (404), or
     5xx/429 still failing after retries

Variables:
  GATEHOUSE_URL                            Gatehouse's base URL (group CI/CD variable)
  GATEHOUSE_ID_TOKEN                       the job's GitLab CI/CD ID token, sent as the bearer token;
                                           in the job: id_tokens: {GATEHOUSE_ID_TOKEN: {aud: gatehouse}}
  GATEHOUSE_TOKEN                          a static ci token (group CI/CD variable, masked), used only
                                           when GATEHOUSE_ID_TOKEN is unset; Gatehouse accepts it only
                                           with GATEHOUSE_CI_ALLOW_STATIC_TOKENS=true
  CI_PROJECT_ID, CI_COMMIT_SHA             the change's key, with the environment
  CI_ENVIRONMENT_NAME                      the environment, unless --environment is given
  CI_PROJECT_PATH, CI_COMMIT_REF_NAME, CI_COMMIT_TITLE, CI_PIPELINE_ID, CI_PIPELINE_URL,
  CI_JOB_ID, CI_JOB_URL, CI_MERGE_REQUEST_IID, CI_PROJECT_URL
                                           what request puts on the change
  GATEHOUSE_VERIFY_JOB_ID                  the manual job to resume, with GATEHOUSE_TOKEN only (request;
                                           else Gatehouse plays the pipeline's manual gatehouse:verify job)
  GATEHOUSE_EMERGENCY_REASON               asks for an emergency change: windows skipped, approval still
                                           needed (request)
  GATEHOUSE_PLANNED_START, GATEHOUSE_PLANNED_END
                                           the change's planned window, RFC 3339 (request)
  GATEHOUSE_DEPLOY_JOB_URL                 the deploy job's URL (report; else CI_JOB_URL)";

/// `gatehouse ci`'s arguments, taken raw and parsed by [`run`], so that a usage error exits 3
/// (misconfigured) like any other configuration problem.
#[derive(clap::Args, Debug, Clone)]
#[command(
    disable_help_flag = true,
    override_usage = "gatehouse ci <request|verify|report> [OPTIONS]",
    after_help = "Run `gatehouse ci --help` for the options, the variables and the exit codes."
)]
pub struct CiArgs {
    /// `request`, `verify [--wait] [--timeout SECS] [--interval SECS]` or
    /// `report --status success|failed`, each with an optional `--environment NAME`.
    #[arg(num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Parser, Debug)]
#[command(
    name = "gatehouse ci",
    bin_name = "gatehouse ci",
    about = "The CI change gate's client: run in GitLab jobs to request, verify and report a ServiceNow change",
    after_help = HELP_FOOTER
)]
struct CiCli {
    /// The environment deployed to [default: CI_ENVIRONMENT_NAME].
    #[arg(long, global = true, value_name = "NAME")]
    environment: Option<String>,
    #[command(subcommand)]
    command: CiCommand,
}

#[derive(Subcommand, Debug)]
enum CiCommand {
    /// Find or create the change for this commit and environment, and link it on the merge request.
    #[command(after_help = HELP_FOOTER)]
    Request,
    /// Ask whether the deploy may proceed: approved and inside the change window.
    #[command(after_help = HELP_FOOTER)]
    Verify(VerifyArgs),
    /// Record the deploy's result on the change and close it.
    #[command(after_help = HELP_FOOTER)]
    Report(ReportArgs),
}

impl CiCommand {
    fn name(&self) -> &'static str {
        match self {
            CiCommand::Request => "request",
            CiCommand::Verify(_) => "verify",
            CiCommand::Report(_) => "report",
        }
    }
}

/// Runs `gatehouse ci …` and returns its exit code.
pub async fn run(args: CiArgs) -> ExitCode {
    let argv = std::iter::once("gatehouse ci".to_string()).chain(args.args);
    let cli = match CiCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; a usage error is a misconfiguration.
            let code = if e.use_stderr() { EXIT_MISCONFIGURED } else { EXIT_PROCEED };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    ExitCode::from(execute(cli, &env).await)
}

async fn execute(cli: CiCli, lookup: Lookup<'_>) -> u8 {
    let name = cli.command.name();
    let outcome = match cli.command {
        CiCommand::Request => request::run(cli.environment, lookup).await,
        CiCommand::Verify(args) => verify::run(cli.environment, args, lookup).await,
        CiCommand::Report(args) => report::run(cli.environment, args, lookup).await,
    };
    match outcome {
        Ok(code) => code,
        Err(Fail(message)) => {
            eprintln!("gatehouse ci {name}: {}", one_line(&message));
            EXIT_MISCONFIGURED
        }
    }
}
