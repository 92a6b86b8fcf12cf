//! The child: `gatehouse ci` run as GitLab runs it, a process with a job's variables and nothing
//! else, and what it printed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::{ID_TOKEN, JOB_URL, PIPELINE_URL, SHA, TOKEN};

/// A GitLab job's variables for a default-branch pipeline of acme/shop deploying to production.
pub fn job_env(gatehouse_url: &str) -> Vec<(String, String)> {
    [
        ("GATEHOUSE_URL", gatehouse_url),
        ("GATEHOUSE_TOKEN", TOKEN),
        ("CI_PROJECT_ID", "4242"),
        ("CI_PROJECT_PATH", "acme/shop"),
        ("CI_PROJECT_URL", "https://gitlab.example.com/acme/shop"),
        ("CI_COMMIT_SHA", SHA),
        ("CI_COMMIT_REF_NAME", "main"),
        ("CI_COMMIT_TITLE", "Add the checkout button"),
        ("CI_ENVIRONMENT_NAME", "production"),
        ("CI_PIPELINE_ID", "900001"),
        ("CI_PIPELINE_URL", PIPELINE_URL),
        ("CI_JOB_ID", "77001"),
        ("CI_JOB_URL", JOB_URL),
        ("CI_MERGE_REQUEST_IID", "7"),
        // Test-only: polls and retries in milliseconds instead of the 10 s floor.
        ("GATEHOUSE_CI_MIN_INTERVAL_MS", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs `gatehouse ci ARGS` with exactly these variables (nothing inherited from the test's own
/// environment, which may be a CI job).
pub async fn gatehouse_ci(args: &[&str], env: &[(String, String)]) -> Run {
    let started = Instant::now();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("ci")
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start gatehouse");
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("gatehouse ci finished within 60 s")
        .expect("gatehouse ci ran");
    let run = Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
        took: started.elapsed(),
    };
    for token in [TOKEN, ID_TOKEN] {
        assert!(
            !run.stdout.contains(token) && !run.stderr.contains(token),
            "the token was printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

pub fn with(mut env: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != name);
    env.push((name.to_string(), value.to_string()));
    env
}

pub fn without(mut env: Vec<(String, String)>, names: &[&str]) -> Vec<(String, String)> {
    env.retain(|(k, _)| !names.contains(&k.as_str()));
    env
}
