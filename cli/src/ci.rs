//! `gatehouse ci`: the change gate's client, run inside a GitLab CI job.
//!
//! - `request` finds or creates the ServiceNow change of this commit and environment
//!   (`POST /v1/changes`);
//! - `verify` asks whether the deploy may go ahead (`GET /v1/changes/{project_id}/{sha}`), once or,
//!   with `--wait`, polling until the change proceeds, is blocked or `--timeout` passes;
//! - `report` records the deploy's result on the change, which closes it
//!   (`POST /v1/changes/{project_id}/{sha}/deployments`).
//!
//! Everything comes from the job's environment: `GATEHOUSE_URL`, `GATEHOUSE_TOKEN` and GitLab's
//! predefined `CI_*` variables. Each outcome is one line on stdout with the change number and its
//! URL; problems go to stderr. The token is only ever put in the `Authorization` header.
//!
//! Exit codes: 0 proceed (and request/report done), 1 blocked, 2 still waiting or timed out,
//! 3 misconfigured or unreachable. A usage error exits 3 too (not clap's 2, which would read as
//! "timed out"), which is why [`CiArgs`] hands the raw arguments to a parser of its own.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clap::{Parser, Subcommand, ValueEnum};
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};

/// The deploy may proceed (verify), the change was created or reused (request), the result was
/// recorded (report).
pub const EXIT_PROCEED: u8 = 0;
/// The change is rejected, cancelled or closed, or its planned end has passed.
pub const EXIT_BLOCKED: u8 = 1;
/// `verify` answered wait, or `verify --wait` reached `--timeout` still waiting.
pub const EXIT_TIMED_OUT: u8 = 2;
/// A missing or invalid variable or argument, a bad URL, Gatehouse unreachable, the token refused,
/// an unknown change, or 5xx/429 after retries.
pub const EXIT_MISCONFIGURED: u8 = 3;

/// Polls are never closer together than this.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Test-only: milliseconds that replace the 10 s polling floor and the retry back-off unit, so the
/// end-to-end tests run in milliseconds. It can only lower them. Not documented for users and not
/// meant to be set in a real pipeline.
pub const TEST_MIN_INTERVAL_ENV: &str = "GATEHOUSE_CI_MIN_INTERVAL_MS";

const DEFAULT_TIMEOUT_SECS: u64 = 3600;
const DEFAULT_INTERVAL_SECS: u64 = 30;
/// Polls are spread by ±20 % so that many pipelines do not ask in step.
const JITTER: f64 = 0.2;
/// Attempts after the first for one call that failed in a way worth repeating.
const MAX_RETRIES: u32 = 3;
const RETRY_UNIT: Duration = Duration::from_secs(2);
/// A single call gives up rather than wait longer than this on a `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// ServiceNow's `short_description` holds 160 characters.
const MAX_TITLE_CHARS: usize = 160;

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
  GATEHOUSE_URL, GATEHOUSE_TOKEN           Gatehouse's base URL and API token (group CI/CD variables)
  CI_PROJECT_ID, CI_COMMIT_SHA             the change's key, with the environment
  CI_ENVIRONMENT_NAME                      the environment, unless --environment is given
  CI_PROJECT_PATH, CI_COMMIT_REF_NAME, CI_COMMIT_TITLE, CI_PIPELINE_ID, CI_PIPELINE_URL,
  CI_JOB_ID, CI_JOB_URL, CI_MERGE_REQUEST_IID, CI_PROJECT_URL
                                           what request puts on the change
  GATEHOUSE_VERIFY_JOB_ID                  the manual job to resume (request; else Gatehouse plays the
                                           pipeline's manual job named gatehouse:verify)
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

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// Poll until the change proceeds (exit 0), is blocked (1) or --timeout passes (2).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS, requires = "wait")]
    timeout: u64,
    /// With --wait: seconds between polls, spread by ±20 %; never under 10 (a lower value is raised).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_INTERVAL_SECS, requires = "wait")]
    interval: u64,
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
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

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

async fn execute(cli: CiCli, lookup: Lookup<'_>) -> u8 {
    let name = cli.command.name();
    let outcome = match cli.command {
        CiCommand::Request => request(cli.environment, lookup).await,
        CiCommand::Verify(args) => verify(cli.environment, args, lookup).await,
        CiCommand::Report(args) => report(cli.environment, args, lookup).await,
    };
    match outcome {
        Ok(code) => code,
        Err(Fail(message)) => {
            eprintln!("gatehouse ci {name}: {}", one_line(&message));
            EXIT_MISCONFIGURED
        }
    }
}

/// A misconfiguration or an unreachable Gatehouse: exit 3 with this message.
#[derive(Debug)]
struct Fail(String);

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Reads variables and collects every missing or invalid one, so one run names them all.
struct Vars<'a> {
    lookup: Lookup<'a>,
    missing: Vec<&'static str>,
    invalid: Vec<String>,
}

