//! The CI change gate end to end: `gatehouse serve` with the ServiceNow and GitLab simulators —
//! one change per commit and environment, ServiceNow's change model, and results that are never lost.

mod support;

use jiff::{SignedDuration, Timestamp, ToSpan, tz::TimeZone};
use serde_json::{Value, json};
use support::Harness;
use support::gate::*;

#[tokio::test]
async fn a_pipeline_gets_one_change_and_one_mr_note_and_a_rerun_reuses_both() {
    let h = Harness::start_with_gate(OPEN).await;
    let (status, first) = request(&h, &body("production", 900001)).await;
    assert_eq!(status, 201, "{first}");
    assert!(first["number"].as_str().unwrap().starts_with("CHG"));
    assert_eq!(first["approval"], "requested");
    // ServiceNow's normal change model: Gatehouse moves a new change to Assess only.
    assert_eq!(first["state"]["display"], "Assess");
    assert_eq!(first["decision"], "wait");
    assert_eq!(first["reason"], "waiting for approval (state Assess)");
    let changes = sn(&h).records("change_request");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["correlation_id"], format!("gitlab:{PROJECT}:{SHA}:production"));
    assert!(changes[0]["description"].as_str().unwrap().contains("pipelines/900001"));
    let notes = gitlab(&h).notes(PROJECT, 7);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].body.contains(first["number"].as_str().unwrap()) && notes[0].body.contains("<!-- gatehouse:change:")
    );

    // A rerun of the commit: another pipeline, the same change.
    let (status, again) = request(&h, &body("production", 900005)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["number"], first["number"]);
    assert_eq!(sn(&h).records("change_request").len(), 1, "reused, not created again");
    let notes = gitlab(&h).notes(PROJECT, 7);
    assert_eq!(notes.len(), 1, "the note is edited, not posted again");
    assert!(notes[0].body.contains("900005"));

    // Another environment is another change.
    let (status, staging) = request(&h, &body("staging", 900005)).await;
    assert_eq!(status, 201);
    assert_ne!(staging["number"], first["number"]);
}

#[tokio::test]
async fn approval_through_the_webhook_plays_the_recorded_job_once() {
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    approve_in_servicenow(&h, answer["sys_id"].as_str().unwrap());
    assert_eq!(callback(&h, &answer, false).await, 202);
    let job = gitlab(&h).job(PROJECT, 77001).unwrap();
    assert_eq!((job.status.as_str(), job.play_count), ("pending", 1));
    // A replayed or signed second delivery does nothing twice.
    assert_eq!(callback(&h, &answer, true).await, 202);
    assert_eq!(callback(&h, &answer, false).await, 202);
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 1);
    let now = gate(&h, "production").await;
    assert_eq!(now["decision"], "proceed", "{now}");
    assert!(gitlab(&h).notes(PROJECT, 7)[0].body.contains("proceed"));
}

#[tokio::test]
async fn the_webhook_needs_a_token_or_a_valid_signature_and_knows_its_changes() {
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let payload = json!({"sys_id": answer["sys_id"], "approval": "approved"}).to_string();
    let url = h.url("/v1/webhooks/servicenow");
    let unsigned =
        h.http.post(&url).header("content-type", "application/json").body(payload.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let stale = h
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("x-gatehouse-signature", "t=1000,v1=00ff")
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    let unknown = json!({"sys_id": "0123456789abcdef0123456789abcdef", "approval": "approved"});
    let resp = h.http.post(&url).bearer_auth(&h.token).json(&unknown).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 0);
}

#[tokio::test]
async fn a_rejection_blocks_at_once_with_the_reason() {
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    sn(&h).set_field("change_request", answer["sys_id"].as_str().unwrap(), "approval", "rejected");
    let now = gate(&h, "production").await;
    assert_eq!(now["decision"], "blocked");
    assert_eq!(now["reason"], "the change was rejected");
    assert_eq!(callback(&h, &answer, false).await, 202);
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 0, "a rejection plays nothing");
    assert!(gitlab(&h).notes(PROJECT, 7)[0].body.contains("blocked"));
}

/// A policy whose rules keep each named environment closed right now.

