//! What a new change's description says about the deploy (DESIGN.md, "CI change gate"): the merge
//! requests and commits since the environment's last successful deployment, and the pipeline's
//! test summary. Read from GitLab when the change is created; best effort — a GitLab that cannot
//! answer leaves a line saying so, never a pipeline without its change.

use std::collections::HashSet;

use crate::changes::{ChangeKey, CodeHost, CommitSummary, MergeRequestSummary, TestSummary};
use crate::error::Result;

/// At most this many commits and merge requests are listed; the rest are counted.
const MAX_COMMITS: usize = 30;
const MAX_MERGE_REQUESTS: usize = 20;
/// The summary's share of the description (the body's own description has 4000 of its own).
const MAX_CHARS: usize = 3000;

fn short(sha: &str) -> &str {
    sha.get(..8).unwrap_or(sha)
}

fn one_line(s: &str, max: usize) -> String {
    let line: String = s.lines().next().unwrap_or_default().chars().filter(|c| !c.is_control()).collect();
    if line.chars().count() > max { format!("{}…", line.chars().take(max).collect::<String>()) } else { line }
}

/// The summary text (several lines, ending in a newline).
pub(crate) async fn release_summary(code: &dyn CodeHost, key: &ChangeKey, ref_name: &str, pipeline_id: u64) -> String {
    let mut out = match since_last_deployment(code, key, ref_name).await {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(change = %key.correlation_id(), error = %e.chain(), "could not read what changed since the last deployment");
            format!("Changes since the last deployment to {}: GitLab could not tell ({e}).\n", key.environment)
        }
    };
    match code.test_summary(key.project_id, pipeline_id).await {
        Ok(Some(t)) => out.push_str(&tests_line(pipeline_id, &t)),
        Ok(None) => out.push_str(&format!("Tests: pipeline {pipeline_id} reported no test results.\n")),
        Err(e) => {
            tracing::warn!(change = %key.correlation_id(), error = %e.chain(), "could not read the pipeline's test summary");
            out.push_str(&format!("Tests: GitLab could not tell ({e}).\n"));
        }
    }
    if out.chars().count() > MAX_CHARS {
        out = out.chars().take(MAX_CHARS - 2).collect::<String>() + "…\n";
    }
    out
}

async fn since_last_deployment(code: &dyn CodeHost, key: &ChangeKey, ref_name: &str) -> Result<String> {
    let Some(last) = code.last_successful_deployment(key.project_id, &key.environment).await? else {
        return Ok(format!(
            "Changes: the first deployment to {} (no earlier successful deployment to compare with).\n",
            key.environment
        ));
    };
    if last.sha == key.sha {
        return Ok(format!(
            "Changes: none; commit {} is what deployment {} already put on {}.\n",
            short(&key.sha),
            last.deployment_id,
            key.environment
        ));
    }
    let commits = code.commits_between(key.project_id, &last.sha, &key.sha).await?;
    let in_range: HashSet<&str> = commits.iter().map(|c| c.sha.as_str()).collect();
    let mut merge_requests: Vec<MergeRequestSummary> = code
        .merged_merge_requests(key.project_id, ref_name, last.created_at)
        .await?
        .into_iter()
        .filter(|mr| mr.commits.iter().any(|c| in_range.contains(c.as_str())))
        .collect();
    merge_requests.sort_by_key(|mr| mr.iid);
    Ok(listing(key, last.deployment_id, &last.sha, &merge_requests, &commits))
}

fn listing(
    key: &ChangeKey,
    deployment_id: u64,
    since_sha: &str,
    merge_requests: &[MergeRequestSummary],
    commits: &[CommitSummary],
) -> String {
    let mut out = format!(
        "Changes since the last successful deployment to {} (deployment {deployment_id}, commit {}):\n",
        key.environment,
        short(since_sha)
    );
    out.push_str(&format!("Merge requests ({}):\n", merge_requests.len()));
    if merge_requests.is_empty() {
        out.push_str("  none merged in this range\n");
    }
    for mr in merge_requests.iter().take(MAX_MERGE_REQUESTS) {
        out.push_str(&format!(
            "  !{} {} ({}) {}\n",
            mr.iid,
            one_line(&mr.title, 100),
            one_line(&mr.author, 60),
            mr.url
        ));
    }
    if merge_requests.len() > MAX_MERGE_REQUESTS {
        out.push_str(&format!("  … and {} more\n", merge_requests.len() - MAX_MERGE_REQUESTS));
    }
    out.push_str(&format!("Commits ({}):\n", commits.len()));
    // Newest first, as a reviewer reads a release.
    for c in commits.iter().rev().take(MAX_COMMITS) {
        out.push_str(&format!("  {} {} ({})\n", short(&c.sha), one_line(&c.title, 100), one_line(&c.author, 60)));
    }
    if commits.len() > MAX_COMMITS {
        out.push_str(&format!("  … and {} older\n", commits.len() - MAX_COMMITS));
    }
    out
}

fn tests_line(pipeline_id: u64, t: &TestSummary) -> String {
    if t.count == 0 {
        return format!("Tests: pipeline {pipeline_id} reported no test results.\n");
    }
    let verdict = if t.failed + t.error > 0 { "FAILURES" } else { "all passed" };
    format!(
        "Tests of pipeline {pipeline_id} ({verdict}): {} passed, {} failed, {} errors, {} skipped of {} in {:.1} s.\n",
        t.success, t.failed, t.error, t.skipped, t.count, t.time_secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ChangeKey {
        ChangeKey { project_id: 1, sha: "b".repeat(40), environment: "production".into() }
    }

    #[test]
    fn the_listing_is_newest_first_and_counts_what_it_leaves_out() {
        let commits: Vec<CommitSummary> = (0..35)
            .map(|i| CommitSummary {
                sha: format!("{i:040}"),
                title: format!("change {i}\nbody"),
                author: "Jane".into(),
            })
            .collect();
        let text = listing(&key(), 12, &"a".repeat(40), &[], &commits);
        assert!(text.starts_with(
            "Changes since the last successful deployment to production (deployment 12, commit aaaaaaaa):"
        ));
        assert!(text.contains("  none merged in this range"));
        let first_listed = text.lines().find(|l| l.contains("change ")).unwrap();
        assert!(first_listed.contains("change 34 (Jane)"), "{first_listed}");
        assert!(!text.contains("body"));
        assert!(text.contains("… and 5 older"));
    }

    #[test]
    fn a_test_summary_says_whether_anything_failed() {
        let t = TestSummary { count: 10, success: 8, failed: 1, skipped: 1, error: 0, time_secs: 3.26 };
        assert_eq!(
            tests_line(42, &t),
            "Tests of pipeline 42 (FAILURES): 8 passed, 1 failed, 0 errors, 1 skipped of 10 in 3.3 s.\n"
        );
        let none = TestSummary { count: 0, success: 0, failed: 0, skipped: 0, error: 0, time_secs: 0.0 };
        assert_eq!(tests_line(42, &none), "Tests: pipeline 42 reported no test results.\n");
    }
}
