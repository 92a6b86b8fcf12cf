//! `gatehouse ci` as GitLab runs it: the real binary as a child process, with a job's variables,
//! against a small stub of Gatehouse's `/v1/changes` API (DESIGN.md, "HTTP API"). Each test
//! scripts the stub's answers (proceed, wait, blocked, an error status, a `Retry-After`) and checks
//! the exit code, the one line printed, and what the client sent.

use std::time::Duration;

use axum::http::Method;
use serde_json::json;

const TOKEN: &str = "gh-ci-test-token-5e1f0a";
/// A GitLab CI/CD ID token, as the job's `id_tokens:` hands it over (the stub does not verify it).
const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJnYXRlaG91c2UifQ.c2lnLTdmM2E";
const SHA: &str = "0123abcd4567ef890123abcd4567ef890123abcd";
const PROJECT: u64 = 4242;
const CHANGE_URL: &str = "https://instance.service-now.com/change_request.do?sys_id=c0ffee";
const PIPELINE_URL: &str = "https://gitlab.example.com/acme/shop/-/pipelines/900001";
const JOB_URL: &str = "https://gitlab.example.com/acme/shop/-/jobs/77001";

#[path = "ci_cli/stub.rs"]
mod stub;
use stub::{Answer, start_stub};

#[path = "ci_cli/child.rs"]
mod child;
use child::{gatehouse_ci, job_env, with, without};

