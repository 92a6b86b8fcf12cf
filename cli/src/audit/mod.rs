//! `gatehouse audit`: the auditor's client of Gatehouse's export (DESIGN.md "Audit evidence").
//!
//! - `verify` walks `GET /v1/audit/export` over a period (following `Link: <…>; rel="next"`) and
//!   exits 1 naming the first request whose history chain is broken (its id and the entry), 0
//!   with a count when every chain verifies; with `--anchors` it then checks every anchor the
//!   systems of record hold (`anchors`), read with the auditor's own credentials;
//! - `export` writes the period as JSON Lines (the records as Gatehouse sent them) or CSV (one
//!   row per history entry), to a file or stdout.
//!
//! The token (scope `audit`) comes from `GATEHOUSE_TOKEN`, never from an argument (arguments show
//! in process lists and shell history), and is sent only in the `Authorization` header.
//! Exit codes: 0 done, 1 a broken chain (verify), 2 a usage error, 3 misconfigured or unreachable.

mod anchors;
mod csv;
mod walk;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use domain::usecases::audit::parse_time;
use jiff::Timestamp;

use walk::{Export, Line, one_line};

pub const EXIT_OK: u8 = 0;
pub const EXIT_BROKEN: u8 = 1;
pub const EXIT_MISCONFIGURED: u8 = 3;

/// Where the export starts when `verify` is given no `--since`: everything Gatehouse holds.
const THE_BEGINNING: &str = "1970-01-01T00:00:00Z";

/// A misconfiguration or an unreachable Gatehouse: exit 3 with this message.
#[derive(Debug)]
struct Fail(String);

const FOOTER: &str = "\
The token: GATEHOUSE_TOKEN, a Gatehouse API token of scope audit (never an argument).
Times: RFC 3339 with an offset, e.g. 2026-01-01T00:00:00Z; the period is [since, until); a request
is in it when its last write is.
Exit codes: 0 done; 1 a history chain is broken, or (--anchors) an anchor ServiceNow or GitLab
holds does not match its record or names a record Gatehouse no longer has; 2 a usage error;
3 misconfigured, unreachable or refused.
With --anchors, ServiceNow is read with the auditor's own user, never Gatehouse's:
GATEHOUSE_AUDIT_SERVICENOW_USER and GATEHOUSE_AUDIT_SERVICENOW_PASSWORD (HTTP Basic), or
GATEHOUSE_AUDIT_SERVICENOW_TOKEN (an OAuth access token, sent as a bearer token); it must be
allowed to read sys_journal_field. GitLab (--gitlab-url) with GATEHOUSE_AUDIT_GITLAB_TOKEN
(read_api). Never arguments.";

#[derive(clap::Args, Debug)]
#[command(after_help = FOOTER)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check every request's history chain over a period; exit 1 naming the first broken one.
    #[command(after_help = FOOTER)]
    Verify(VerifyArgs),
    /// Write the evidence records of a period as JSON Lines or CSV.
    #[command(after_help = FOOTER)]
    Export(ExportArgs),
}

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// Gatehouse's base URL.
    #[arg(long, env = "GATEHOUSE_URL", value_name = "URL")]
    url: String,
    /// The period's start [default: everything, 1970-01-01T00:00:00Z].
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// The period's end, not included [default: now].
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Also check every anchor (`gatehouse-chain: <count>:<hash>`) that ServiceNow's work notes of
    /// the period, and the change records' MR notes, hold against the records Gatehouse has now.
    #[arg(long, requires = "servicenow_url")]
    anchors: bool,
    /// ServiceNow's instance URL, read with the auditor's credentials (see below).
    #[arg(long, value_name = "URL", requires = "anchors")]
    servicenow_url: Option<String>,
    /// Only the work notes this ServiceNow user wrote count (`sys_created_by`): Gatehouse's own
    /// user, when other deployments or people write anchored notes on the same instance.
    #[arg(long, value_name = "USER", requires = "anchors")]
    servicenow_author: Option<String>,
    /// GitLab's URL: also check the anchors of the change records' MR notes.
    #[arg(long, value_name = "URL", requires = "anchors")]
    gitlab_url: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One evidence record per line, as Gatehouse sent it.
    Jsonl,
    /// One row per history entry (RFC 4180), with a header row.
    Csv,
}