#[tokio::test]
async fn a_blackout_a_freeze_and_a_closed_window_each_wait_with_the_next_opening() {
    let now = Timestamp::now();
    let h = Harness::start_with_gate(&closed_policy(now)).await;
    let after = (now + SignedDuration::from_hours(2)).to_zoned(TimeZone::UTC);
    let next_midnight = now.to_zoned(TimeZone::UTC).checked_add(1.day()).unwrap().start_of_day().unwrap();
    for (env, rule_has, opens) in [
        ("blackout-env", "Quarter close", after.strftime("%Y-%m-%dT%H:%M:00+00:00").to_string()),
        ("freeze-env", "freeze", after.strftime("%Y-%m-%dT%H:%M:00+00:00").to_string()),
        ("window-env", "weekly window", next_midnight.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()),
    ] {
        let (_, answer) = request(&h, &body(env, 900001)).await;
        approve_in_servicenow(&h, answer["sys_id"].as_str().unwrap());
        let now = gate(&h, env).await;
        assert_eq!(now["decision"], "wait", "{env}: {now}");
        assert_eq!(now["window"]["open"], false);
        assert!(now["window"]["rule"].as_str().unwrap().contains(rule_has), "{env}: {now}");
        assert_eq!(now["window"]["next_open_at"], opens, "{env}: {now}");
        assert!(now["reason"].as_str().unwrap().starts_with("outside the change window"), "{now}");
    }
}

#[tokio::test]
async fn report_closes_the_change_with_the_right_close_code() {
    let h = Harness::start_with_gate(OPEN).await;
    for (env, status, code) in [("production", "success", "successful"), ("staging", "failed", "unsuccessful")] {
        let (_, answer) = request(&h, &body(env, 900001)).await;
        let sys_id = answer["sys_id"].as_str().unwrap().to_string();
        approve_in_servicenow(&h, &sys_id);
        let report = json!({"environment": env, "status": status, "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001", "job_url": "https://gitlab.example.com/acme/shop/-/jobs/77002"});
        let resp = self::report(&h, env, &report).await;
        assert_eq!(resp.status(), 200);
        let closed: Value = resp.json().await.unwrap();
        assert_eq!(closed["state"]["value"], "3", "{closed}");
        let change = sn(&h).record("change_request", &sys_id).unwrap();
        assert_eq!(change["close_code"], code);
        assert_eq!(change["state"], "3");
        let notes = sn(&h).work_notes("change_request", &sys_id);
        assert!(
            notes.iter().any(|n| n.text.contains("pipelines/900001") && n.text.contains("jobs/77002")),
            "{notes:?}"
        );
        // A closed change blocks; the next pipeline gets a new change.
        assert_eq!(gate(&h, env).await["decision"], "blocked");
        let (status, next) = request(&h, &body(env, 900006)).await;
        assert_eq!(status, 201);
        assert_ne!(next["number"], answer["number"]);
    }
}