impl<'a> Vars<'a> {
    fn new(lookup: Lookup<'a>) -> Self {
        Vars { lookup, missing: Vec::new(), invalid: Vec::new() }
    }

    fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    fn required(&mut self, name: &'static str) -> String {
        self.optional(name).unwrap_or_else(|| {
            self.missing.push(name);
            String::new()
        })
    }

    fn number(&mut self, name: &'static str) -> u64 {
        let value = self.required(name);
        self.parse_number(name, &value)
    }

    fn optional_number(&mut self, name: &'static str) -> Option<u64> {
        let value = self.optional(name)?;
        Some(self.parse_number(name, &value))
    }

    fn parse_number(&mut self, name: &str, value: &str) -> u64 {
        if value.is_empty() {
            return 0;
        }
        value.parse().unwrap_or_else(|_| {
            self.invalid.push(format!("{name} is not a positive whole number"));
            0
        })
    }

    fn environment(&mut self, flag: Option<String>) -> String {
        match flag.map(|f| f.trim().to_string()).filter(|f| !f.is_empty()) {
            Some(env) => env,
            None => self.optional("CI_ENVIRONMENT_NAME").unwrap_or_else(|| {
                self.missing.push("CI_ENVIRONMENT_NAME (or --environment)");
                String::new()
            }),
        }
    }

    fn sha(&mut self) -> String {
        let sha = self.required("CI_COMMIT_SHA").to_ascii_lowercase();
        let full = matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit());
        if !sha.is_empty() && !full {
            self.invalid.push("CI_COMMIT_SHA is not a full commit SHA (40 hex digits)".to_string());
        }
        sha
    }

    fn timestamp(&mut self, name: &'static str) -> Option<jiff::Timestamp> {
        let value = self.optional(name)?;
        match value.parse::<jiff::Timestamp>() {
            Ok(ts) => Some(ts),
            Err(_) => {
                self.invalid.push(format!("{name} is not an RFC 3339 time such as 2026-12-01T19:00:00Z"));
                None
            }
        }
    }

    fn gate(&mut self) -> Option<Gate> {
        let url = self.required("GATEHOUSE_URL");
        let token = self.required("GATEHOUSE_TOKEN");
        let base = if url.is_empty() {
            None
        } else {
            match gatehouse_base(&url) {
                Ok(base) => Some(base),
                Err(problem) => {
                    self.invalid.push(problem);
                    None
                }
            }
        };
        let auth = if token.is_empty() {
            None
        } else {
            match HeaderValue::from_str(&format!("Bearer {token}")) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    Some(value)
                }
                Err(_) => {
                    self.invalid.push("GATEHOUSE_TOKEN contains characters that cannot be sent in a header".into());
                    None
                }
            }
        };
        Some(Gate { base: base?, auth: auth? })
    }

    /// The gate, when every variable read is present and valid; otherwise all that are not.
    fn finish(self, gate: Option<Gate>) -> Result<Gate, Fail> {
        let mut problems = Vec::new();
        if !self.missing.is_empty() {
            problems.push(format!("missing CI/CD variable(s): {}", self.missing.join(", ")));
        }
        problems.extend(self.invalid);
        if let Some(gate) = gate.filter(|_| problems.is_empty()) {
            return Ok(gate);
        }
        Err(Fail(format!(
            "misconfigured: {} (GATEHOUSE_URL and GATEHOUSE_TOKEN come from the group's CI/CD variables; \
             the CI_* variables from GitLab)",
            problems.join("; ")
        )))
    }
}

/// Checks `GATEHOUSE_URL` and returns it as the base the API paths are appended to.
fn gatehouse_base(raw: &str) -> Result<Url, String> {
    let invalid = || format!("GATEHOUSE_URL \"{raw}\" is not an http(s) URL such as https://gatehouse.example.com");
    let mut url = Url::parse(raw).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(invalid());
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: it holds a credential.
        return Err("GATEHOUSE_URL must not carry credentials; the token goes in GATEHOUSE_TOKEN".into());
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// Where Gatehouse is and how to authenticate to it.
struct Gate {
    base: Url,
    auth: HeaderValue,
}

/// The change's key.
struct Subject {
    project_id: u64,
    sha: String,
    environment: String,
}

impl Subject {
    fn short_sha(&self) -> &str {
        &self.sha[..self.sha.len().min(8)]
    }
}

/// How fast to poll and retry: 10 s and 2 s, unless the test-only variable lowers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pacing {
    floor: Duration,
    retry_unit: Duration,
}