#[derive(clap::Args, Debug)]
struct ExportArgs {
    /// Gatehouse's base URL.
    #[arg(long, env = "GATEHOUSE_URL", value_name = "URL")]
    url: String,
    /// The period's start.
    #[arg(long, value_name = "TIME")]
    since: String,
    /// The period's end, not included [default: now].
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// The file to write [default: stdout]; created readable by this user only.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// The period's query, both ends explicit (so every page asks for the same period).
fn period_query(since: &str, until: Option<&str>) -> Result<(String, Timestamp, Timestamp), Fail> {
    let since_at =
        parse_time("since", since).map_err(|_| Fail(format!("--since {since:?} is not an RFC 3339 time")))?;
    let until_at = match until {
        Some(text) => {
            parse_time("until", text).map_err(|_| Fail(format!("--until {text:?} is not an RFC 3339 time")))?
        }
        None => Timestamp::now(),
    };
    if until_at <= since_at {
        return Err(Fail(format!("--until ({until_at}) must come after --since ({since_at})")));
    }
    let (s, u) = (since_at.to_string(), until_at.to_string());
    let query = serde_urlencoded::to_string([("since", s.as_str()), ("until", u.as_str())]).unwrap_or_default();
    Ok((query, since_at, until_at))
}

/// Runs `gatehouse audit …` and returns its exit code.
pub async fn run(args: AuditArgs) -> ExitCode {
    let token = std::env::var("GATEHOUSE_TOKEN").ok();
    let (name, outcome) = match args.command {
        AuditCommand::Verify(a) => ("verify", verify(a, token).await),
        AuditCommand::Export(a) => ("export", export(a, token).await),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(Fail(message)) => {
            eprintln!("gatehouse audit {name}: {}", one_line(&message));
            ExitCode::from(EXIT_MISCONFIGURED)
        }
    }
}

/// A broken chain as one line: the request, its item, the entry and why.
fn broken_line(line: &Line<'_>) -> String {
    let r = line.record;
    let at = &r["chain_break"];
    format!(
        "request {} ({}): history entry {} is broken: {}",
        r["id"].as_str().unwrap_or("?"),
        r["servicenow"]["number"].as_str().unwrap_or("?"),
        at["entry"],
        one_line(at["reason"].as_str().unwrap_or("no reason given")),
    )
}

async fn verify(args: VerifyArgs, token: Option<String>) -> Result<u8, Fail> {
    let since = args.since.as_deref().unwrap_or(THE_BEGINNING);
    let (query, since_at, until_at) = period_query(since, args.until.as_deref())?;
    let export = Export::new(&args.url, token)?;
    // The outside systems' credentials are read before anything is walked.
    let outside = match (args.anchors, &args.servicenow_url) {
        (true, Some(url)) => {
            Some(anchors::Outside::from_env(url, args.servicenow_author.as_deref(), args.gitlab_url.as_deref())?)
        }
        _ => None,
    };
    let mut records = anchors::Records::default();
    let mut broken = None;
    let mut unchained = 0;
    let walked = export
        .walk(query, |line| {
            if line.record["chain_ok"] != true {
                broken = Some(broken_line(&line));
                return Ok(false);
            }
            if outside.is_some() {
                records.add(line.record);
            }
            if line.record["request"]["chain"]["unchained"].as_u64().is_some_and(|n| n > 0) {
                unchained += 1;
            }
            Ok(true)
        })
        .await?;
    if let Some(broken) = broken {
        println!("gatehouse audit verify: {broken}");
        return Ok(EXIT_BROKEN);
    }
    let before = if unchained > 0 {
        format!(" ({unchained} with entries recorded before chaining, which no chain covers)")
    } else {
        String::new()
    };
    println!(
        "gatehouse audit verify: {} requests touched in [{since_at}, {until_at}): every history chain verifies{before}",
        walked.records
    );
    let Some(outside) = outside else { return Ok(EXIT_OK) };
    match anchors::check(&outside, &export, &records, since_at, until_at).await? {
        anchors::Outcome::Broken(line) => {
            println!("gatehouse audit verify: {}", one_line(&line));
            Ok(EXIT_BROKEN)
        }
        anchors::Outcome::Held { servicenow, gitlab, records } => {
            let in_gitlab =
                if args.gitlab_url.is_some() { format!(" and {gitlab} in GitLab's MR notes") } else { String::new() };
            println!(
                "gatehouse audit verify: {} anchors checked ({servicenow} in ServiceNow's work notes of [{since_at}, {until_at}){in_gitlab}) on {records} records: each matches its record's history",
                servicenow + gitlab,
            );
            Ok(EXIT_OK)
        }
    }
}

/// Where the export goes: a new private file, or stdout.
fn open_output(path: Option<&PathBuf>) -> Result<Box<dyn Write>, Fail> {
    let Some(path) = path else { return Ok(Box::new(std::io::stdout().lock())) };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(|e| Fail(format!("cannot write {}: {e}", path.display())))?;
    Ok(Box::new(std::io::BufWriter::new(file)))
}

async fn export(args: ExportArgs, token: Option<String>) -> Result<u8, Fail> {
    let (query, since_at, until_at) = period_query(&args.since, args.until.as_deref())?;
    let export = Export::new(&args.url, token)?;
    let mut out = open_output(args.output.as_ref())?;
    let written = |e: std::io::Error| Fail(format!("cannot write the export: {e}"));
    if args.format == Format::Csv {
        out.write_all(csv::row(&csv::HEADER).as_bytes()).map_err(written)?;
    }
    let walked = export
        .walk(query, |line| {
            let bytes = match args.format {
                Format::Jsonl => format!("{}\n", line.text),
                Format::Csv => csv::rows(line.record),
            };
            out.write_all(bytes.as_bytes()).map_err(written)?;
            Ok(true)
        })
        .await?;
    out.flush().map_err(written)?;
    let to = args.output.as_ref().map_or("stdout".to_string(), |p| p.display().to_string());
    let repeated = if walked.repeated > 0 {
        format!("; {} written again during the export were kept as first read", walked.repeated)
    } else {
        String::new()
    };
    eprintln!(
        "gatehouse audit export: {} requests touched in [{since_at}, {until_at}) written to {to} ({} pages){repeated}",
        walked.records, walked.pages
    );
    Ok(EXIT_OK)
}