#[tokio::test]
async fn missing_or_wrong_tokens_get_401_and_bad_bodies_422() {
    let h = Harness::start_with_gate(OPEN).await;
    let url = h.url("/v1/changes");
    assert_eq!(h.http.post(&url).json(&body("production", 1)).send().await.unwrap().status(), 401);
    assert_eq!(h.http.post(&url).bearer_auth("wrong").json(&body("production", 1)).send().await.unwrap().status(), 401);
    let get = h.url(&format!("/v1/changes/{PROJECT}/{SHA}?environment=production"));
    assert_eq!(h.http.get(&get).send().await.unwrap().status(), 401);
    let mut bad = body("production", 900001);
    bad["title"] = json!("");
    let (status, problem) = request(&h, &bad).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "title");
    // A job without an environment may ask about any; there is no change for this one.
    let nowhere = h.url(&format!("/v1/changes/{PROJECT}/{SHA}?environment=nowhere"));
    let resp = h.http.get(nowhere).bearer_auth(ci_token(&h, None, 900001)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn without_a_named_job_the_webhook_plays_the_pipelines_manual_verify_job() {
    let h = Harness::start_with_gate(OPEN).await;
    // A manual job of another name in the same pipeline, which must not be played.
    gitlab(&h).add_job(PROJECT, 77010, 900001, "deploy", "manual");
    let mut b = body("production", 900001);
    b.as_object_mut().unwrap().remove("job_id");
    let (status, answer) = request(&h, &b).await;
    assert_eq!(status, 201);
    approve_in_servicenow(&h, answer["sys_id"].as_str().unwrap());
    assert_eq!(callback(&h, &answer, true).await, 202);
    assert_eq!(gitlab(&h).job(PROJECT, 77001).unwrap().play_count, 1, "the verify job");
    assert_eq!(gitlab(&h).job(PROJECT, 77010).unwrap().play_count, 0, "not the deploy job");
}

#[tokio::test]
async fn a_deploy_reported_on_an_unapproved_change_is_recorded_and_the_change_stays_open() {
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap();
    let report =
        json!({"environment": "production", "status": "success", "pipeline_url": "https://gitlab.example.com/p/1"});
    let resp = self::report(&h, "production", &report).await;
    assert_eq!(resp.status(), 409);
    let change = sn(&h).record("change_request", sys_id).unwrap();
    assert_eq!(change["state"], "-4", "still in Assess");
    let notes = sn(&h).work_notes("change_request", sys_id);
    assert!(notes.iter().any(|n| n.text.contains("WARNING: the change was not approved")), "{notes:?}");
}

#[tokio::test]
async fn a_change_approved_by_the_assess_group_and_the_cab_closes_through_implement_and_review() {
    let h = Harness::start_with_gate("environments:\n  production:\n    assignment_group: Change Management\n    cmdb_ci: Shop (business service)\n    risk: \"4\"\n    impact: \"3\"\n    backout_plan: Roll back to the previous image\ndefault: {}\n").await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap().to_string();
    let change = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!(change["state"], "-4", "stops in Assess: {change}");
    assert!(!change["assignment_group"].as_str().unwrap_or_default().is_empty(), "{change}");
    assert!(!change["cmdb_ci"].as_str().unwrap_or_default().is_empty(), "{change}");
    assert_eq!(change["backout_plan"], "Roll back to the previous image");
    // The Assess group, then the CAB: Scheduled.
    sn(&h).approve_change(&sys_id).unwrap();
    assert_eq!(gate(&h, "production").await["decision"], "wait", "Authorize still waits for the CAB");
    sn(&h).approve_change(&sys_id).unwrap();
    assert_eq!(gate(&h, "production").await["decision"], "proceed");
    let report = json!({"environment": "production", "status": "success",
        "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001"});
    let resp = self::report(&h, "production", &report).await;
    assert_eq!(resp.status(), 200);
    let closed = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!((closed["state"].as_str(), closed["close_code"].as_str()), (Some("3"), Some("successful")), "{closed}");
}

#[tokio::test]
async fn a_rejected_change_is_cancelled_and_the_next_pipeline_gets_a_new_one() {
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap().to_string();
    sn(&h).reject_change(&sys_id).unwrap();
    let payload = json!({"sys_id": sys_id, "number": answer["number"], "approval": "rejected"}).to_string();
    let resp = h
        .http
        .post(h.url("/v1/webhooks/servicenow"))
        .bearer_auth(&h.token)
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let change = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!(change["state"], "4", "cancelled: {change}");
    let notes = sn(&h).work_notes("change_request", &sys_id);
    assert!(notes.iter().any(|n| n.text.contains("Gatehouse cancelled this change")), "{notes:?}");
    let (status, next) = request(&h, &body("production", 900007)).await;
    assert_eq!(status, 201, "{next}");
    assert_ne!(next["number"], answer["number"]);
}

/// A GitLab webhook delivery, as GitLab sends it (`X-Gitlab-Token`).

#[tokio::test]
async fn a_deployment_event_closes_the_change_when_no_report_came_and_a_later_report_changes_nothing() {
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap().to_string();
    approve_in_servicenow(&h, &sys_id);
    gitlab(&h).add_deployment_of(PROJECT, 5401, "production", "success", SHA);
    let event = json!({"object_kind": "deployment", "status": "success", "deployment_id": 5401,
        "environment": "production", "project": {"id": PROJECT}});
    // Forged: a wrong secret, or a deployment GitLab does not have, changes nothing.
    assert_eq!(gitlab_event(&h, "not-the-secret", event.clone()).await, 401);
    let mut unknown = event.clone();
    unknown["deployment_id"] = json!(999_999);
    assert_eq!(gitlab_event(&h, GITLAB_SECRET, unknown).await, 404);
    assert_eq!(sn(&h).record("change_request", &sys_id).unwrap()["state"], "-1", "untouched");
    // The real event: the change is closed with the result GitLab has.
    assert_eq!(gitlab_event(&h, GITLAB_SECRET, event).await, 202);
    let closed = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!((closed["state"].as_str(), closed["close_code"].as_str()), (Some("3"), Some("successful")), "{closed}");
    // `gatehouse ci report` arrives later: recorded, nothing else changes.
    let report_body = json!({"environment": "production", "status": "failed",
        "pipeline_url": "https://gitlab.example.com/acme/shop/-/pipelines/900001"});
    let resp = self::report(&h, "production", &report_body).await;
    assert_eq!(resp.status(), 200);
    let after = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!((after["state"].as_str(), after["close_code"].as_str()), (Some("3"), Some("successful")));
}

#[tokio::test]
async fn a_canceled_pipeline_cancels_its_change() {
    let h = Harness::start_with_gate(OPEN).await;
    let (_, answer) = request(&h, &body("production", 900001)).await;
    let sys_id = answer["sys_id"].as_str().unwrap().to_string();
    let event = json!({"object_kind": "pipeline", "project": {"id": PROJECT},
        "object_attributes": {"id": 900001, "status": "canceled"}});
    // GitLab still says running: the event alone changes nothing.
    assert_eq!(gitlab_event(&h, GITLAB_SECRET, event.clone()).await, 202);
    assert_eq!(sn(&h).record("change_request", &sys_id).unwrap()["state"], "-4");
    assert!(gitlab(&h).set_pipeline_status(PROJECT, 900001, "canceled"));
    assert_eq!(gitlab_event(&h, GITLAB_SECRET, event).await, 202);
    let change = sn(&h).record("change_request", &sys_id).unwrap();
    assert_eq!(change["state"], "4", "cancelled: {change}");
    let notes = sn(&h).work_notes("change_request", &sys_id);
    assert!(notes.iter().any(|n| n.text.contains("ended canceled without deploying")), "{notes:?}");
}

#[tokio::test]
async fn the_change_lists_what_was_merged_since_the_last_deployment_and_the_pipelines_tests() {
    let h = Harness::start_with_gate(OPEN).await;
    let gl = gitlab(&h);
    let sha = |c: char| c.to_string().repeat(40);
    // main's history: c0 (released long ago with !13), c1 (in production now), then !11's merge
    // commit, !12's squash commit, a direct commit, and SHA, the commit this pipeline deploys.
    for (c, title) in [('0', "Merge branch 'old'"), ('1', "Release 1.4.1"), ('3', "Merge branch 'fix-rounding'")] {
        gl.add_commit(PROJECT, &sha(c), title, "Jane Doe");
    }
    gl.add_commit(PROJECT, &sha('4'), "Add coupons", "Max Mustermann");
    gl.add_commit(PROJECT, &sha('5'), "Fix typo in README", "Jane Doe");
    gl.add_commit(PROJECT, SHA, "Bump version to 1.4.2", "Jane Doe");
    gl.add_merge_request(PROJECT, 13, &sha('a'), "Old feature");
    assert!(gl.merge_merge_request(PROJECT, 13, &sha('0'), false));
    gl.add_deployment_of(PROJECT, 5001, "production", "success", &sha('1'));
    gl.add_merge_request(PROJECT, 11, &sha('b'), "Fix checkout rounding");
    assert!(gl.merge_merge_request(PROJECT, 11, &sha('3'), false));
    gl.add_merge_request(PROJECT, 12, &sha('c'), "Add coupons");
    assert!(gl.merge_merge_request(PROJECT, 12, &sha('4'), true));
    gl.set_test_report_summary(
        PROJECT,
        900001,
        json!({"time": 35.27, "count": 124, "success": 120, "failed": 1, "skipped": 3, "error": 0}),
    );

    let (status, answer) = request(&h, &body("production", 900001)).await;
    assert_eq!(status, 201, "{answer}");
    let change = sn(&h).records("change_request").into_iter().find(|c| c["sys_id"] == answer["sys_id"]).unwrap();
    let description = change["description"].as_str().unwrap();
    assert!(
        description
            .contains("Changes since the last successful deployment to production (deployment 5001, commit 11111111):"),
        "{description}"
    );
    assert!(description.contains("Merge requests (2):"), "{description}");
    assert!(description.contains("!11 Fix checkout rounding (Jane Doe)"), "{description}");
    assert!(description.contains("!12 Add coupons"), "{description}");
    assert!(!description.contains("!13"), "released before: {description}");
    assert!(description.contains("Commits (4):"), "{description}");
    let listed: Vec<&str> = description.lines().filter(|l| l.starts_with("  ") && !l.contains('!')).collect();
    assert_eq!(
        listed,
        [
            "  af5b1326 Bump version to 1.4.2 (Jane Doe)",
            "  55555555 Fix typo in README (Jane Doe)",
            "  44444444 Add coupons (Max Mustermann)",
            "  33333333 Merge branch 'fix-rounding' (Jane Doe)",
        ],
        "{description}"
    );
    assert!(
        description.contains(
            "Tests of pipeline 900001 (FAILURES): 120 passed, 1 failed, 0 errors, 3 skipped of 124 in 35.3 s."
        ),
        "{description}"
    );
    // The job's own description follows the summary.
    assert!(description.trim_end().ends_with("Release 1.4.2"), "{description}");

    // Staging never had a deployment: the description says so, and that pipeline 900005 has no tests.
    let (status, staging) = request(&h, &body("staging", 900005)).await;
    assert_eq!(status, 201, "{staging}");
    let change = sn(&h).records("change_request").into_iter().find(|c| c["sys_id"] == staging["sys_id"]).unwrap();
    let description = change["description"].as_str().unwrap();
    assert!(description.contains("the first deployment to staging"), "{description}");
    assert!(description.contains("Tests: pipeline 900005 reported no test results."), "{description}");
}