impl Pacing {
    fn from_env(lookup: Lookup<'_>) -> Pacing {
        let test_ms = lookup(TEST_MIN_INTERVAL_ENV).and_then(|v| v.trim().parse::<u64>().ok());
        match test_ms {
            Some(ms) => {
                let unit = Duration::from_millis(ms);
                Pacing { floor: unit.min(MIN_POLL_INTERVAL), retry_unit: unit.min(RETRY_UNIT) }
            }
            None => Pacing { floor: MIN_POLL_INTERVAL, retry_unit: RETRY_UNIT },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire format (DESIGN.md, "HTTP API": /v1/changes)
// ---------------------------------------------------------------------------------------------

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
}

#[derive(Serialize, Debug)]
struct DeploymentReport<'a> {
    environment: &'a str,
    status: DeployStatus,
    pipeline_url: String,
    job_url: String,
}

/// The change answer. Lenient: only `decision` must be understood; a field missing or `null` is
/// empty.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Change {
    #[serde(deserialize_with = "nullable")]
    number: String,
    #[serde(deserialize_with = "nullable")]
    url: String,
    #[serde(deserialize_with = "nullable")]
    approval: String,
    #[serde(deserialize_with = "nullable")]
    state: ChangeState,
    #[serde(deserialize_with = "nullable")]
    decision: String,
    #[serde(deserialize_with = "nullable")]
    reason: String,
    window: Option<Window>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct ChangeState {
    #[serde(deserialize_with = "nullable")]
    display: String,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Window {
    #[serde(deserialize_with = "nullable")]
    open: bool,
    next_open_at: Option<String>,
    rule: Option<String>,
}

fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Proceed,
    Wait,
    Blocked,
}

impl Change {
    fn decision(&self) -> Result<Decision, Fail> {
        match self.decision.as_str() {
            "proceed" => Ok(Decision::Proceed),
            "wait" => Ok(Decision::Wait),
            "blocked" => Ok(Decision::Blocked),
            other => Err(Fail(format!(
                "Gatehouse answered a decision this client does not know (\"{}\"); is gatehouse ci up to date?",
                clip(other, 40)
            ))),
        }
    }

    fn number(&self) -> String {
        let number = one_line(&self.number);
        if number.is_empty() { "change".to_string() } else { number }
    }

    fn link(&self) -> String {
        let url = one_line(&self.url);
        if url.is_empty() { String::new() } else { format!(" — {url}") }
    }

    /// Why it waits, with the window's next opening when the window is closed.
    fn wait_text(&self) -> String {
        let mut text = one_line(&self.reason);
        if text.is_empty() {
            text = format!("approval {}, state {}", or_unknown(&self.approval), or_unknown(&self.state.display));
        }
        if let Some(window) = self.window.as_ref().filter(|w| !w.open) {
            match (window.next_open_at.as_deref().map(one_line).filter(|s| !s.is_empty()), window.rule.as_deref()) {
                (Some(next), _) => text.push_str(&format!("; window opens {next}")),
                (None, Some(rule)) if !rule.trim().is_empty() => {
                    text.push_str(&format!("; window closed ({})", one_line(rule)))
                }
                _ => text.push_str("; window closed"),
            }
        }
        text
    }

    fn blocked_text(&self) -> String {
        let reason = one_line(&self.reason);
        if reason.is_empty() { format!("state {}", or_unknown(&self.state.display)) } else { reason }
    }