// ---------------------------------------------------------------------------------------------
// request
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn request_sends_the_design_body_and_prints_the_created_then_reused_change() {
    let (url, stub) = start_stub(vec![Answer::Wait], false).await;
    let env = job_env(&url);

    let run = gatehouse_ci(&["request"], &env).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.lines(),
        [format!(
            "CHG0030001 created for acme/shop 0123abcd to production: waiting for approval (state Authorize); \
             window opens 2026-12-01T19:00:00+01:00 — {CHANGE_URL}"
        )]
    );

    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    let call = &seen[0];
    assert_eq!((call.method.clone(), call.path.as_str()), (Method::POST, "/v1/changes"));
    assert_eq!(call.auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(call.content_type.as_deref(), Some("application/json"));
    let mut body = call.body.clone();
    let description = body.as_object_mut().unwrap().remove("description").expect("a description");
    assert_eq!(
        body,
        json!({
            "project_id": 4242, "project_path": "acme/shop", "sha": SHA, "ref": "main",
            "environment": "production", "pipeline_id": 900001, "pipeline_url": PIPELINE_URL,
            "merge_request_iid": 7,
            "title": "Deploy acme/shop 0123abcd to production: Add the checkout button"
        }),
        "no job_id (Gatehouse finds the pipeline's gatehouse:verify job) and no planned_start/planned_end when the variables are not set"
    );
    let description = description.as_str().unwrap();
    for part in [
        PIPELINE_URL,
        &format!("https://gitlab.example.com/acme/shop/-/commit/{SHA}"),
        "https://gitlab.example.com/acme/shop/-/merge_requests/7",
        JOB_URL,
    ] {
        assert!(description.contains(part), "{part} in {description}");
    }

    // A re-run of the pipeline reuses the change (200).
    let again = gatehouse_ci(&["request"], &env).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.starts_with("CHG0030001 reused for acme/shop 0123abcd to production: "), "{}", again.stdout);
    assert_eq!(stub.seen().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_sends_the_verify_job_the_planned_window_and_the_environment_flag() {
    let (url, stub) = start_stub(vec![Answer::Proceed], false).await;
    let env = without(job_env(&url), &["CI_MERGE_REQUEST_IID"]);
    let env = with(env, "GATEHOUSE_VERIFY_JOB_ID", "77005");
    let env = with(env, "GATEHOUSE_PLANNED_START", "2026-12-01T20:00:00+01:00");
    let env = with(env, "GATEHOUSE_PLANNED_END", "2026-12-01T21:00:00Z");

    let run = gatehouse_ci(&["request", "--environment", "staging"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.lines(),
        [format!(
            "CHG0030001 created for acme/shop 0123abcd to staging: approved and the window is open — {CHANGE_URL}"
        )]
    );
    let body = &stub.seen()[0].body;
    assert_eq!(body["environment"], "staging", "--environment overrides CI_ENVIRONMENT_NAME");
    assert_eq!(body["title"], "Deploy acme/shop 0123abcd to staging: Add the checkout button");
    assert_eq!(body["job_id"], 77005, "the manual verify job, not the request job");
    assert_eq!(body["planned_start"], "2026-12-01T19:00:00Z");
    assert_eq!(body["planned_end"], "2026-12-01T21:00:00Z");
    assert!(body.get("merge_request_iid").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gitlab_id_token_is_sent_in_preference_to_the_static_token() {
    let (url, stub) = start_stub(vec![Answer::Wait], false).await;
    // A job with id_tokens: and, left over from before, the group's static token.
    let env = with(job_env(&url), "GATEHOUSE_ID_TOKEN", ID_TOKEN);
    let run = gatehouse_ci(&["request"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = gatehouse_ci(&["verify"], &env).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = gatehouse_ci(&["report", "--status", "success"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The ID token alone does too.
    let run = gatehouse_ci(&["verify"], &without(env.clone(), &["GATEHOUSE_TOKEN"])).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let seen = stub.seen();
    assert_eq!(seen.len(), 4);
    for call in &seen {
        assert_eq!(call.auth.as_deref(), Some(format!("Bearer {ID_TOKEN}").as_str()), "{} {}", call.method, call.path);
    }

    // A refused ID token is not retried with the static token, and the message names the ID token.
    let env = with(env, "GATEHOUSE_ID_TOKEN", "eyJ.not-the-id-token-9b1e");
    let run = gatehouse_ci(&["verify"], &env).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("Gatehouse refused GATEHOUSE_ID_TOKEN (401 Unauthorized)"), "{}", run.stderr);
    assert!(run.stderr.contains("id_tokens:"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-id-token-9b1e"), "{}", run.stderr);
    assert_eq!(stub.seen().len(), 5, "one call, not retried with GATEHOUSE_TOKEN");
}

#[tokio::test(flavor = "multi_thread")]
async fn request_of_a_change_already_rejected_exits_1() {
    let (url, _stub) = start_stub(vec![Answer::Blocked], false).await;
    let run = gatehouse_ci(&["request"], &job_env(&url)).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.lines(), [format!("CHG0030001 blocked: rejected by the change manager — {CHANGE_URL}")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_retries_after_a_429_and_waits_its_retry_after() {
    let (url, stub) = start_stub(vec![Answer::RetryAfter(429, 1), Answer::Wait], false).await;
    let run = gatehouse_ci(&["request"], &job_env(&url)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "Retry-After: 1 honoured over the 20 ms back-off: {gap:?}");
    assert_eq!(seen[0].body, seen[1].body, "the same body again");
}

// ---------------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn verify_proceeds_with_exit_0() {
    let (url, stub) = start_stub(vec![Answer::Proceed], true).await;
    let run = gatehouse_ci(&["verify"], &job_env(&url)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.lines(), [format!("CHG0030001 approved and the window is open: proceed — {CHANGE_URL}")]);
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, format!("/v1/changes/4242/{SHA}"));
    assert_eq!(seen[0].query.as_deref(), Some("environment=production"));
    assert_eq!(seen[0].auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_of_a_rejected_change_exits_1_with_the_reason() {
    let (url, _stub) = start_stub(vec![Answer::Blocked], true).await;
    let run = gatehouse_ci(&["verify", "--wait"], &job_env(&url)).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.lines(), [format!("CHG0030001 blocked: rejected by the change manager — {CHANGE_URL}")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_without_wait_exits_2_while_the_change_waits() {
    let (url, stub) = start_stub(vec![Answer::Wait], true).await;
    let run = gatehouse_ci(&["verify"], &job_env(&url)).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.lines(),
        [format!(
            "CHG0030001 waiting: waiting for approval (state Authorize); window opens 2026-12-01T19:00:00+01:00 — {CHANGE_URL}"
        )]
    );
    assert_eq!(stub.seen().len(), 1, "one question, no polling");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_wait_polls_until_the_change_proceeds() {
    let (url, stub) = start_stub(vec![Answer::Wait, Answer::Wait, Answer::Wait, Answer::Proceed], true).await;
    let run = gatehouse_ci(&["verify", "--wait", "--interval", "0"], &job_env(&url)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.lines(),
        [
            format!(
                "CHG0030001 waiting: waiting for approval (state Authorize); window opens 2026-12-01T19:00:00+01:00 — {CHANGE_URL}"
            ),
            format!("CHG0030001 approved and the window is open: proceed — {CHANGE_URL}"),
        ],
        "the unchanged waiting line is printed once"
    );
    assert_eq!(run.stderr.matches("below the minimum").count(), 1, "said once: {}", run.stderr);
    let seen = stub.seen();
    assert_eq!(seen.len(), 4, "three waits, then proceed");
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(20), "never under the (test) floor: {gap:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_wait_honours_a_retry_after_larger_than_the_interval() {
    let (url, stub) = start_stub(vec![Answer::RetryAfter(503, 1), Answer::Proceed], true).await;
    let run = gatehouse_ci(&["verify", "--wait", "--interval", "0"], &job_env(&url)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("503"), "{}", run.stderr);
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "waited the Retry-After, not the 20 ms interval: {gap:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_wait_times_out_with_exit_2() {
    let (url, stub) = start_stub(vec![Answer::Wait], true).await;
    let run = gatehouse_ci(&["verify", "--wait", "--timeout", "1", "--interval", "0"], &job_env(&url)).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("CHG0030001 waiting: "), "{lines:?}");
    assert!(lines[1].starts_with("CHG0030001 timed out after "), "{lines:?}");
    assert!(
        lines[1].ends_with(&format!(
            "(--timeout 1 s), still waiting: waiting for approval (state Authorize); \
             window opens 2026-12-01T19:00:00+01:00 — {CHANGE_URL}"
        )),
        "{lines:?}"
    );
    assert!(run.took >= Duration::from_millis(900) && run.took < Duration::from_secs(10), "{:?}", run.took);
    assert!(stub.seen().len() > 3, "it polled");
}

// ---------------------------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn report_sends_the_deploy_result_and_prints_the_closed_change() {
    let (url, stub) = start_stub(vec![Answer::Proceed], true).await;
    let run = gatehouse_ci(&["report", "--status", "failed"], &job_env(&url)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.lines(), [format!("CHG0030001 deploy failed recorded on the change (state Closed) — {CHANGE_URL}")]);
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.clone(), seen[0].path.clone()),
        (Method::POST, format!("/v1/changes/4242/{SHA}/deployments"))
    );
    assert_eq!(seen[0].auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(
        seen[0].body,
        json!({"environment": "production", "status": "failed", "pipeline_url": PIPELINE_URL, "job_url": JOB_URL})
    );

    // From the template: the deploy job's URL, handed over by its dotenv artifact.
    let deploy_job = "https://gitlab.example.com/acme/shop/-/jobs/77003";
    let env = with(job_env(&url), "GATEHOUSE_DEPLOY_JOB_URL", deploy_job);
    let run = gatehouse_ci(&["report", "--status", "success"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        stub.seen()[1].body,
        json!({"environment": "production", "status": "success", "pipeline_url": PIPELINE_URL, "job_url": deploy_job})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn report_of_an_unknown_change_exits_3() {
    let (url, _stub) = start_stub(vec![Answer::Proceed], false).await;
    let run = gatehouse_ci(&["report", "--status", "success"], &job_env(&url)).await;
    assert_eq!(run.code, 3);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("404") && run.stderr.contains("gatehouse ci request"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Exit 3: misconfigured or unreachable
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_variable_exits_3_naming_it_without_calling_gatehouse() {
    let (url, stub) = start_stub(vec![Answer::Proceed], true).await;
    let env = without(job_env(&url), &["CI_COMMIT_SHA", "GATEHOUSE_TOKEN"]);
    let run = gatehouse_ci(&["verify"], &env).await;
    assert_eq!(run.code, 3);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("missing CI/CD variable(s): GATEHOUSE_ID_TOKEN (or GATEHOUSE_TOKEN), CI_COMMIT_SHA"),
        "both named: {}",
        run.stderr
    );
    assert!(stub.seen().is_empty());

    let env = without(job_env(&url), &["CI_ENVIRONMENT_NAME"]);
    let run = gatehouse_ci(&["report", "--status", "success"], &env).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("CI_ENVIRONMENT_NAME (or --environment)"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn neither_gatehouse_id_token_nor_gatehouse_token_exits_3_naming_both() {
    let (url, stub) = start_stub(vec![Answer::Proceed], true).await;
    let env = without(job_env(&url), &["GATEHOUSE_TOKEN", "GATEHOUSE_ID_TOKEN"]);
    for args in [&["request"][..], &["verify"], &["report", "--status", "success"]] {
        let run = gatehouse_ci(args, &env).await;
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        let stderr = run.stderr.trim_end();
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "gatehouse ci {}: misconfigured: missing CI/CD variable(s): GATEHOUSE_ID_TOKEN (or GATEHOUSE_TOKEN) (",
                args[0]
            )),
            "{stderr}"
        );
        for hint in ["id_tokens:", "aud: gatehouse", "GATEHOUSE_CI_ALLOW_STATIC_TOKENS=true"] {
            assert!(stderr.contains(hint), "{hint} in {stderr}");
        }
    }
    // Set but empty is unset too.
    let env = with(with(env, "GATEHOUSE_ID_TOKEN", ""), "GATEHOUSE_TOKEN", " ");
    let run = gatehouse_ci(&["verify"], &env).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("GATEHOUSE_ID_TOKEN (or GATEHOUSE_TOKEN)"), "{}", run.stderr);
    assert!(stub.seen().is_empty(), "no call without a credential");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_url_exits_3() {
    let run = gatehouse_ci(&["request"], &with(job_env(""), "GATEHOUSE_URL", "gatehouse.example.com")).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("GATEHOUSE_URL \"gatehouse.example.com\" is not an http(s) URL"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_exits_3_after_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = gatehouse_ci(&["request"], &job_env(&format!("http://127.0.0.1:{port}"))).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "gatehouse ci request: cannot reach Gatehouse at http://127.0.0.1:{port}/ after 4 attempts"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("trying again").count(), 3, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_gets_401_and_exits_3_at_once() {
    let (url, stub) = start_stub(vec![Answer::Proceed], true).await;
    let env = with(job_env(&url), "GATEHOUSE_TOKEN", "not-the-token-8d2c");
    let run = gatehouse_ci(&["verify", "--wait"], &env).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("Gatehouse refused GATEHOUSE_TOKEN (401 Unauthorized)"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-token-8d2c"), "{}", run.stderr);
    assert_eq!(stub.seen().len(), 1, "a 401 is not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_exits_3_after_retries() {
    let (url, stub) = start_stub(vec![Answer::Status(500)], true).await;
    let run = gatehouse_ci(&["verify"], &job_env(&url)).await;
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("Gatehouse still answered 500 Internal Server Error after 4 attempts: Scripted failure"),
        "{}",
        run.stderr
    );
    assert_eq!(stub.seen().len(), 4, "the first attempt and three retries");

    // While polling too: a Gatehouse that keeps failing is not "still waiting".
    let (url, stub) = start_stub(vec![Answer::Wait, Answer::Status(502)], true).await;
    let run = gatehouse_ci(&["verify", "--wait", "--interval", "0"], &job_env(&url)).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("502 Bad Gateway after 4 attempts"), "{}", run.stderr);
    assert_eq!(stub.seen().len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_usage_error_exits_3_and_help_documents_the_exit_codes() {
    let env = job_env("http://127.0.0.1:9");
    for args in [&["report"][..], &["report", "--status", "maybe"], &["verify", "--timeout", "5"], &["deploy"], &[]] {
        let run = gatehouse_ci(args, &env).await;
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
    }
    let help = gatehouse_ci(&["--help"], &env).await;
    assert_eq!(help.code, 0);
    for line in [
        "0  proceed",
        "1  blocked",
        "2  still waiting: verify answered wait, or verify --wait reached --timeout",
        "3  misconfigured or unreachable",
    ] {
        assert!(help.stdout.contains(line), "{line} in {}", help.stdout);
    }
    for variable in [
        "GATEHOUSE_ID_TOKEN",
        "id_tokens: {GATEHOUSE_ID_TOKEN: {aud: gatehouse}}",
        "GATEHOUSE_TOKEN",
        "GATEHOUSE_CI_ALLOW_STATIC_TOKENS=true",
    ] {
        assert!(help.stdout.contains(variable), "{variable} in {}", help.stdout);
    }
    let verify_help = gatehouse_ci(&["verify", "--help"], &env).await;
    assert_eq!(verify_help.code, 0);
    assert!(verify_help.stdout.contains("never under 10"), "{}", verify_help.stdout);
}
