//! `gatehouse ci verify`: whether the deploy may go ahead (`GET /v1/changes/{project_id}/{sha}`),
//! once or, with `--wait`, polling until the change proceeds, is blocked or `--timeout` passes.

use std::time::{Duration, Instant};

use reqwest::Method;

use super::change::Change;
use super::env::{Lookup, Subject, Vars};
use super::exit::{EXIT_TIMED_OUT, Fail};
use super::http::{Api, Expect, retryable, unreachable_gate};
use super::pacing::{MAX_RETRIES, Pacing, effective_interval, jitter, next_poll_delay};
use super::text::seconds;

/// `--timeout`, seconds.
const DEFAULT_TIMEOUT_SECS: u64 = 3600;
/// `--interval`, seconds.
const DEFAULT_INTERVAL_SECS: u64 = 30;

#[derive(clap::Args, Debug)]
pub(super) struct VerifyArgs {
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

/// Runs `gatehouse ci verify`: the exit code of the answer, or why it exits 3.
pub(super) async fn run(environment: Option<String>, args: VerifyArgs, lookup: Lookup<'_>) -> Result<u8, Fail> {
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
            Ok(reply) if !retryable(reply.status) => return Err(reply.failure(Expect::Change, 1, api.credential)),
            outcome => {
                failures += 1;
                let (problem, retry_after) = match &outcome {
                    Ok(reply) => (reply.status_text(), reply.retry_after),
                    Err(transport) => (format!("cannot reach Gatehouse: {transport}"), None),
                };
                if failures > MAX_RETRIES {
                    return Err(match outcome {
                        Ok(reply) => reply.failure(Expect::Change, failures, api.credential),
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