    /// The one line `verify` prints for this answer, and its exit code.
    fn verdict(&self) -> Result<(String, u8), Fail> {
        let (n, link) = (self.number(), self.link());
        Ok(match self.decision()? {
            Decision::Proceed => (format!("{n} approved and the window is open: proceed{link}"), EXIT_PROCEED),
            Decision::Wait => (format!("{n} waiting: {}{link}", self.wait_text()), EXIT_TIMED_OUT),
            Decision::Blocked => (format!("{n} blocked: {}{link}", self.blocked_text()), EXIT_BLOCKED),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The three commands
// ---------------------------------------------------------------------------------------------

async fn request(environment: Option<String>, lookup: Lookup<'_>) -> Result<u8, Fail> {
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
    let project_url = vars.optional("CI_PROJECT_URL");
    let job_url = vars.optional("CI_JOB_URL");
    let pacing = Pacing::from_env(lookup);
    let gate = vars.finish(gate)?;

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

async fn verify(environment: Option<String>, args: VerifyArgs, lookup: Lookup<'_>) -> Result<u8, Fail> {
    let mut vars = Vars::new(lookup);
    let gate = vars.gate();
    let project_id = vars.number("CI_PROJECT_ID");
    let sha = vars.sha();
    let environment = vars.environment(environment);
    let pacing = Pacing::from_env(lookup);
    let gate = vars.finish(gate)?;
    let subject = Subject { project_id, sha, environment };
    let api = Api::new(gate, pacing, "verify")?;
    let url = api.change_url(&subject);

    if !args.wait {
        let reply = api.call(Method::GET, url, Some(&subject.environment), None::<&()>, Expect::Change).await?;
        let (line, code) = reply.json::<Change>()?.verdict()?;
        println!("{line}");
        return Ok(code);
    }

    let started = Instant::now();
    let timeout = Duration::from_secs(args.timeout);
    let (interval, raised) = effective_interval(Duration::from_secs(args.interval), pacing.floor);
    if raised {
        eprintln!(
            "gatehouse ci verify: --interval {} s is below the minimum; polling every {} instead",
            args.interval,
            seconds(interval)
        );
    }
    let mut last_line = String::new();
    // The last waiting answer: number, why, link, for the timed-out line.
    let mut last_wait: Option<(String, String, String)> = None;
    let mut failures = 0;
    loop {
        let mut trouble = None;
        let retry_after = match api.attempt(Method::GET, url.clone(), Some(&subject.environment), None::<&()>).await {
            Ok(reply) if reply.status.is_success() => {
                failures = 0;
                let change: Change = reply.json()?;
                let (line, code) = change.verdict()?;
                if code != EXIT_TIMED_OUT {
                    println!("{line}");
                    return Ok(code);
                }
                if line != last_line {
                    println!("{line}");
                    last_line = line;
                }
                last_wait = Some((change.number(), change.wait_text(), change.link()));
                reply.retry_after
            }
            Ok(reply) if !retryable(reply.status) => return Err(reply.failure(Expect::Change, 1)),
            outcome => {
                failures += 1;
                let (problem, retry_after) = match &outcome {
                    Ok(reply) => (reply.status_text(), reply.retry_after),
                    Err(transport) => (format!("cannot reach Gatehouse: {transport}"), None),
                };
                if failures > MAX_RETRIES {
                    return Err(match outcome {
                        Ok(reply) => reply.failure(Expect::Change, failures),
                        Err(transport) => unreachable_gate(&api.base, &transport, failures),
                    });
                }
                trouble = Some(problem);
                retry_after
            }
        };
        match next_poll_delay(interval, pacing.floor, jitter(), retry_after, started.elapsed(), timeout) {
            Some(delay) => {
                if let Some(problem) = trouble {
                    eprintln!("gatehouse ci verify: {problem}; polling again in {}", seconds(delay));
                }
                tokio::time::sleep(delay).await
            }
            None => {
                let after = format!("timed out after {} (--timeout {} s)", seconds(started.elapsed()), args.timeout);
                match last_wait {
                    Some((n, why, link)) => println!("{n} {after}, still waiting: {why}{link}"),
                    None => println!("{after} without an answer from Gatehouse"),
                }
                return Ok(EXIT_TIMED_OUT);
            }
        }
    }
}

async fn report(environment: Option<String>, args: ReportArgs, lookup: Lookup<'_>) -> Result<u8, Fail> {
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

// ---------------------------------------------------------------------------------------------
// Title and description
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

struct Api {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
    pacing: Pacing,
    /// `request`, `verify` or `report`, for the messages.
    command: &'static str,
}

/// What an answer is about, for the error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// `POST /v1/changes`.
    Request,
    /// An existing change: 404 means `request` did not run.
    Change,
}

struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Reply {
    fn json<T: for<'de> Deserialize<'de>>(&self) -> Result<T, Fail> {
        serde_json::from_slice(&self.body)
            .map_err(|_| Fail(format!("Gatehouse answered {} with a body that is not a change", self.status)))
    }

    fn status_text(&self) -> String {
        format!("Gatehouse answered {}", self.status)
    }

    /// The problem+json's title, detail and field errors, on one line; nothing else of the body.
    fn problem(&self) -> String {
        let Ok(problem) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return String::new();
        };
        let text = |key: &str| problem.get(key).and_then(|v| v.as_str()).map(one_line).unwrap_or_default();
        let (title, detail) = (text("title"), text("detail"));
        let mut out = match (title.is_empty(), detail.is_empty()) {
            (_, true) => title,
            (true, false) => detail,
            // "Unauthorized: missing or invalid credentials", but not the same words twice.
            (false, false) if title.eq_ignore_ascii_case(&detail) => title,
            (false, false) => format!("{title}: {detail}"),
        };
        if let Some(errors) = problem.get("errors").and_then(|e| e.as_array()).filter(|e| !e.is_empty()) {
            let fields: Vec<String> = errors
                .iter()
                .map(|e| {
                    let field = e.get("field").and_then(|v| v.as_str()).map(one_line).unwrap_or_default();
                    let message = e.get("message").and_then(|v| v.as_str()).map(one_line).unwrap_or_default();
                    format!("{field}: {message}")
                })
                .collect();
            out.push_str(&format!(" ({})", fields.join("; ")));
        }
        clip(&out, 400)
    }

    fn failure(&self, expect: Expect, attempts: u32) -> Fail {
        let problem = self.problem();
        let problem = if problem.is_empty() { String::new() } else { format!(": {problem}") };
        let status = self.status;
        Fail(match (status.as_u16(), expect) {
            (401, _) => format!(
                "Gatehouse refused GATEHOUSE_TOKEN ({status}){problem}; check the group's CI/CD variable GATEHOUSE_TOKEN"
            ),
            (403, _) => format!("Gatehouse does not allow this token to do that ({status}){problem}"),
            (404, Expect::Change) => format!(
                "Gatehouse knows no change for this commit and environment ({status}){problem}; \
                 run `gatehouse ci request` first"
            ),
            (404, Expect::Request) => {
                format!("Gatehouse has no /v1/changes ({status}){problem}; check GATEHOUSE_URL")
            }
            _ if retryable(status) => {
                format!("Gatehouse still answered {status} after {}{problem}", attempts_text(attempts))
            }
            _ => format!("Gatehouse refused the call ({status}){problem}"),
        })
    }
}

/// 429 and 5xx that a later attempt may not get.
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

fn unreachable_gate(base: &Url, transport: &str, attempts: u32) -> Fail {
    Fail(format!("cannot reach Gatehouse at {base} after {}: {transport}", attempts_text(attempts)))
}

impl Api {
    fn new(gate: Gate, pacing: Pacing, command: &'static str) -> Result<Api, Fail> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse-ci/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Fail(format!("the HTTP client could not be built: {e}")))?;
        Ok(Api { http, base: gate.base, auth: gate.auth, pacing, command })
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn change_url(&self, subject: &Subject) -> Url {
        self.endpoint(&["v1", "changes", &subject.project_id.to_string(), &subject.sha])
    }

    /// One call, no retries: the answer whatever its status, or why there was none.
    async fn attempt<B: Serialize>(
        &self,
        method: Method,
        mut url: Url,
        environment: Option<&str>,
        body: Option<&B>,
    ) -> Result<Reply, String> {
        if let Some(env) = environment {
            url.query_pairs_mut().append_pair("environment", env);
        }
        let mut call = self.http.request(method, url).header(AUTHORIZATION, self.auth.clone());
        if let Some(body) = body {
            call = call.json(body);
        }
        let response = call.send().await.map_err(|e| transport_text(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
        let body = response.bytes().await.map_err(|e| transport_text(&e))?.to_vec();
        Ok(Reply { status, retry_after, body })
    }

    /// A call with retries on connection failures, 429 and 5xx (back-off 2, 4, 8 s, or the
    /// `Retry-After` when larger). Every call is safe to repeat: `POST /v1/changes` finds the
    /// change it created, a report of the same result is the same report.
    async fn call<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        environment: Option<&str>,
        body: Option<&B>,
        expect: Expect,
    ) -> Result<Reply, Fail> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let backoff = self.pacing.retry_unit * 2u32.pow(attempts - 1);
            let give_up = |wait: Duration| attempts > MAX_RETRIES || wait > MAX_RETRY_AFTER;
            let (wait, problem) = match self.attempt(method.clone(), url.clone(), environment, body).await {
                Ok(reply) if reply.status.is_success() => return Ok(reply),
                Ok(reply) if !retryable(reply.status) => return Err(reply.failure(expect, attempts)),
                Ok(reply) => {
                    let wait = backoff.max(reply.retry_after.unwrap_or_default());
                    if give_up(wait) {
                        return Err(reply.failure(expect, attempts));
                    }
                    (wait, reply.status_text())
                }
                Err(transport) => {
                    if give_up(backoff) {
                        return Err(unreachable_gate(&self.base, &transport, attempts));
                    }
                    (backoff, format!("cannot reach Gatehouse: {transport}"))
                }
            };
            eprintln!("gatehouse ci {}: {problem}; trying again in {}", self.command, seconds(wait));
            tokio::time::sleep(wait).await;
        }
    }
}

/// A transport error with its causes ("… : tcp connect error: Connection refused"), on one line.
fn transport_text(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "the call failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut seen = Vec::new();
    while let Some(cause) = source {
        let part = one_line(&cause.to_string());
        if !part.is_empty() && !seen.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
            seen.push(part);
        }
        source = cause.source();
    }
    clip(&text, 300)
}

// ---------------------------------------------------------------------------------------------
// Pacing: the 10 s floor, jitter, Retry-After, the timeout
// ---------------------------------------------------------------------------------------------

/// The interval to poll at: the requested one, raised to the floor when below it (and `true` then,
/// so the caller says so once).
fn effective_interval(requested: Duration, floor: Duration) -> (Duration, bool) {
    if requested < floor { (floor, true) } else { (requested, false) }
}

/// The pause before the next poll, or `None` when the next poll would fall after the timeout.
///
/// `jitter` is uniform in [0, 1): the interval is spread by ±20 %. The pause is never under the
/// floor and never under a `Retry-After`. When a full pause would overshoot the timeout, one last
/// poll happens at the timeout itself if that still keeps the floor and the `Retry-After`.
fn next_poll_delay(
    interval: Duration,
    floor: Duration,
    jitter: f64,
    retry_after: Option<Duration>,
    elapsed: Duration,
    timeout: Duration,
) -> Option<Duration> {
    let spread = 1.0 + JITTER * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
    let minimum = floor.max(retry_after.unwrap_or_default());
    let delay = interval.mul_f64(spread).max(minimum);
    let remaining = timeout.saturating_sub(elapsed);
    if delay <= remaining {
        Some(delay)
    } else if remaining >= minimum && !remaining.is_zero() {
        Some(remaining)
    } else {
        None
    }
}

/// A uniform number in [0, 1), from the process's random hash keys and the clock.
fn jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    hasher.write_u128(nanos);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `Retry-After` as delay-seconds or as an HTTP-date (RFC 9110 §10.2.3).
fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX).min(86_400)));
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(value).ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

/// Control characters (line breaks, escapes) become spaces, so each outcome stays one line.
fn one_line(text: &str) -> String {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn attempts_text(attempts: u32) -> String {
    if attempts == 1 { "1 attempt".into() } else { format!("{attempts} attempts") }
}

fn or_unknown(text: &str) -> String {
    let text = one_line(text);
    if text.is_empty() { "unknown".into() } else { text }
}

fn seconds(d: Duration) -> String {
    if d >= Duration::from_secs(1) && d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn an_interval_under_ten_seconds_is_raised_to_ten_and_said_so() {
        assert_eq!(effective_interval(S(0), MIN_POLL_INTERVAL), (S(10), true));
        assert_eq!(effective_interval(S(3), MIN_POLL_INTERVAL), (S(10), true));
        assert_eq!(effective_interval(S(9), MIN_POLL_INTERVAL), (S(10), true));
        assert_eq!(effective_interval(S(10), MIN_POLL_INTERVAL), (S(10), false));
        assert_eq!(effective_interval(S(30), MIN_POLL_INTERVAL), (S(30), false));
    }

    #[test]
    fn no_pause_between_polls_is_ever_under_ten_seconds_whatever_the_jitter() {
        let hour = S(3600);
        for interval in [0, 1, 5, 9, 10, 11, 12, 30] {
            let (interval, _) = effective_interval(S(interval), MIN_POLL_INTERVAL);
            for step in 0..=100 {
                let jitter = step as f64 / 100.0;
                let delay = next_poll_delay(interval, MIN_POLL_INTERVAL, jitter, None, S(0), hour).unwrap();
                assert!(delay >= S(10), "interval {interval:?} jitter {jitter}: {delay:?}");
            }
        }
        // Even a raw interval under the floor handed straight in does not get through.
        let delay = next_poll_delay(S(1), MIN_POLL_INTERVAL, 0.0, None, S(0), hour).unwrap();
        assert_eq!(delay, S(10));
    }

    #[test]
    fn jitter_spreads_the_interval_by_twenty_percent() {
        let hour = S(3600);
        assert_eq!(next_poll_delay(S(100), MIN_POLL_INTERVAL, 0.0, None, S(0), hour), Some(S(80)));
        assert_eq!(next_poll_delay(S(100), MIN_POLL_INTERVAL, 0.5, None, S(0), hour), Some(S(100)));
        let top = next_poll_delay(S(100), MIN_POLL_INTERVAL, 0.999_999, None, S(0), hour).unwrap();
        assert!(top > S(119) && top <= S(120), "{top:?}");
        let samples: Vec<f64> = (0..200).map(|_| jitter()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(samples.iter().any(|j| *j < 0.5) && samples.iter().any(|j| *j >= 0.5), "not spread: {samples:?}");
    }

    #[test]
    fn a_larger_retry_after_wins_and_a_smaller_one_does_not_shorten_the_pause() {
        let hour = S(3600);
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, Some(S(120)), S(0), hour), Some(S(120)));
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, Some(S(2)), S(0), hour), Some(S(30)));
        assert_eq!(next_poll_delay(S(10), MIN_POLL_INTERVAL, 0.0, Some(S(1)), S(0), hour), Some(S(10)));
    }

    #[test]
    fn polling_stops_at_the_timeout_with_one_last_poll_on_it_when_the_floor_allows() {
        // 25 s left, a 30 s pause would overshoot: poll once more at the timeout.
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, None, S(3575), S(3600)), Some(S(25)));
        // 5 s left: under the floor, so no more polls.
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, None, S(3595), S(3600)), None);
        // Past the timeout, or a zero timeout.
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, None, S(3601), S(3600)), None);
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, None, S(0), S(0)), None);
        // A Retry-After beyond the time left ends it too.
        assert_eq!(next_poll_delay(S(30), MIN_POLL_INTERVAL, 0.5, Some(S(600)), S(3300), S(3600)), None);
    }

    #[test]
    fn the_test_variable_only_ever_lowers_the_floor() {
        let none = |_: &str| None;
        assert_eq!(Pacing::from_env(&none), Pacing { floor: S(10), retry_unit: S(2) });
        let low = |name: &str| (name == TEST_MIN_INTERVAL_ENV).then(|| "25".to_string());
        assert_eq!(
            Pacing::from_env(&low),
            Pacing { floor: Duration::from_millis(25), retry_unit: Duration::from_millis(25) }
        );
        let high = |name: &str| (name == TEST_MIN_INTERVAL_ENV).then(|| "60000".to_string());
        assert_eq!(Pacing::from_env(&high), Pacing { floor: S(10), retry_unit: S(2) });
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2026-12-01T18:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("120", now), Some(S(120)));
        assert_eq!(parse_retry_after(" 7 ", now), Some(S(7)));
        assert_eq!(parse_retry_after("Tue, 01 Dec 2026 18:01:30 GMT", now), Some(S(90)));
        assert_eq!(parse_retry_after("Tue, 01 Dec 2026 17:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

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

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_missing_and_invalid_variable_is_named_at_once_and_the_token_never_shown() {
        let vars = env(&[
            ("GATEHOUSE_TOKEN", "s3cret-token"),
            ("CI_PROJECT_ID", "shop"),
            ("CI_COMMIT_SHA", "abc"),
            ("GATEHOUSE_URL", "ftp://gatehouse"),
        ]);
        let lookup = |name: &str| vars.get(name).cloned();
        let mut v = Vars::new(&lookup);
        assert!(v.gate().is_none());
        v.number("CI_PROJECT_ID");
        v.sha();
        v.environment(None);
        v.required("CI_PIPELINE_URL");
        let Fail(message) = v.finish(None).err().unwrap();
        for expected in [
            "CI_ENVIRONMENT_NAME (or --environment)",
            "CI_PIPELINE_URL",
            "CI_PROJECT_ID is not a positive whole number",
            "CI_COMMIT_SHA is not a full commit SHA",
            "GATEHOUSE_URL \"ftp://gatehouse\" is not an http(s) URL",
        ] {
            assert!(message.contains(expected), "{expected} in {message}");
        }
        assert!(!message.contains("s3cret-token"));
    }

    #[test]
    fn the_environment_flag_overrides_ci_environment_name() {
        let vars = env(&[("CI_ENVIRONMENT_NAME", "production")]);
        let lookup = |name: &str| vars.get(name).cloned();
        let mut v = Vars::new(&lookup);
        assert_eq!(v.environment(Some("staging".into())), "staging");
        assert_eq!(v.environment(None), "production");
        assert_eq!(v.environment(Some("  ".into())), "production");
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_echoing_them() {
        let err = gatehouse_base("https://bot:hunter2@gatehouse.example.com").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        let base = gatehouse_base("https://api.example.com/prod/?x=1#f").unwrap();
        assert_eq!(base.as_str(), "https://api.example.com/prod/");
    }

    #[test]
    fn api_paths_keep_a_base_path_and_encode_nothing_unexpected() {
        let gate = Gate {
            base: gatehouse_base("https://api.example.com/prod").unwrap(),
            auth: HeaderValue::from_static("Bearer t"),
        };
        let api = Api::new(gate, Pacing { floor: S(10), retry_unit: S(2) }, "verify").unwrap();
        let subject = Subject { project_id: 4242, sha: "a".repeat(40), environment: "production".into() };
        assert_eq!(
            api.change_url(&subject).as_str(),
            format!("https://api.example.com/prod/v1/changes/4242/{}", "a".repeat(40))
        );
        assert_eq!(api.endpoint(&["v1", "changes"]).as_str(), "https://api.example.com/prod/v1/changes");
    }

    fn change(decision: &str, reason: &str, window: Option<Window>) -> Change {
        Change {
            number: "CHG0030001".into(),
            url: "https://instance.service-now.com/change_request.do?sys_id=1".into(),
            approval: "requested".into(),
            state: ChangeState { display: "Authorize".into() },
            decision: decision.into(),
            reason: reason.into(),
            window,
        }
    }

    #[test]
    fn each_decision_is_one_line_with_number_and_url() {
        let url = "https://instance.service-now.com/change_request.do?sys_id=1";
        let wait = change(
            "wait",
            "waiting for approval (state Authorize)",
            Some(Window { open: false, next_open_at: Some("2026-12-01T19:00:00+01:00".into()), rule: None }),
        );
        assert_eq!(
            wait.verdict().unwrap(),
            (
                format!(
                    "CHG0030001 waiting: waiting for approval (state Authorize); window opens 2026-12-01T19:00:00+01:00 — {url}"
                ),
                EXIT_TIMED_OUT
            )
        );
        let proceed = change("proceed", "approved", Some(Window { open: true, ..Default::default() }));
        assert_eq!(
            proceed.verdict().unwrap(),
            (format!("CHG0030001 approved and the window is open: proceed — {url}"), EXIT_PROCEED)
        );
        let blocked = change("blocked", "rejected by the change manager\r\n", None);
        assert_eq!(
            blocked.verdict().unwrap(),
            (format!("CHG0030001 blocked: rejected by the change manager — {url}"), EXIT_BLOCKED)
        );
        assert!(change("maybe", "", None).verdict().is_err());
    }

    #[test]
    fn a_change_answer_with_nulls_and_unknown_fields_still_reads() {
        let change: Change = serde_json::from_str(
            r#"{"number":"CHG1","url":null,"approval":null,"state":{"value":"-3","display":null},
                "decision":"wait","reason":null,"window":{"open":null,"next_open_at":null,"rule":null},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(
            change.verdict().unwrap(),
            ("CHG1 waiting: approval unknown, state unknown; window closed".into(), 2)
        );
    }

    #[test]
    fn problem_details_are_summarised_without_the_rest_of_the_body() {
        let reply = Reply {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            retry_after: None,
            body: br#"{"type":"about:blank","title":"Invalid request","status":422,"detail":"1 field is invalid",
                      "errors":[{"field":"sha","message":"must be 40 hex digits"}],"debug":"secret"}"#
                .to_vec(),
        };
        let Fail(message) = reply.failure(Expect::Request, 1);
        assert!(message.contains("Invalid request: 1 field is invalid (sha: must be 40 hex digits)"), "{message}");
        assert!(!message.contains("secret"));
        let same = Reply {
            status: StatusCode::UNAUTHORIZED,
            retry_after: None,
            body: br#"{"title":"Missing or invalid credentials","detail":"missing or invalid credentials"}"#.to_vec(),
        };
        let Fail(message) = same.failure(Expect::Change, 1);
        assert!(message.contains("(401 Unauthorized): Missing or invalid credentials; check"), "{message}");
        let html = Reply { status: StatusCode::BAD_GATEWAY, retry_after: None, body: b"<html>oops</html>".to_vec() };
        let Fail(message) = html.failure(Expect::Change, 4);
        assert_eq!(message, "Gatehouse still answered 502 Bad Gateway after 4 attempts");
    }
}
